"""The manifest beside an audit export, and the offline check of an export against it.

``FILE.manifest.json`` records what was exported (filters), how much (row count, first and
last sequence number), the chain hashes at both ends (the first event's ``prev_hash``,
the last event's ``hash``), the database's chain head at export time and the file's
SHA-256. A reviewer given the two files checks them with ``duban audit verify --file``,
which reads only these files (no database): each JSONL event's own hash, increasing
sequence numbers, ``prev_hash → hash`` continuity wherever sequence numbers are
consecutive (everywhere, for an unfiltered export), and the manifest's count, ends and
SHA-256. CSV and XLSX exports are for reading, not re-hashing: for them only the SHA-256
is checked.

This module imports only the standard library and the pure chain functions, so the
offline check starts fast and cannot touch a database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from duban.engine.audit import GENESIS, HASHED_FIELDS, batch_hashes, batch_of, event_hash, scan_json
from duban.errors import IntegrityError, NotFoundError, UsageError

MANIFEST_VERSION = 1
SUFFIX = ".manifest.json"
_CHUNK = 1 << 20
_FIELDS = (*HASHED_FIELDS, "hash")
_FIELD_SET = frozenset(_FIELDS)


@dataclass(frozen=True)
class Manifest:
    """What an export holds; written beside it as JSON.

    Attributes:
        file: the export's file name (without folder).
        format: csv, jsonl or xlsx.
        created_at: when it was written (ISO 8601, office zone).
        filters: the filters given (case_id, unit, workflow, since, until; None when not given).
        whole_chain: True when no filter was given: the file is the chain from event 1.
        rows: events in the file.
        first_seq, last_seq: sequence numbers at both ends (None when empty).
        first_prev_hash: the first event's ``prev_hash`` (links the file to the chain before it).
        last_hash: the last event's ``hash``.
        chain_head: the database's last event when exported: ``{"seq": …, "hash": …}``.
        sha256: SHA-256 of the file's bytes.
        checkpoint: the latest signed checkpoint when exported (size, root, key, the signed
            note), or None; `verify_signed` holds an unfiltered export to it.
    """

    file: str
    format: str
    created_at: str
    filters: dict[str, Any]
    whole_chain: bool
    rows: int
    first_seq: int | None
    last_seq: int | None
    first_prev_hash: str | None
    last_hash: str | None
    chain_head: dict[str, Any] | None
    sha256: str
    checkpoint: dict[str, Any] | None = None
    manifest_version: int = field(default=MANIFEST_VERSION)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any, where: Path) -> Manifest:
        """Read a manifest document; IntegrityError (exit 6) if it is not one."""
        names = [f for f in cls.__dataclass_fields__ if f not in ("manifest_version", "checkpoint")]
        if not isinstance(raw, dict) or any(n not in raw for n in names):
            missing = [n for n in names if not isinstance(raw, dict) or n not in raw]
            raise IntegrityError(f"manifest {where}: not a duban export manifest (missing {', '.join(missing)})")
        if raw.get("manifest_version", MANIFEST_VERSION) != MANIFEST_VERSION:
            raise IntegrityError(f"manifest {where}: version {raw['manifest_version']} is not supported (expected {MANIFEST_VERSION})")
        if not isinstance(raw["rows"], int) or not isinstance(raw["sha256"], str):
            raise IntegrityError(f"manifest {where}: 'rows' must be a number and 'sha256' a hex string")
        checkpoint = raw.get("checkpoint")
        if checkpoint is not None and not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("note"), str)):
            raise IntegrityError(f"manifest {where}: 'checkpoint' must be the signed checkpoint (with its note)")
        return cls(**{n: raw[n] for n in names}, checkpoint=checkpoint)


def manifest_path(export: str | Path) -> Path:
    """Where the manifest of an export lives: beside it, named ``FILE.manifest.json``."""
    p = Path(export)
    return p.with_name(p.name + SUFFIX)


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dumps(manifest: Manifest) -> str:
    return json.dumps(manifest.to_json(), ensure_ascii=False, indent=2) + "\n"


def read_manifest(export: str | Path) -> Manifest:
    """The manifest beside ``export``.

    Raises:
        NotFoundError: the export or its manifest does not exist (exit 3).
        IntegrityError: the manifest is not valid JSON or not a manifest (exit 6).
    """
    if not Path(export).is_file():
        raise NotFoundError(f"--file {export}: no such file")
    where = manifest_path(export)
    if not where.is_file():
        raise NotFoundError(f"--file {export}: its manifest {where} is missing (it is written beside every export)")
    try:
        raw = json.loads(where.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"manifest {where}: not valid JSON ({exc})") from None
    return Manifest.from_json(raw, where)


@dataclass
class ExportCheck:
    """The outcome of checking an export against its manifest.

    Attributes:
        file: the export checked.
        checked: ``events`` (every event re-hashed) or ``sha256`` (CSV/XLSX: bytes only).
        rows: events read before the check ended.
        problem: None when everything matches; else what is wrong.
        line: the line of the first bad event (JSONL), if one was found.
        seq: the sequence number of the first bad event, if known.
    """

    file: str
    checked: str
    rows: int = 0
    last_seq: int | None = None
    last_hash: str | None = None
    problem: str | None = None
    line: int | None = None
    seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "file": self.file, "checked": self.checked, "events": self.rows,
                "last_seq": self.last_seq, "last_hash": self.last_hash, "problem": self.problem,
                "line": self.line, "first_bad_seq": self.seq}

    def message(self) -> str:
        """The problem as one line naming the file, line and event."""
        where = f"{self.file}" + (f" line {self.line}" if self.line else "")
        event = f", audit event {self.seq}" if self.seq is not None else ""
        return f"{where}{event}: {self.problem}"


def verify_export(export: str | Path) -> ExportCheck:
    """Check an export against its manifest, offline. Never raises for a mismatch: the
    returned check says what does not match; raises only when a file is missing or the
    manifest unreadable (see `read_manifest`)."""
    manifest = read_manifest(export)
    if manifest.format != "jsonl":
        check = ExportCheck(str(export), "sha256", rows=manifest.rows)
        if sha256_file(export) != manifest.sha256:
            check.problem = f"the file's SHA-256 differs from its manifest's (the {manifest.format} file was changed)"
        return check
    with open(export, "rb") as fh:
        digest = hashlib.sha256()
        check = _check_lines(_read_lines(fh, digest), manifest, ExportCheck(str(export), "events"))
        if check.ok:
            check.problem = _compare_manifest(check, manifest, digest.hexdigest())
    return check


Parsed = tuple[dict[str, Any] | None, str | None, str | None]  # (record, problem, the record's hash)


def _read_lines(fh: Any, digest: Any) -> Iterator[Parsed]:
    """Each line parsed, with its event's hash; read ``_CHUNK`` bytes of lines at a time, every
    byte also going into ``digest``. The hashes of a chunk's events are worked out together
    (`batch_hashes`); should that fail, each is left for `_check_lines` to work out in turn."""
    while chunk := fh.readlines(_CHUNK):
        digest.update(b"".join(chunk))
        parsed = _parse_chunk(chunk)
        good = [record for record, problem in parsed if problem is None and record is not None]
        try:
            hashes: list[str | None] = list(batch_hashes(batch_of(good)))
        except Exception:  # met again, in order, by event_hash
            hashes = [None] * len(good)
        found = iter(hashes)
        for record, problem in parsed:
            yield record, problem, next(found) if problem is None else None


def _parse_chunk(chunk: list[bytes]) -> list[tuple[dict[str, Any] | None, str | None]]:
    """`_parse` of each line. A line that is UTF-8 and one whole JSON value is decoded by the json
    scanner straight from the chunk's text (what `json.loads` of its bytes returns); any other
    line goes through `_parse` itself."""
    try:
        texts = b"".join(chunk).decode().split("\n")
    except UnicodeDecodeError:
        return [_parse(raw) for raw in chunk]
    if texts and not texts[-1]:
        texts.pop()  # after the last newline
    if len(texts) != len(chunk):
        return [_parse(raw) for raw in chunk]
    out = []
    for raw, text in zip(chunk, texts, strict=True):
        try:
            record, end = scan_json(text, 0)
        except (StopIteration, ValueError):
            end = -1
        out.append(_check_record(record) if end == len(text) else _parse(raw))
    return out


def _check_lines(lines: Iterable[Parsed], m: Manifest, check: ExportCheck) -> ExportCheck:
    """Walk the events; stop at the first that does not verify."""
    prev_seq: int | None = None
    prev_hash = GENESIS if m.whole_chain else m.first_prev_hash
    for line, (record, problem, hashed) in enumerate(lines, 1):
        seq = record.get("seq") if record else None
        if problem is None:
            assert record is not None and isinstance(seq, int)
            problem = _link_problem(record, seq, prev_seq, prev_hash, m, hashed)
        if problem is not None:
            check.problem, check.line, check.seq = problem, line, seq if isinstance(seq, int) else None
            return check
        assert record is not None and isinstance(seq, int)
        prev_seq, prev_hash = seq, record["hash"]
        check.rows, check.last_seq, check.last_hash = check.rows + 1, seq, prev_hash
    return check


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "not a valid JSON event (the line was cut short or edited)"
    return _check_record(record)


def _check_record(record: Any) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(record, dict):
        return None, "not a JSON object"
    if not record.keys() >= _FIELD_SET:
        missing = [f for f in _FIELDS if f not in record]
        return record, f"lacks {', '.join(missing)} (every hashed field must be kept)"
    if not isinstance(record["seq"], int) or isinstance(record["seq"], bool):
        return record, "its sequence number is not a whole number"
    return record, None


def _link_problem(record: dict[str, Any], seq: int, prev_seq: int | None, prev_hash: str | None, m: Manifest,
                  hashed: str | None = None) -> str | None:
    """Why this event does not follow the one before it (or start the file), or None; ``hashed``
    is the event's hash when already worked out."""
    if (event_hash(record) if hashed is None else hashed) != record["hash"]:
        return "its content does not match its hash (the event was edited)"
    if prev_seq is None:
        if seq != m.first_seq:
            return f"the file starts at event {seq} but its manifest says {m.first_seq} (events removed or added at the start)"
        if record["prev_hash"] != prev_hash:
            return "its previous-hash is not the one the manifest records for the start of the export"
        return None
    if seq <= prev_seq:
        return f"it comes after event {prev_seq}: sequence numbers must increase (events reordered or repeated)"
    if m.whole_chain and seq != prev_seq + 1:
        return f"it follows event {prev_seq}: event {prev_seq + 1} is missing (an unfiltered export has every event)"
    if seq == prev_seq + 1 and record["prev_hash"] != prev_hash:
        return f"its previous-hash does not match event {prev_seq} before it (an event was edited or replaced)"
    return None


def _compare_manifest(check: ExportCheck, m: Manifest, sha256: str) -> str | None:
    """After every event verified: do the count, the ends and the bytes match the manifest, and
    does an unfiltered export end at the chain head its own manifest records?"""
    if check.rows != m.rows:
        return f"manifest mismatch: the file has {check.rows} events, its manifest says {m.rows} (lines removed or added)"
    if check.last_seq != m.last_seq or check.last_hash != m.last_hash:
        return (f"manifest mismatch: the file ends at event {check.last_seq}, its manifest at event {m.last_seq} "
                f"with another hash (the file was cut short or extended)")
    head_seq = m.chain_head.get("seq") if isinstance(m.chain_head, dict) else None
    if m.whole_chain and m.last_seq != head_seq:  # an export always records the head it read up to
        return (f"manifest mismatch: an unfiltered export ends at the chain head, but this one ends at event "
                f"{m.last_seq} and its manifest's chain head is "
                + (f"event {head_seq}" if head_seq is not None else "missing")
                + " (events cut off the end, and the manifest edited)")
    if sha256 != m.sha256:
        return "manifest mismatch: the file's SHA-256 differs from its manifest's (the file was changed)"
    return None


# -- an export held to signed checkpoints (SPEC §15) ----------------------------------------
def verify_signed(export: str | Path, public: Any, notes: list[tuple[str, str]]) -> dict[str, Any]:
    """After `verify_export` passed: the export's events against signed checkpoints — the one
    its manifest carries and ``notes`` ((where, signed note) from the inspectors' files). Each
    checkpoint's signature is checked with ``public`` (a `duban.service.keys.PublicKey`), and the
    Merkle root of the export's first ``size`` events must be its signed root; so a file and
    manifest rewritten together no longer pass. Only an unfiltered JSONL export holds every
    event from the first, which the root needs. IntegrityError (exit 6) naming what fails."""
    from duban.engine.checkpoint import NoteError, open_note
    from duban.engine.merkle import Range, event_leaves

    manifest = read_manifest(export)
    if manifest.format != "jsonl" or not manifest.whole_chain:
        raise UsageError("--pubkey 只核验未筛选的 JSONL 导出（只有它包含从第一条起的全部事件，默克尔根需要它们）；此导出"
                         + ("经过筛选" if manifest.format == "jsonl" else f"为 {manifest.format}"))
    given = list(notes)
    if manifest.checkpoint is not None:
        given.insert(0, (f"清单 {manifest_path(export)} 所附检查点", manifest.checkpoint["note"]))
    if not given:
        raise IntegrityError(f"{export}：其清单未附签名检查点，也未给出 --checkpoint FILE：没有可核对的签名")
    signed = []
    for where, note in given:
        try:
            signed.append((where, open_note(note, public.name, public.public, public.verify)))
        except NoteError as exc:
            raise IntegrityError(f"{where}：{exc}") from None
    sizes = {cp.size for _, cp in signed}
    roots: dict[int, bytes] = {0: Range(0).root()} if 0 in sizes else {}
    tree, pending = Range(0), []
    with open(export, "rb") as fh:
        for raw in fh:
            pending.append(json.loads(raw)["hash"])
            if tree.end + len(pending) in sizes or len(pending) >= 4096:
                tree.extend(event_leaves(pending))
                pending = []
                if tree.end in sizes:
                    roots[tree.end] = tree.root()
    tree.extend(event_leaves(pending))
    roots.setdefault(tree.end, tree.root())
    for where, cp in signed:
        if cp.size > tree.end:
            raise IntegrityError(f"{where}：签署了 {cp.size} 条事件，但 {export} 只有 {tree.end} 条（导出与清单中的事件被删除）")
        if roots.get(cp.size) != cp.root:
            raise IntegrityError(f"{where}：导出的前 {cp.size} 条事件与其签名的默克尔根不符（导出与清单被一并改写）")
    return {"signed_checkpoints": [{"checkpoint": where, "size": cp.size, "root": cp.root.hex()} for where, cp in signed]}
