"""Signed checkpoints as text: C2SP tlog-checkpoint bodies in C2SP signed notes (SPEC §15).

A checkpoint's body is the origin line, the tree size, the base64 root and one extension
line with the time it was signed, each ending in a newline; the note adds a blank line and
``— <key name> <base64(key ID ‖ Ed25519 signature)>``, the key ID being the first four
bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key). This is the form Go's
golang.org/x/mod/sumdb/note and the transparency-dev tools read, so an inspector may check
a mailed checkpoint with those as well as with duban.

Pure text and hashlib: signing and checking the signature itself are given as functions
(`duban.keys` holds the keys and the cryptography library).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

ED25519 = b"\x01"  # the signature type byte of Ed25519 in a signed note
DASH = "\u2014 "
TIME = "time "  # the extension line: when the office signed it (UTC, ISO 8601)


class NoteError(ValueError):
    """A checkpoint or key text that is not what it must be; the message says what."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: str  # ISO 8601 UTC, e.g. 2026-12-02T09:00:00Z

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n{TIME}{self.time}\n"


def parse_body(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint is an origin line, a size line, a root line and a time line, each ending in a newline")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("the checkpoint's origin line is empty")
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise NoteError(f"the checkpoint's size line {size!r} is not a whole number")
    try:
        root_bytes = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError):
        root_bytes = b""
    if len(root_bytes) != 32:
        raise NoteError(f"the checkpoint's root line {root!r} is not 32 bytes in base64")
    times = [line[len(TIME):] for line in lines[3:-1] if line.startswith(TIME)]
    if len(times) != 1 or any(not line for line in lines[3:-1]):
        raise NoteError("the checkpoint must carry exactly one 'time …' line after its root")
    return Checkpoint(origin, int(size), root_bytes, times[0])


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def check_key_name(name: str) -> str:
    """A key name as the note format allows: not empty, no spaces, no '+' (it separates the
    parts of a key string), no control characters."""
    if not name or any(c.isspace() or c == "+" or ord(c) < 0x20 for c in name):
        raise NoteError(f"key name {name!r}: use a name without spaces or '+', e.g. duban.example/audit")
    return name


def verifier_key(name: str, public: bytes) -> str:
    """The public key as one line: ``name+keyid+base64(0x01 ‖ key)`` (the note verifier form)."""
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(ED25519 + public).decode()}"


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """(name, 32-byte public key) of a verifier key line; NoteError if it is not one."""
    name, sep1, rest = text.strip().partition("+")
    hexid, sep2, encoded = rest.partition("+")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not (sep1 and sep2 and name) or len(raw) != 33 or raw[:1] != ED25519:
        raise NoteError("not an Ed25519 public key line (name+keyid+base64 key, as `duban audit keygen` writes it)")
    public = raw[1:]
    if key_id(name, public).hex() != hexid.lower():
        raise NoteError("the public key line's key ID does not match its name and key (the line was edited)")
    return name, public


def sign(body: str, name: str, public: bytes, signer: Callable[[bytes], bytes]) -> str:
    """The signed note: the body, a blank line and the signature line."""
    signature = base64.b64encode(key_id(name, public) + signer(body.encode())).decode()
    return f"{body}\n{DASH}{name} {signature}\n"


def split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """(text, [(key name, key ID, signature)]) of one signed note."""
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("a signed note holds no control characters but newlines")
    text, sep, signatures = note.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("no signature: a signed note is its text, a blank line, then '— name signature' lines")
    found = []
    for line in signatures[:-1].split("\n"):
        name, _, encoded = line.removeprefix(DASH).partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not line.startswith(DASH) or not name or len(raw) < 5:
            raise NoteError(f"the signature line {line!r} is not '— name base64(key ID ‖ signature)'")
        found.append((name, raw[:4], raw[4:]))
    return text + "\n", found


def open_note(note: str, name: str, public: bytes, verify: Callable[[bytes, bytes], bool]) -> Checkpoint:
    """The checkpoint a note signs, if the key (name, public) signed it; NoteError saying why not."""
    text, signatures = split_note(note)
    ours = [sig for n, kid, sig in signatures if n == name and kid == key_id(name, public)]
    if not ours:
        who = ", ".join(f"{n} ({kid.hex()})" for n, kid, _ in signatures)
        raise NoteError(f"it is not signed by the key {name} ({key_id(name, public).hex()}) but by {who}")
    if not all(verify(sig, text.encode()) for sig in ours):
        raise NoteError("its signature does not verify with the public key (the text or the signature was changed)")
    return parse_body(text)


def split_file(text: str) -> list[str]:
    """The signed notes of a checkpoint file, one after another (blank lines between them)."""
    notes: list[str] = []
    lines = text.split("\n")
    current: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not current and not line:
            i += 1
            continue
        if not line and i + 1 < len(lines) and lines[i + 1].startswith(DASH):
            j = i + 1
            while j < len(lines) and lines[j].startswith(DASH):
                j += 1
            notes.append("\n".join([*current, "", *lines[i + 1:j]]) + "\n")
            current, i = [], j
            continue
        current.append(line)
        i += 1
    if current:
        notes.append("\n".join(current))  # no signature: `split_note` says so
    return notes
