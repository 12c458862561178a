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
    from duban.service.app import App
    from duban.service.keys import PublicKey

KIND = "duban-audit-proof"
VERSION = 1


def prove(app: App, case_id: int) -> dict[str, Any]:
    """The bundle of a case against the latest checkpoint (NotFoundError when there is none)."""
    from duban.service.checkpoints import summary, with_text
    from duban.storage import audit_log, checkpoints

    with app.db.read() as conn:
        latest = checkpoints.latest(conn)
        if latest is None:
            raise NotFoundError("尚未签署检查点：先签署一个（duban audit checkpoint --key office.key）")
        events = [e for e in audit_log.iterate(conn, case_id=case_id)]
        if not events:
            raise NotFoundError(f"--case {case_id}：没有这个案件（没有审计事件属于它）")
        size = latest["size"]
        covered = [e for e in events if e["seq"] <= size]
        collect = Collector.for_proofs([e["seq"] - 1 for e in covered], size)
        tree = Range(0)
        for rows in checkpoints.hashes(conn, 0, size):
            try:
                tree.extend(event_leaves([digest for _, _, digest in rows]), collect)
            except ValueError:
                raise IntegrityError("有事件哈希不是十六进制：请运行 duban audit verify --pubkey office.pub") from None
    if tree.end != size or tree.root().hex() != latest["root"]:
        raise IntegrityError(f"日志已与检查点 #{latest['id']}（{size} 条）不符，无法生成证明——"
                             "请运行 duban audit verify --pubkey office.pub 查明改动")
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
    from duban.exports.events import atomic_files, check_output

    target = check_output(path)
    with atomic_files(target) as (tmp,):
        tmp.write_text(json.dumps(bundle, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def verify_bundle(path: str | Path, public: PublicKey) -> dict[str, Any]:
    """Check a bundle offline; IntegrityError (exit 6) naming what does not hold."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"--bundle {path}：文件不存在")
    try:
        bundle = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"--bundle {path}：不是 JSON 证明包（{exc}）") from None
    if not isinstance(bundle, dict) or bundle.get("bundle") != KIND or not isinstance(bundle.get("events"), list) \
            or not isinstance(bundle.get("checkpoint"), str):
        raise IntegrityError(f"--bundle {path}：不是 duban 证明包（应由 duban audit prove 写出）")
    if bundle.get("version") != VERSION:
        raise UsageError(f"--bundle {path}：版本 {bundle.get('version')} 不受支持（应为 {VERSION}）")
    try:
        cp = open_note(bundle["checkpoint"], public.name, public.public, public.verify)
    except NoteError as exc:
        raise IntegrityError(f"--bundle {path}：其检查点{exc}") from None
    case_id = bundle.get("case_id")
    for n, e in enumerate(bundle["events"], 1):
        where = f"--bundle {path}：第 {n} 条事件" + (f"（审计事件 {e.get('seq')}）" if isinstance(e, dict) else "")
        problem = _event_problem(e, case_id, cp.size, cp.root)
        if problem is not None:
            raise IntegrityError(f"{where}{problem}")
    return {"ok": True, "bundle": str(path), "case_id": case_id, "events": len(bundle["events"]),
            "tree_size": cp.size, "root": cp.root.hex(), "origin": cp.origin, "signed_at": cp.time,
            "fingerprint": public.fingerprint}


def _event_problem(e: Any, case_id: Any, size: int, root: bytes) -> str | None:
    if not isinstance(e, dict) or any(k not in e for k in (*HASHED_FIELDS, "hash", "proof")):
        return "缺少字段（须有每个参与哈希的字段、其哈希和证明）"
    if not isinstance(e["seq"], int) or isinstance(e["seq"], bool) or not isinstance(e["hash"], str):
        return "序号或哈希的类型不对"
    if e["case_id"] != case_id:
        return f"属于案件 {e['case_id']}，而证明包是案件 {case_id} 的"
    try:
        if event_hash(e) != e["hash"]:
            return "内容与其哈希不符（事件被改过）"
        leaf = leaf_hash(bytes.fromhex(e["hash"]))
        proof = [bytes.fromhex(h) for h in e["proof"]]
    except (TypeError, ValueError):
        return "哈希或证明不是十六进制"
    if not verify_inclusion(e["seq"] - 1, size, leaf, proof, root):
        return f"其包含证明不能导出 {size} 条事件的签名根哈希（证明、事件位置或检查点被改过）"
    return None
