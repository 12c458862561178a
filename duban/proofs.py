"""Proof bundles: a case's audit events with RFC 6962 inclusion proofs (SPEC §15).

`prove` writes what a discipline inspector attaches to a 问责 decision: the case's events
(every hashed field, so each event's hash can be recomputed), for each its leaf index and
inclusion proof, and the signed checkpoint they lead to. The proofs need subtree hashes from
the whole tree, so proving reads the ``hash`` column of the checkpoint's first ``size``
events once (`merkle.Collector` keeps only the subtrees the proofs use).

`verify_bundle` checks a bundle with nothing but the office's public key: the checkpoint's
signature, each event's hash, and each proof against the signed root. No database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from duban.engine.audit import HASHED_FIELDS, event_hash, format_instant
from duban.engine.checkpoint import NoteError, open_note
from duban.engine.merkle import Collector, Range, event_leaves, inclusion_proof, leaf_hash, verify_inclusion
from duban.errors import IntegrityError, NotFoundError, UsageError

if TYPE_CHECKING:
    from duban.app import App
    from duban.keys import PublicKey

KIND = "duban-audit-proof"
VERSION = 1


def prove(app: App, case_id: int) -> dict[str, Any]:
    """The bundle of a case against the latest checkpoint (NotFoundError when there is none)."""
    from duban.checkpointing import summary, with_text
    from duban.storage import audit_log, checkpoints

    with app.db.read() as conn:
        latest = checkpoints.latest(conn)
        if latest is None:
            raise NotFoundError("no signed checkpoint yet: sign one first (duban audit checkpoint --key office.key)")
        events = [e for e in audit_log.iterate(conn, case_id=case_id)]
        if not events:
            raise NotFoundError(f"--case {case_id}: no such case (no audit event names it)")
        size = latest["size"]
        covered = [e for e in events if e["seq"] <= size]
        collect = Collector.for_proofs([e["seq"] - 1 for e in covered], size)
        tree = Range(0)
        for rows in checkpoints.hashes(conn, 0, size):
            try:
                tree.extend(event_leaves([digest for _, _, digest in rows]), collect)
            except ValueError:
                raise IntegrityError("a stored event hash is not hex: run duban audit verify --pubkey") from None
    if tree.end != size or tree.root().hex() != latest["root"]:
        raise IntegrityError(f"the log no longer matches checkpoint #{latest['id']} (size {size}): no proof can be "
                             "made — run duban audit verify --pubkey office.pub to see what changed")
    out = []
    for e in covered:
        record = {k: format_instant(e[k]) if k == "at" else e[k] for k in HASHED_FIELDS}
        record["hash"] = e["hash"]
        out.append({**record, "leaf_index": e["seq"] - 1,
                    "proof": [h.hex() for h in inclusion_proof(e["seq"] - 1, size, collect.subtree)]})
    cp = summary(with_text(latest))
    return {"bundle": KIND, "version": VERSION, "case_id": case_id, "created_at": app.clock.now().isoformat(),
            "checkpoint": cp["note"], "tree_size": size, "root": cp["root"], "key_id": cp["key_id"],
            "fingerprint": cp["fingerprint"], "events": out, "events_after_checkpoint": len(events) - len(covered)}


def write(bundle: dict[str, Any], path: str | Path) -> None:
    from duban.exporting import atomic_files, check_output

    target = check_output(path)
    with atomic_files(target) as (tmp,):
        tmp.write_text(json.dumps(bundle, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def verify_bundle(path: str | Path, public: PublicKey) -> dict[str, Any]:
    """Check a bundle offline; IntegrityError (exit 6) naming what does not hold."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"--bundle {path}: no such file")
    try:
        bundle = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"--bundle {path}: not a JSON proof bundle ({exc})") from None
    if not isinstance(bundle, dict) or bundle.get("bundle") != KIND or not isinstance(bundle.get("events"), list) \
            or not isinstance(bundle.get("checkpoint"), str):
        raise IntegrityError(f"--bundle {path}: not a duban proof bundle (written by duban audit prove)")
    if bundle.get("version") != VERSION:
        raise UsageError(f"--bundle {path}: version {bundle.get('version')} is not supported (expected {VERSION})")
    try:
        cp = open_note(bundle["checkpoint"], public.name, public.public, public.verify)
    except NoteError as exc:
        raise IntegrityError(f"--bundle {path}: its checkpoint: {exc}") from None
    case_id = bundle.get("case_id")
    for n, e in enumerate(bundle["events"], 1):
        where = f"--bundle {path}: event {n}" + (f" (audit event {e.get('seq')})" if isinstance(e, dict) else "")
        problem = _event_problem(e, case_id, cp.size, cp.root)
        if problem is not None:
            raise IntegrityError(f"{where}: {problem}")
    return {"ok": True, "bundle": str(path), "case_id": case_id, "events": len(bundle["events"]),
            "tree_size": cp.size, "root": cp.root.hex(), "origin": cp.origin, "signed_at": cp.time,
            "fingerprint": public.fingerprint}


def _event_problem(e: Any, case_id: Any, size: int, root: bytes) -> str | None:
    if not isinstance(e, dict) or any(k not in e for k in (*HASHED_FIELDS, "hash", "proof")):
        return "lacks fields (every hashed field, its hash and its proof are needed)"
    if not isinstance(e["seq"], int) or isinstance(e["seq"], bool) or not isinstance(e["hash"], str):
        return "its sequence number or hash is not of the right kind"
    if e["case_id"] != case_id:
        return f"belongs to case {e['case_id']}, the bundle is of case {case_id}"
    try:
        if event_hash(e) != e["hash"]:
            return "its content does not match its hash (the event was edited)"
        leaf = leaf_hash(bytes.fromhex(e["hash"]))
        proof = [bytes.fromhex(h) for h in e["proof"]]
    except (TypeError, ValueError):
        return "its hash or proof is not hex"
    if not verify_inclusion(e["seq"] - 1, size, leaf, proof, root):
        return (f"its inclusion proof does not lead to the signed root of {size} events "
                "(the proof, the event's place or the checkpoint was changed)")
    return None
