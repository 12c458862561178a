"""Attachments over HTTP (SPEC §13): stored by id with the SHA-256 in their audit event,
checked on download; over 20 MB is 413 with nothing stored; a name never becomes a path;
another unit's case is 404 and an inspector 403 — each refusal leaving every table as it was."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from sqlalchemy import create_engine, text

from duban.service.attachments import MAX_BYTES
from tests.conftest import row_counts
from tests.web.conftest import Office, csrf_of


def upload(office: Office, who: str, name: str, content: bytes, case_id: int | None = None) -> object:
    return office.client().post(f"/api/v1/cases/{case_id or office.case_id}/attachments",
                                files={"file": (name, content, "application/pdf")}, headers=office.token(who))


def test_a_unit_attaches_a_file_and_the_office_downloads_it_checked(office: Office) -> None:
    content = "整改报告\n".encode() * 1000
    r = upload(office, "fgj", "整改报告.pdf", content)
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    added = r.json()  # type: ignore[attr-defined]
    assert added["sha256"] == hashlib.sha256(content).hexdigest() and added["size"] == len(content)
    event = office.app.history(office.case_id)[-1]
    assert event["action"] == "attached" and event["data"]["sha256"] == added["sha256"]
    got = office.client().get(f"/api/v1/cases/{office.case_id}/attachments/{added['id']}", headers=office.token("wang"))
    assert got.status_code == 200 and got.content == content
    assert f"filename*=UTF-8''{quote('整改报告.pdf')}" in got.headers["Content-Disposition"]
    assert upload(office, "czj", "配合材料.docx", b"co-unit").status_code == 201  # type: ignore[attr-defined]
    page = office.signed_in("fgj").get(f"/cases/{office.case_id}").text
    assert "整改报告.pdf" in page and "配合材料.docx" in page and "上传附件" in page


def test_a_traversal_name_is_only_a_display_name(office: Office) -> None:
    r = upload(office, "wang", "../../etc/passwd", b"root:x:0:0")
    assert r.status_code == 201  # type: ignore[attr-defined]
    assert r.json()["name"] == "passwd"  # type: ignore[attr-defined]
    got = office.client().get(f"/api/v1/cases/{office.case_id}/attachments/{r.json()['id']}",  # type: ignore[attr-defined]
                              headers=office.token("wang"))
    assert got.content == b"root:x:0:0" and "/" not in got.headers["Content-Disposition"].split("filename*")[1]


def test_refusals_store_nothing(office: Office) -> None:
    before = row_counts(office.url)
    assert upload(office, "scj", "x.pdf", b"x").status_code == 404  # type: ignore[attr-defined]
    assert upload(office, "zhao", "x.pdf", b"x").status_code == 403  # type: ignore[attr-defined]
    assert upload(office, "li", "x.pdf", b"x").status_code == 403  # type: ignore[attr-defined]
    r = upload(office, "fgj", "big.pdf", b"\0" * (MAX_BYTES + 1))
    assert r.status_code == 413 and r.json()["error"] == "too_large"  # type: ignore[attr-defined]
    r = upload(office, "fgj", "huge.pdf", b"\0" * (MAX_BYTES + 200_000))  # refused by its Content-Length
    assert r.status_code == 413  # type: ignore[attr-defined]
    assert row_counts(office.url) == before


def test_a_file_changed_in_the_database_is_refused_on_download(office: Office) -> None:
    aid = upload(office, "fgj", "报告.pdf", b"original").json()["id"]  # type: ignore[attr-defined]
    engine = create_engine(office.url)
    with engine.begin() as conn:  # both the bytes and their hash column: the audit event still knows
        conn.execute(text("UPDATE attachments SET content = :c, sha256 = :h WHERE id = :i"),
                     {"c": b"forged", "h": hashlib.sha256(b"forged").hexdigest(), "i": aid})
    engine.dispose()
    got = office.client().get(f"/api/v1/cases/{office.case_id}/attachments/{aid}", headers=office.token("wang"))
    assert got.status_code == 409 and got.json()["error"] == "integrity"
    assert "SHA-256" in got.json()["message"]
    assert office.client().get(f"/api/v1/cases/{office.case_id}/attachments/{aid}",
                               headers=office.token("scj")).status_code == 404


def test_the_upload_form_on_the_case_page(office: Office) -> None:
    c = office.signed_in("fgj")
    path = f"/cases/{office.case_id}"
    r = c.post(f"{path}/attachments", data={"csrf_token": csrf_of(c, path)}, files={"file": ("进展.txt", b"ok")})
    assert r.status_code == 303, r.text
    page = c.get(path).text
    assert "进展.txt" in page
    before = row_counts(office.url)
    r = c.post(f"{path}/attachments", data={"csrf_token": "wrong"}, files={"file": ("x.txt", b"x")})
    assert r.status_code == 403
    assert row_counts(office.url) == before


def test_on_postgresql_a_file_round_trips_and_a_refusal_stores_nothing(pg_office: Office) -> None:
    r = upload(pg_office, "fgj", "报告.pdf", b"%PDF-1.7 bytes")
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    got = pg_office.client().get(f"/api/v1/cases/{pg_office.case_id}/attachments/{r.json()['id']}",  # type: ignore[attr-defined]
                                 headers=pg_office.token("wang"))
    assert got.status_code == 200 and got.content == b"%PDF-1.7 bytes"
    before = row_counts(pg_office.url)
    assert upload(pg_office, "zhao", "x.pdf", b"x").status_code == 403  # type: ignore[attr-defined]
    assert row_counts(pg_office.url) == before
