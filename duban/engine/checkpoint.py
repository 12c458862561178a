"""Signed checkpoints as text: C2SP tlog-checkpoint bodies in C2SP signed notes (SPEC §15).

A checkpoint's body is the origin line, the tree size, the base64 root and one extension
line with the time it was signed, each ending in a newline; the note adds a blank line and
``— <key name> <base64(key ID ‖ Ed25519 signature)>``, the key ID being the first four
bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key). This is the form Go's
golang.org/x/mod/sumdb/note and the transparency-dev tools read, so an inspector may check
a mailed checkpoint with those as well as with duban.

Pure text and hashlib: signing and checking the signature itself are given as functions
(`duban.service.keys` holds the keys and the cryptography library).
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
        raise NoteError("检查点应为来源行、大小行、根哈希行和时间行，每行以换行结尾")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("检查点的来源行为空")
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise NoteError(f"检查点的大小行 {size!r} 不是整数")
    try:
        root_bytes = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError):
        root_bytes = b""
    if len(root_bytes) != 32:
        raise NoteError(f"检查点的根哈希行 {root!r} 不是 base64 编码的 32 字节")
    times = [line[len(TIME):] for line in lines[3:-1] if line.startswith(TIME)]
    if len(times) != 1 or any(not line for line in lines[3:-1]):
        raise NoteError("检查点须在根哈希行之后恰有一行 'time …'")
    return Checkpoint(origin, int(size), root_bytes, times[0])


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def check_key_name(name: str) -> str:
    """A key name as the note format allows: not empty, no spaces, no '+' (it separates the
    parts of a key string), no control characters."""
    if not name or any(c.isspace() or c == "+" or ord(c) < 0x20 for c in name):
        raise NoteError(f"密钥名称 {name!r}：不能含空格或 '+'，例如 duban.example/audit")
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
        raise NoteError("不是 Ed25519 公钥行（名称+编号+base64 公钥，即 duban audit keygen 写出的格式）")
    public = raw[1:]
    if key_id(name, public).hex() != hexid.lower():
        raise NoteError("公钥行的密钥编号与其名称和公钥不符（该行被改过）")
    return name, public


def sign(body: str, name: str, public: bytes, signer: Callable[[bytes], bytes]) -> str:
    """The signed note: the body, a blank line and the signature line."""
    signature = base64.b64encode(key_id(name, public) + signer(body.encode())).decode()
    return f"{body}\n{DASH}{name} {signature}\n"


def split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """(text, [(key name, key ID, signature)]) of one signed note."""
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("签名文本中除换行外不能有控制字符")
    text, sep, signatures = note.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("没有签名：签名文本应为正文、一个空行，再接 '— 名称 签名' 行")
    found = []
    for line in signatures[:-1].split("\n"):
        name, _, encoded = line.removeprefix(DASH).partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not line.startswith(DASH) or not name or len(raw) < 5:
            raise NoteError(f"签名行 {line!r} 不是 '— 名称 base64(密钥编号 ‖ 签名)'")
        found.append((name, raw[:4], raw[4:]))
    return text + "\n", found


def open_note(note: str, name: str, public: bytes, verify: Callable[[bytes, bytes], bool]) -> Checkpoint:
    """The checkpoint a note signs, if the key (name, public) signed it; NoteError saying why not."""
    text, signatures = split_note(note)
    ours = [sig for n, kid, sig in signatures if n == name and kid == key_id(name, public)]
    if not ours:
        who = ", ".join(f"{n} ({kid.hex()})" for n, kid, _ in signatures)
        raise NoteError(f"不是由密钥 {name}（{key_id(name, public).hex()}）签署，而是由 {who} 签署")
    if not all(verify(sig, text.encode()) for sig in ours):
        raise NoteError("签名与公钥不符（正文或签名被改过）")
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
