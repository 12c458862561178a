"""Checkpoint text (C2SP tlog-checkpoint in a C2SP signed note) and the key lines."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from duban.engine.checkpoint import (
    Checkpoint,
    NoteError,
    key_id,
    open_note,
    parse_body,
    parse_verifier_key,
    sign,
    split_file,
    verifier_key,
)
from duban.service.keys import SigningKey, generate, load_signing_key

ROOT = bytes(range(32))


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return generate(tmp_path / "office.key", "duban.example/audit")[2]


def note_of(key: SigningKey, size: int = 5) -> str:
    cp = Checkpoint("duban.example/audit", size, ROOT, "2026-12-02T01:00:00Z")
    return sign(cp.body(), key.name, key.public_key.public, key.sign)


def test_the_body_is_origin_size_root_and_time_lines() -> None:
    body = Checkpoint("duban.example/audit", 5, ROOT, "2026-12-02T01:00:00Z").body()
    assert body == f"duban.example/audit\n5\n{base64.b64encode(ROOT).decode()}\ntime 2026-12-02T01:00:00Z\n"
    assert parse_body(body) == Checkpoint("duban.example/audit", 5, ROOT, "2026-12-02T01:00:00Z")


def test_the_key_id_is_the_note_specs() -> None:
    public = bytes(32)
    assert key_id("a/b", public) == hashlib.sha256(b"a/b\n\x01" + public).digest()[:4]


def test_a_signed_note_opens_with_its_key_only(key: SigningKey, tmp_path: Path) -> None:
    note = note_of(key)
    signature = note.rpartition("\n\n")[2]
    assert signature.startswith("— duban.example/audit ")
    pub = key.public_key
    assert open_note(note, pub.name, pub.public, pub.verify).size == 5
    other = generate(tmp_path / "other.key", "duban.example/audit")[2].public_key
    with pytest.raises(NoteError, match="不是由密钥"):
        open_note(note, other.name, other.public, other.verify)
    with pytest.raises(NoteError, match="签名与公钥不符"):
        open_note(note.replace("\n5\n", "\n4\n"), pub.name, pub.public, pub.verify)


def test_a_checkpoint_file_holds_notes_one_after_another(key: SigningKey) -> None:
    notes = [note_of(key, 5), note_of(key, 9)]
    assert split_file("\n".join(notes)) == notes


def test_the_key_files_round_trip_and_an_edited_public_key_is_refused(key: SigningKey, tmp_path: Path) -> None:
    assert load_signing_key(tmp_path / "office.key").seed == key.seed
    line = (tmp_path / "office.pub").read_text(encoding="utf-8")
    name, public = parse_verifier_key(line)
    assert verifier_key(name, public) == line.strip()
    other_key = base64.b64encode(b"\x01" + bytes(32)).decode()  # another key under the same name and ID
    with pytest.raises(NoteError, match="被改过"):
        parse_verifier_key(f"{name}+{key_id(name, public).hex()}+{other_key}")
