"""The office's Ed25519 checkpoint key on disk (SPEC §15), through the `cryptography` library.

The private key file is one line in the form Go's golang.org/x/mod/sumdb/note uses for a
signer key, ``PRIVATE+KEY+<name>+<key ID>+base64(0x01 ‖ 32-byte seed)``, created with mode
0600; the public key (``office.pub`` beside it) is the verifier line
``<name>+<key ID>+base64(0x01 ‖ public key)`` handed to the inspectors. A private key file
that group or others may read is refused (a copied key lets anyone sign a rewritten log).
The fingerprint is SHA-256 of the public key, shown in groups of four hex digits so it can
be read aloud and printed in bulletins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from duban.engine.checkpoint import ED25519, NoteError, check_key_name, key_id, parse_verifier_key, verifier_key
from duban.errors import NotFoundError, UsageError

PRIVATE = "PRIVATE+KEY+"
DEFAULT_NAME = "duban.local/audit"


def fingerprint(public: bytes) -> str:
    digest = hashlib.sha256(public).hexdigest()
    return " ".join(digest[i:i + 4] for i in range(0, len(digest), 4))


@dataclass(frozen=True)
class PublicKey:
    name: str
    public: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    @property
    def key_id(self) -> str:
        return key_id(self.name, self.public).hex()

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    name: str
    seed: bytes

    @property
    def public_key(self) -> PublicKey:
        raw = self._key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PublicKey(self.name, raw)

    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def sign(self, message: bytes) -> bytes:
        return self._key().sign(message)


def pub_path(key_file: str | Path) -> Path:
    """``office.key`` → ``office.pub`` (a name without .key gets .pub added)."""
    p = Path(key_file)
    return p.with_suffix(".pub") if p.suffix == ".key" else p.with_name(p.name + ".pub")


def generate(out: str | Path, name: str = DEFAULT_NAME) -> tuple[Path, Path, SigningKey]:
    """Write a new key pair; refuses to overwrite either file (UsageError, exit 2)."""
    try:
        check_key_name(name)
    except NoteError as exc:
        raise UsageError(f"--name：{exc}") from None
    key_file, public_file = Path(out), pub_path(out)
    for p in (key_file, public_file):
        if p.exists() or p.is_symlink():
            raise UsageError(f"{p} 已存在：密钥从不覆盖（先移走它，或继续使用它——用它签署的检查点只能用它的 .pub 核验）")
    if not key_file.resolve().parent.is_dir():
        raise UsageError(f"--out {out}：文件夹 {key_file.resolve().parent} 不存在")
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    key = SigningKey(name, seed)
    public = key.public_key
    line = f"{PRIVATE}{name}+{public.key_id}+{base64.b64encode(ED25519 + seed).decode()}\n"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    public_file.write_text(verifier_key(name, public.public) + "\n", encoding="utf-8")
    return key_file, public_file, key


def load_signing_key(path: str | Path, option: str = "--key") -> SigningKey:
    """The private key; UsageError (exit 2) if missing, readable by others, or not a key."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{option} {path}：没有这个密钥文件（生成：duban audit keygen --out {path}）")
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        raise UsageError(f"{option} {path}：密钥文件可被他人读取（权限 {mode:04o}）；只允许本人读取：chmod 600 {path}")
    text = p.read_bytes().decode("utf-8", errors="replace").strip()
    parts = text.removeprefix(PRIVATE).split("+", 2)  # the base64 key may itself hold "+"
    try:
        raw = base64.b64decode(parts[-1], validate=True) if len(parts) == 3 else b""
    except (binascii.Error, ValueError):
        raw = b""
    if not text.startswith(PRIVATE) or len(raw) != 33 or raw[:1] != ED25519:
        raise UsageError(f"{option} {path}：不是 duban 检查点密钥（PRIVATE+KEY+名称+编号+密钥，即 audit keygen 写出的格式）")
    key = SigningKey(parts[0], raw[1:])
    if key.public_key.key_id != parts[1].lower():
        raise UsageError(f"{option} {path}：密钥编号与其名称和密钥不符（文件被改过）")
    return key


def load_public_key(path: str | Path, option: str = "--pubkey") -> PublicKey:
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{option} {path}：文件不存在（应为办公室的公钥 office.pub）")
    try:
        name, public = parse_verifier_key(p.read_text(encoding="utf-8"))
    except (NoteError, UnicodeDecodeError) as exc:
        raise UsageError(f"{option} {path}：{exc}") from None
    return PublicKey(name, public)
