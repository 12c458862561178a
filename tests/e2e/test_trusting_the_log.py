"""Trusting the log (SPEC §15): signed checkpoints, Merkle proofs and the state tables, as an
operator with database access would attack them.

One real history is built through the CLI per module (cases escalated by the scheduler, a
问责 decision, notices), checkpointed with the office's key and mailed to a file; each test
works on its own copy of the database and the key files. Every attack is made with the
project's own `event_hash`, so the chain itself still verifies wherever the attack recomputed
it — only the signed checkpoints (or the state check) can find it, and must, with exit 6
naming what."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, insert, inspect, select, text, update
from sqlalchemy.engine import Engine

from duban.engine.audit import GENESIS, event_hash
from duban.engine.merkle import event_leaves, root_of
from duban.exports.parallel_verify import verify_with_tree
from duban.storage.database import Database
from duban.storage.tables import AUDIT, CASES, CHECKPOINTS, NOTICES, TIMERS, USERS
from tests.conftest import Duban, row_counts

NOW = "2026-04-02T09:00"


def build_history(d: Duban) -> None:
    """Three cases: one done on time, one never signed (escalated, held accountable), one rectification."""
    d.ok("init")
    for name, role, unit in (("wang", "office", ""), ("li", "leader", ""), ("fgj", "unit", "区发改局"),
                             ("czj", "unit", "区财政局"), ("scj", "unit", "区市场监管局")):
        d.ok("user", "add", name, "--role", role, *(["--unit", unit] if unit else []))
    d.ok("case", "open", "supervision", "--title", "建立未落实政策问题台帐", "--unit", "区发改局", "--co-unit", "区财政局",
         "--due", "15wd", now="2026-03-02T09:00", actor="wang")
    d.ok("case", "open", "supervision", "--title", "推进“六证合一”改革", "--unit", "区市场监管局", "--due", "2026-03-13",
         now="2026-03-02T09:30", actor="wang")
    d.ok("case", "fire", "1", "accept", now="2026-03-02T10:00", actor="fgj")
    d.ok("case", "fire", "1", "report", "--note", "已建立台帐，共梳理问题12项", now="2026-03-10T16:00", actor="fgj")
    d.ok("case", "fire", "1", "verify", now="2026-03-11T09:00", actor="wang")
    d.ok("tick", now="2026-03-20T09:00")
    d.ok("case", "fire", "2", "hold_accountable", "--set", "measure=通报批评", "--note", "长期未签收",
         now="2026-03-20T10:00", actor="li")
    d.ok("case", "open", "rectification", "--title", "窗口服务整改", "--unit", "区财政局", "--due", "2026-04-30",
         now="2026-04-01T09:00", actor="wang")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signed")
    d = Duban(f"sqlite:///{folder / 'duban.db'}")
    build_history(d)
    d.ok("audit", "keygen", "--out", str(folder / "office.key"))
    d.ok("audit", "checkpoint", "--key", str(folder / "office.key"), "--out", str(folder / "mailed.txt"), now=NOW)
    return folder


class Office:
    """A copy of the template: its CLI, its files, and raw access to its tables (the attacker's)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = f"sqlite:///{folder / 'duban.db'}"
        self.d = Duban(self.url)
        self.key, self.pub, self.mailed = folder / "office.key", folder / "office.pub", folder / "mailed.txt"
        self.engine: Engine = create_engine(self.url)

    def verify(self, *extra: str) -> Any:
        return self.d("audit", "verify", "--pubkey", str(self.pub), *extra)

    def events(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(AUDIT).order_by(AUDIT.c.seq)).mappings()]

    def rewrite(self, events: list[dict[str, Any]]) -> None:
        """Replace the whole log with these events, renumbered and with the chain recomputed."""
        prev = GENESIS
        for seq, e in enumerate(events, 1):
            e["seq"], e["prev_hash"] = seq, prev
            e["hash"] = prev = event_hash(e)
        with self.engine.begin() as conn:
            conn.execute(delete(AUDIT))
            if events:
                conn.execute(insert(AUDIT), events)

    def sql(self, statement: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(statement)


@pytest.fixture
def office(template: Path, tmp_path: Path) -> Iterator[Office]:
    for name in ("duban.db", "office.key", "office.pub", "mailed.txt"):
        shutil.copy2(template / name, tmp_path / name)
    o = Office(tmp_path)
    yield o
    o.engine.dispose()


def fails(run: Any, *words: str) -> str:
    assert run.code == 6, (run.code, run.stdout, run.stderr)
    for w in words:
        assert w in run.stderr, (w, run.stderr)
    return str(run.stderr)


# -- what holds ------------------------------------------------------------------------------
class TestAnHonestLog:
    def test_every_check_passes(self, office: Office) -> None:
        run = office.verify("--checkpoint", str(office.mailed), "--state")
        assert run.code == 0, run.stderr
        assert "2 个检查点均成立：签名与根哈希" in run.stdout
        assert "重放 3 个案件" in run.stdout

    def test_the_checkpoint_file_is_a_c2sp_signed_note(self, office: Office) -> None:
        lines = office.mailed.read_text(encoding="utf-8").split("\n")
        events = office.events()
        assert lines[0] == "duban.local/audit"
        assert lines[1] == str(len(events))
        assert lines[3].startswith("time 2026-04-02T01:00:00Z")
        assert lines[4] == ""
        assert lines[5].startswith("— duban.local/audit ")

    def test_the_private_key_is_its_owners_only(self, office: Office, template: Path) -> None:
        assert stat.S_IMODE((template / "office.key").stat().st_mode) == 0o600
        assert (template / "office.pub").read_text(encoding="utf-8").startswith("duban.local/audit+")

    def test_keygen_prints_the_fingerprint_and_never_overwrites(self, office: Office) -> None:
        run = office.d.ok("--json", "audit", "keygen", "--out", str(office.folder / "second.key"))
        assert len(run.json["fingerprint"].replace(" ", "")) == 64
        again = office.d("audit", "keygen", "--out", str(office.folder / "second.key"))
        assert again.code == 2 and "已存在" in again.stderr

    def test_a_checkpoint_reads_only_the_events_since_the_last(self, office: Office) -> None:
        office.d.ok("case", "fire", "3", "submit_plan", now="2026-04-02T10:00", actor="czj")
        run = office.d.ok("--json", "audit", "checkpoint", "--key", str(office.key), now="2026-04-02T11:00")
        assert run.json["events_read"] == 1
        assert run.json["size"] == len(office.events())
        assert run.json["root"] == root_of(event_leaves(e["hash"] for e in office.events())).hex()

    def test_parallel_verify_computes_the_same_roots(self, office: Office) -> None:
        events = office.events()
        leaves = event_leaves(e["hash"] for e in events)
        sizes = [0, 1, 5, 7, len(events)]
        db = Database(office.url)
        try:
            for jobs in (1, 2):
                found = verify_with_tree(db, jobs, sizes, parallel_from=1, min_range=3)
                assert found.broken is None
                assert found.roots == {s: root_of(leaves[:s]) for s in sizes}
                assert found.root == root_of(leaves)
        finally:
            db.dispose()


# -- the attacks -------------------------------------------------------------------------
class TestTheLogRewritten:
    def test_an_edit_with_the_chain_recomputed(self, office: Office) -> None:
        events = office.events()
        decision = next(e for e in events if e["trigger"] == "hold_accountable")
        decision["data"] = {**decision["data"], "measure": "诫勉谈话"}
        office.rewrite(events)
        db = Database(office.url)  # the chain alone holds: every hash was recomputed
        try:
            assert verify_with_tree(db, 1, None).broken is None
        finally:
            db.dispose()
        fails(office.verify(), "检查点 #1", "默克尔根", "改动")
        # without the key, the stored checkpoint's root still disagrees (an operator could rewrite that row too)
        fails(office.d("audit", "verify"), "检查点 #1", "默克尔根")

    def test_the_last_events_dropped(self, office: Office) -> None:
        events = office.events()
        office.rewrite(events[:-3])
        fails(office.verify(), "检查点 #1", f"签署了 {len(events)} 条事件，但日志只有 {len(events) - 3} 条")

    def test_every_event_dropped(self, office: Office) -> None:
        n = len(office.events())
        office.rewrite([])
        fails(office.verify(), f"签署了 {n} 条事件，但日志只有 0 条")

    def test_an_event_inserted_below_the_checkpoint(self, office: Office) -> None:
        events = office.events()
        forged = {**events[3], "note": "补记：单位已于当日签收"}
        office.rewrite([*events[:4], forged, *events[4:-1]])  # the same number of events
        fails(office.verify(), "检查点 #1", "默克尔根")

    def test_two_events_swapped(self, office: Office) -> None:
        events = office.events()
        events[2], events[3] = events[3], events[2]
        office.rewrite(events)
        fails(office.verify(), "检查点 #1", "默克尔根")

    def test_the_checkpoints_table_wiped_too_the_mailed_file_still_convicts(self, office: Office) -> None:
        events = office.events()
        events[1]["note"] = "已按时签收"
        office.rewrite(events)
        office.sql(delete(CHECKPOINTS))
        assert office.verify().code == 0  # nothing stored is left to compare with …
        fails(office.verify("--checkpoint", str(office.mailed)), f"{office.mailed} 第 1 个检查点", "默克尔根")

    def test_a_new_checkpoint_over_a_rewritten_log_is_refused(self, office: Office) -> None:
        events = office.events()
        events[1]["note"] = "已按时签收"
        office.rewrite(events)
        office.d.ok("case", "fire", "3", "submit_plan", now="2026-04-02T10:00", actor="czj")
        before = row_counts(office.url)
        run = office.d("audit", "checkpoint", "--key", str(office.key), now="2026-04-02T11:00")
        fails(run, "未接在检查点 #1")
        assert row_counts(office.url) == before


class TestForgedCheckpoints:
    def test_a_forged_line(self, office: Office) -> None:
        body = office.mailed.read_text(encoding="utf-8").split("\n")
        body[1] = str(int(body[1]) - 2)  # claim a shorter log
        office.mailed.write_text("\n".join(body), encoding="utf-8")
        fails(office.verify("--checkpoint", str(office.mailed)), "第 1 个检查点", "签名与公钥不符")

    def test_a_forged_signature(self, office: Office) -> None:
        text_ = office.mailed.read_text(encoding="utf-8")
        head, _, sig = text_.rpartition(" ")
        office.mailed.write_text(head + " " + ("A" if sig[0] != "A" else "B") + sig[1:], encoding="utf-8")
        fails(office.verify("--checkpoint", str(office.mailed)), "第 1 个检查点")

    def test_a_forged_stored_row(self, office: Office) -> None:
        office.sql(update(CHECKPOINTS).values(size=3))
        fails(office.verify(), "检查点 #1", "检查点表被改过")

    def test_a_checkpoint_signed_by_another_key(self, office: Office) -> None:
        other = office.folder / "other.key"
        office.d.ok("audit", "keygen", "--out", str(other))
        office.d.ok("audit", "checkpoint", "--key", str(other), "--out", str(office.folder / "other.txt"), now=NOW)
        fails(office.verify(), "检查点 #2", "不是由密钥")
        fails(office.verify("--checkpoint", str(office.folder / "other.txt")), "other.txt 第 1 个检查点")


class TestBundles:
    @pytest.fixture
    def bundle(self, office: Office) -> Path:
        path = office.folder / "case2.json"
        office.d.ok("audit", "prove", "--case", "2", "--out", str(path))
        return path

    def check(self, office: Office, bundle: Path) -> Any:
        # offline: the database is gone from where the inspector checks
        (office.folder / "duban.db").rename(office.folder / "elsewhere.db")
        return office.d("audit", "verify", "--bundle", str(bundle), "--pubkey", str(office.pub))

    def edit(self, bundle: Path, change: Any) -> None:
        raw = json.loads(bundle.read_text(encoding="utf-8"))
        change(raw)
        bundle.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")

    def test_an_honest_bundle_verifies_offline(self, office: Office, bundle: Path) -> None:
        raw = json.loads(bundle.read_text(encoding="utf-8"))
        assert {e["trigger"] for e in raw["events"]} >= {"hold_accountable"}
        run = self.check(office, bundle)
        assert run.code == 0, run.stderr
        assert not (office.folder / "duban.db").exists()

    def test_one_event_edited(self, office: Office, bundle: Path) -> None:
        def change(raw: dict[str, Any]) -> None:
            decision = next(e for e in raw["events"] if e["trigger"] == "hold_accountable")
            decision["data"]["measure"] = "诫勉谈话"
        self.edit(bundle, change)
        fails(self.check(office, bundle), "内容与其哈希不符")

    def test_one_event_edited_and_rehashed(self, office: Office, bundle: Path) -> None:
        def change(raw: dict[str, Any]) -> None:
            decision = next(e for e in raw["events"] if e["trigger"] == "hold_accountable")
            decision["data"]["measure"] = "诫勉谈话"
            decision["hash"] = event_hash(decision)
        self.edit(bundle, change)
        fails(self.check(office, bundle), "包含证明不能导出")

    def test_one_proof_node_changed(self, office: Office, bundle: Path) -> None:
        def change(raw: dict[str, Any]) -> None:
            node = raw["events"][0]["proof"][1]
            raw["events"][0]["proof"][1] = ("0" if node[0] != "0" else "1") + node[1:]
        self.edit(bundle, change)
        fails(self.check(office, bundle), "第 1 条事件", "包含证明")

    def test_the_checkpoint_swapped(self, office: Office, bundle: Path) -> None:
        office.d.ok("case", "fire", "3", "submit_plan", now="2026-04-02T10:00", actor="czj")
        newer = office.d.ok("--json", "audit", "checkpoint", "--key", str(office.key), now="2026-04-02T11:00").json
        self.edit(bundle, lambda raw: raw.update(checkpoint=newer["note"]))  # validly signed, another size
        fails(self.check(office, bundle), "包含证明不能导出")

    def test_a_checkpoint_signed_by_another_key(self, office: Office, bundle: Path) -> None:
        other = office.folder / "other.key"
        office.d.ok("audit", "keygen", "--out", str(other))
        forged = office.d.ok("--json", "audit", "checkpoint", "--key", str(other), now=NOW).json
        self.edit(bundle, lambda raw: raw.update(checkpoint=forged["note"]))
        fails(self.check(office, bundle), "其检查点", "不是由密钥")

    def test_report_accountability_writes_the_bundle_beside_the_report(self, office: Office) -> None:
        out = office.folder / "问责专报.csv"
        office.d.ok("report", "accountability", "--case", "2", "--format", "csv", "--out", str(out), "--proof")
        bundle = Path(f"{out}.proof.json")
        assert json.loads(bundle.read_text(encoding="utf-8"))["case_id"] == 2
        assert self.check(office, bundle).code == 0

    def test_reports_carry_the_latest_checkpoint(self, office: Office) -> None:
        printed = office.d.ok("report", "accountability", "--case", "2").stdout
        cp = office.d.ok("--json", "report", "accountability", "--case", "2").json["checkpoint"]
        assert cp["size"] == len(office.events())
        assert f"审计检查点 #1：{cp['size']} 条事件，默克尔根 {cp['root']}" in printed

    def test_report_files_carry_the_latest_checkpoint(self, office: Office) -> None:
        """The CSV and XLSX a review is handed name the signed checkpoint too (SPEC §15)."""
        from openpyxl import load_workbook

        cp = office.d.ok("--json", "report", "units").json["checkpoint"]
        csv_file, xlsx_file = office.folder / "units.csv", office.folder / "units.xlsx"
        office.d.ok("report", "units", "--format", "csv", "--out", str(csv_file))
        office.d.ok("report", "units", "--format", "xlsx", "--out", str(xlsx_file))
        rows = list(csv.reader(io.StringIO(csv_file.read_text(encoding="utf-8-sig"))))
        at = rows.index(["【审计检查点】"])
        assert rows[at + 1][:3] == ["检查点编号", "事件数", "默克尔根"]
        assert rows[at + 2][1:3] == [str(cp["size"]), cp["root"]]
        sheet = load_workbook(xlsx_file)["审计检查点"]
        assert [c.value for c in sheet[2]][2] == cp["root"]


class TestTheStateTables:
    def test_an_edited_case_state(self, office: Office) -> None:
        office.sql(update(CASES).where(CASES.c.id == 2).values(state="done"))
        fails(office.verify("--state"), "案件 2：", "state:")

    def test_an_edited_user_role(self, office: Office) -> None:
        office.sql(update(USERS).where(USERS.c.name == "fgj").values(role="office", unit=None))
        fails(office.verify("--state"), "用户 fgj")

    def test_cancelled_timers(self, office: Office) -> None:
        office.sql(update(TIMERS).where(TIMERS.c.case_id == 3, TIMERS.c.status == "pending").values(status="cancelled"))
        fails(office.verify("--state"), "案件 3：计时器", "应为待触发")

    def test_deleted_notices(self, office: Office) -> None:
        with office.engine.begin() as conn:
            victim = conn.execute(select(NOTICES.c.id).where(NOTICES.c.case_id == 2).limit(1)).one()
            if inspect(conn).has_table("deliveries"):  # a notice's deliveries point at it (SPEC §14)
                conn.execute(text("DELETE FROM deliveries WHERE notice_id = :i"), {"i": victim.id})
            conn.execute(delete(NOTICES).where(NOTICES.c.id == victim.id))
        fails(office.verify("--state"), "案件 2：通知", "通知表中没有")


class TestExports:
    def export(self, office: Office) -> Path:
        path = office.folder / "audit.jsonl"
        office.d.ok("audit", "export", "--format", "jsonl", "--out", str(path), now=NOW)
        return path

    def test_the_manifest_carries_the_latest_checkpoint(self, office: Office) -> None:
        path = self.export(office)
        manifest = json.loads(Path(f"{path}.manifest.json").read_text(encoding="utf-8"))
        assert manifest["checkpoint"]["size"] == len(office.events())
        run = office.d("audit", "verify", "--file", str(path), "--pubkey", str(office.pub),
                       "--checkpoint", str(office.mailed))
        assert run.code == 0, run.stderr

    def test_an_export_and_its_manifest_rewritten_together(self, office: Office) -> None:
        path = self.export(office)
        events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        events[1]["note"] = "已按时签收"
        prev = GENESIS
        for e in events:
            e["prev_hash"] = prev
            e["hash"] = prev = event_hash(e)
        path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
        where = Path(f"{path}.manifest.json")
        manifest = json.loads(where.read_text(encoding="utf-8"))
        import hashlib

        manifest.update(last_hash=events[-1]["hash"], sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                        chain_head={"seq": events[-1]["seq"], "hash": events[-1]["hash"]})
        where.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
        assert office.d("audit", "verify", "--file", str(path)).code == 0  # consistent with itself …
        fails(office.d("audit", "verify", "--file", str(path), "--pubkey", str(office.pub)),
              "清单", "签名的默克尔根不符")
        fails(office.d("audit", "verify", "--file", str(path), "--pubkey", str(office.pub),
                       "--checkpoint", str(office.mailed)), "签名的默克尔根不符")


class TestKeysAndTheScheduler:
    def test_a_key_others_may_read_is_refused(self, office: Office) -> None:
        os.chmod(office.key, 0o644)
        before = row_counts(office.url)
        run = office.d("audit", "checkpoint", "--key", str(office.key))
        assert run.code == 2 and "chmod 600" in run.stderr
        assert row_counts(office.url) == before

    def test_a_missing_key(self, office: Office) -> None:
        before = row_counts(office.url)
        run = office.d("audit", "checkpoint", "--key", str(office.folder / "nope.key"))
        assert run.code == 2 and "没有这个密钥文件" in run.stderr and "audit keygen" in run.stderr
        run = office.d("scheduler", "run", "--once", "--key", str(office.folder / "nope.key"))
        assert run.code == 2
        assert row_counts(office.url) == before

    def test_the_scheduler_signs_daily_and_after_each_export(self, office: Office) -> None:
        def sweep(now: str) -> int:
            office.d.ok("scheduler", "run", "--once", "--key", str(office.key), now=now)
            return row_counts(office.url)["checkpoints"]

        assert sweep("2026-04-02T12:00") == 1  # signed this morning: nothing due
        office.d.ok("case", "fire", "3", "submit_plan", now="2026-04-02T13:00", actor="czj")
        office.d.ok("audit", "export", "--format", "jsonl", "--out", str(office.folder / "a.jsonl"), now="2026-04-02T14:00")
        assert sweep("2026-04-02T14:05") == 2  # after the export
        assert sweep("2026-04-02T15:00") == 2
        assert sweep("2026-04-03T14:04") == 2
        assert sweep("2026-04-03T14:06") == 3  # a day after the last
