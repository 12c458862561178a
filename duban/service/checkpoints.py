"""Signing checkpoints of the audit log and checking the log against them (SPEC §15).

`make` signs ``{origin, size, root, time}`` for the log as it stands. It reads the latest
checkpoint's frontier and only the events since (``seq, prev_hash, hash``), checking on
the way that they hang from the checkpointed head — so its cost follows the events since
the last checkpoint, never the size of the log.

`check` is `audit verify` with checkpoints: the chain as before, and in the same pass the
Merkle root at every checkpointed size, compared with each stored checkpoint and each one
given in a file (the copies mailed to the inspectors); with the office's public key, each
signature too. What it finds is one `Finding` per checkpoint that no longer holds.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from duban.engine.audit import GENESIS, ChainBreak
from duban.engine.checkpoint import Checkpoint, NoteError, open_note, parse_body, sign, split_file, split_note
from duban.engine.merkle import Range, event_leaves
from duban.errors import IntegrityError, NotFoundError, UsageError

if TYPE_CHECKING:
    from duban.service.app import App
    from duban.service.keys import PublicKey, SigningKey


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """What a manifest or a report carries of a checkpoint."""
    return {"id": row["id"], "size": row["size"], "root": row["root"], "origin": row["origin"],
            "key_id": row["key_id"], "fingerprint": row["fingerprint"], "signed_at": row["signed_text"],
            "note": row["note"]}


def stored_summary(app: App) -> dict[str, Any] | None:
    with app.db.read() as conn:
        return latest_checkpoint(conn)


def with_text(row: dict[str, Any]) -> dict[str, Any]:
    body = _body_or_none(row["note"])
    return {**row, "signed_text": body.time if body else utc_text(row["signed_at"])}


# -- making one ---------------------------------------------------------------------------
def make(app: App, key: SigningKey, out: str | Path | None = None) -> dict[str, Any]:
    """Sign a checkpoint of the whole log, store it, append it to ``out``; what was signed."""
    from duban.exports.events import check_output
    from duban.storage import checkpoints

    if out is not None:
        check_output(out)
    public = key.public_key
    now = app.clock.now()
    with app.db.write() as conn:
        last = checkpoints.latest(conn)
        tree, head, size0 = _resume(last)
        upto = checkpoints.head(conn)
        expected = size0 + 1
        for rows in checkpoints.hashes(conn, size0, upto):
            for seq, prev, digest in rows:
                if seq != expected or prev != head:
                    raise IntegrityError(
                        f"审计事件 {seq} 未接在检查点 #{last['id'] if last else '-'}（{size0} 条）的末尾："
                        "其下的事件被删除、调换或改写——请运行 duban audit verify --pubkey office.pub")
                head, expected = digest, expected + 1
            try:
                tree.extend(event_leaves([digest for _, _, digest in rows]))
            except ValueError:
                raise IntegrityError(f"第 {size0} 条之后的审计事件：有哈希值不是十六进制（该行被改过）") from None
        cp = Checkpoint(key.name, tree.end, tree.root(), utc_text(now))
        note = sign(cp.body(), key.name, public.public, key.sign)
        row = {"size": cp.size, "root": cp.root.hex(), "head_hash": head if cp.size else None,
               "frontier": [h.hex() for h in tree.hashes()], "origin": cp.origin, "key_id": public.key_id,
               "fingerprint": public.fingerprint, "signed_at": now, "note": note}
        row["id"] = checkpoints.add(conn, **row)
    if out is not None:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(note + "\n")
    return {**summary({**row, "signed_text": cp.time}), "events_read": cp.size - size0,
            "file": str(out) if out is not None else None}


def _resume(last: dict[str, Any] | None) -> tuple[Range, str, int]:
    """The tree at the latest checkpoint (from its frontier, checked against its root), the
    hash the next event must point at, and the size."""
    if last is None:
        return Range(0), GENESIS, 0
    try:
        tree = Range.frontier(last["size"], [bytes.fromhex(h) for h in last["frontier"]])
    except (TypeError, ValueError):
        tree = None
    signed = _body_or_none(last["note"])
    if tree is None or tree.root().hex() != last["root"] or signed is None or signed.root.hex() != last["root"] \
            or signed.size != last["size"]:
        raise IntegrityError(f"检查点 #{last['id']}：存储的边界哈希、根哈希与签名内容不一致（检查点表被改过）"
                             "——请运行 duban audit verify --pubkey office.pub")
    return tree, last["head_hash"] or GENESIS, last["size"]


def _body_or_none(note: str) -> Checkpoint | None:
    try:
        return parse_body(split_note(note)[0])
    except NoteError:
        return None


# -- checking the log against checkpoints ------------------------------------------------
@dataclass
class Given:
    """One checkpoint to hold the log to: where it came from, and what it signs."""

    where: str  # "检查点 #3" or "FILE 第 2 个检查点"
    note: str
    stored: dict[str, Any] | None = None  # its row, for a stored one
    body: Checkpoint | None = None
    problem: str | None = None


@dataclass
class Checked:
    count: int
    head: str | None
    broken: ChainBreak | None
    root: str | None
    checkpoints: list[Given] = field(default_factory=list)

    @property
    def findings(self) -> list[Given]:
        return [g for g in self.checkpoints if g.problem is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.broken is None and not self.findings, "events": self.count, "head": self.head,
            "merkle_root": self.root, "first_bad_seq": self.broken.seq if self.broken else None,
            "reason": self.broken.reason if self.broken else None,
            "checkpoints": [{"checkpoint": g.where, "size": g.body.size if g.body else None,
                             "root": g.body.root.hex() if g.body else None, "ok": g.problem is None,
                             "problem": g.problem} for g in self.checkpoints],
        }


def gather(app: App, public: PublicKey | None, files: list[str]) -> list[Given]:
    """The stored checkpoints and those in ``files``, each opened (with ``public``: its
    signature checked; without, only its text read)."""
    from duban.storage import checkpoints

    given: list[Given] = []
    with app.db.read() as conn:
        for row in checkpoints.every(conn):
            given.append(Given(f"检查点 #{row['id']}", row["note"], stored=row))
    for path in files:
        p = Path(path)
        if not p.is_file():
            raise NotFoundError(f"--checkpoint {path}：文件不存在")
        try:
            notes = split_file(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise IntegrityError(f"--checkpoint {path}：不是 UTF-8 文本（检查点文件是纯文本）") from None
        if not notes:
            raise UsageError(f"--checkpoint {path}：其中没有检查点")
        given.extend(Given(f"{path} 第 {i} 个检查点", note) for i, note in enumerate(notes, 1))
    for g in given:
        _open(g, public)
    return given


def _open(g: Given, public: PublicKey | None) -> None:
    try:
        if public is not None:
            g.body = open_note(g.note, public.name, public.public, public.verify)
        else:
            g.body = parse_body(split_note(g.note)[0])
    except NoteError as exc:
        g.problem = str(exc)
        return
    row = g.stored
    if row is not None and (row["size"] != g.body.size or row["root"] != g.body.root.hex()):
        g.problem = (f"存储的大小和根哈希（{row['size']}，{row['root'][:16]}…）与其签名内容"
                     f"（{g.body.size}，{g.body.root.hex()[:16]}…）不符：检查点表被改过")


def check(app: App, public: PublicKey | None, files: list[str], jobs: int | None = None) -> Checked:
    """The chain, and the log's Merkle root at each checkpoint's size against its signed root."""
    from duban.exports.parallel_verify import PARALLEL_FROM, verify_with_tree

    given = gather(app, public, files)
    sizes = sorted({g.body.size for g in given if g.body is not None})
    # no checkpoint to hold the log to: the chain alone (no tree to compute)
    found = verify_with_tree(app.db, jobs, sizes if given else None, parallel_from=PARALLEL_FROM)
    checked = Checked(found.count, found.head, found.broken, found.root.hex() if found.root else None, given)
    if found.broken is not None:
        return checked  # the chain itself is broken: that is the finding
    for g in given:
        if g.problem is not None or g.body is None:
            continue
        size, signed = g.body.size, base64.b64encode(g.body.root).decode()
        root = found.roots.get(size)
        if size > found.count:
            g.problem = (f"签署了 {size} 条事件，但日志只有 {found.count} 条："
                         f"事件 {found.count + 1}–{size} 被删除")
        elif root is None:
            g.problem = "无法计算日志在该大小处的默克尔根（有事件哈希不是十六进制）"
        elif root != g.body.root:
            g.problem = (f"日志前 {size} 条事件的默克尔根为 {base64.b64encode(root).decode()}，检查点签署的是 "
                         f"{signed}：第 {size} 条及以前的事件被改动、插入、删除或调换，哈希链被重算")
    return checked


# -- the scheduler's duty -------------------------------------------------------------------
DAY = 86_400.0


class Duty:
    """`duban scheduler run --key`: after each sweep, sign a checkpoint when one is due — the
    log has events and none was signed yet, a day has passed since the last, or an export
    was made of events the last one does not cover."""

    def __init__(self, app: App, key: SigningKey, every: float = DAY) -> None:
        self.app, self.key, self.every = app, key, every

    def due(self) -> str | None:
        from duban.storage import checkpoints

        now = self.app.clock.now()
        with self.app.db.read() as conn:
            last = checkpoints.latest(conn)
            if last is None:
                return "first" if checkpoints.head(conn) else None
            if checkpoints.exports_since(conn, last["size"]):
                return "export"
        return "daily" if (now - last["signed_at"]).total_seconds() >= self.every else None

    def run(self) -> dict[str, Any] | None:
        from duban.logconfig import get_logger

        why = self.due()
        if why is None:
            return None
        made = make(self.app, self.key)
        get_logger("duban.scheduler").info("checkpoint.signed", why=why, checkpoint=made["id"], size=made["size"],
                                           root=made["root"], events_read=made["events_read"])
        return made

    def attach(self, runner: Any) -> None:
        """Run after each of the scheduler's sweeps (a failure is the sweep's: logged, retried)."""
        sweep = runner.sweep

        def sweep_and_sign(keep_lines: bool = True) -> Any:
            result = sweep(keep_lines)
            self.run()
            return result

        setattr(runner, "sweep", sweep_and_sign)  # noqa: B010 - an instance's own sweep, not the class's


def latest_checkpoint(conn: Any) -> dict[str, Any] | None:
    """The latest checkpoint as manifests and reports carry it, read on ``conn``."""
    from duban.storage import checkpoints

    row = checkpoints.latest(conn)
    return summary(with_text(row)) if row else None
