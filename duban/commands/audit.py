"""`duban audit verify | export | keygen | checkpoint | prove`: the tamper-evident audit log
(SPEC §10, §15) — the chain checked (in the database, or an export offline, against the
signed checkpoints), exported with its manifest, signed and proved.

Only click is imported at module level (start-up time); everything else inside the commands.
"""

from __future__ import annotations

from typing import Any

import click

from duban.commands.support import ROW_ID, json_option, out, settings, wants_json


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.option("--file", "file", type=click.Path(dir_okay=False),
              help="Check an exported file against its manifest instead, offline (no database).")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Worker processes checking ranges of the chain in parallel (default: one per CPU; "
                   "1 checks in this process, as do chains under 50,000 events). Events appended "
                   "after the check began are not checked.")
@click.option("--pubkey", type=click.Path(dir_okay=False),
              help="The office's public key (office.pub): check every checkpoint's signature, and that the "
                   "log (or the --file export) still has each signed Merkle root.")
@click.option("--checkpoint", "checkpoint_files", multiple=True, type=click.Path(dir_okay=False),
              help="A checkpoint file (as mailed to the inspectors) to hold the log to as well; repeatable. "
                   "Needs --pubkey.")
@click.option("--bundle", type=click.Path(dir_okay=False),
              help="Check a proof bundle (audit prove) offline with --pubkey, no database.")
@click.option("--state", is_flag=True,
              help="Also replay every case from its events and compare with the stored case, timer and notice "
                   "rows, and the users with the directory's events.")
@json_option
def audit_verify(file: str | None, jobs: int | None, pubkey: str | None, checkpoint_files: tuple[str, ...],
                 bundle: str | None, state: bool, as_json: bool) -> None:
    """Recompute the hash chain (or an export's) and check it against the signed checkpoints;
    exit 6 naming the first event or checkpoint that does not match."""
    if file is not None:
        run_verify_file(file, as_json, pubkey=pubkey, checkpoint_files=checkpoint_files)
        return
    run_verify(pubkey, checkpoint_files, bundle, state, jobs, as_json)


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "xlsx"]), required=True,
              help="csv or xlsx for people (labels beside identifiers, Excel-safe cells); jsonl re-verifies offline.")
@click.option("--out", "path", required=True, type=click.Path(dir_okay=False), help="The file; FILE.manifest.json goes beside it.")
@click.option("--case", "case_id", type=ROW_ID, help="Only this case's events.")
@click.option("--unit", help="Only events of cases this unit leads or co-handles.")
@click.option("--workflow", "workflow_name", help="Only events of this workflow's cases.")
@click.option("--since", help="From this instant (ISO date or datetime, office zone).")
@click.option("--until", help="Before this instant; a bare date includes that whole day.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Worker processes for a large CSV or JSONL export (default: one per CPU; 1: this process only). "
                   "The file is the same either way.")
@json_option
def audit_export(fmt: str, path: str, case_id: int | None, unit: str | None, workflow_name: str | None,
                 since: str | None, until: str | None, jobs: int | None, as_json: bool) -> None:
    """Export audit events with a manifest (streamed; written under a temporary name, then renamed)."""
    run_export(fmt, path, case_id, unit, workflow_name, since, until, as_json, jobs)


# -- audit export / verify --file -------------------------------------------------------
def run_export(fmt: str, path: str, case_id: int | None, unit: str | None, workflow: str | None,
               since: str | None, until: str | None, as_json: bool, jobs: int | None = None) -> None:
    """`duban audit export`: stream the filtered events, with a progress bar on a terminal."""
    import sys

    from duban.exports.events import AuditFilter, check_output
    from duban.exports.manifest import manifest_path
    from duban.reports.period import parse_period
    from duban.service.reviews import Reviews

    s = settings()
    check_output(path)
    filters = AuditFilter(case_id, unit, workflow, parse_period(since, until, s.tz))
    reviews = Reviews(s.app)
    if not wants_json(as_json) and sys.stderr.isatty():
        with click.progressbar(length=reviews.count_audit(filters), label="导出审计日志", file=sys.stderr,
                               update_min_steps=1) as bar:
            manifest = reviews.export_audit(path, fmt, filters, progress=bar.update, jobs=jobs)
    else:
        manifest = reviews.export_audit(path, fmt, filters, jobs=jobs)
    where = manifest_path(path)
    result = {"file": path, "manifest_file": str(where), **manifest.to_json()}
    span = f" (events {manifest.first_seq}–{manifest.last_seq})" if manifest.rows else ""
    out(result, as_json, lambda: f"wrote {manifest.rows} events to {path}{span}; manifest {where}")


def run_verify_file(file: str, as_json: bool, pubkey: str | None = None, checkpoint_files: tuple[str, ...] = ()) -> None:
    """`duban audit verify --file`: check an export against its manifest, without the database;
    with --pubkey, against the signed checkpoints too (`duban.exports.manifest.verify_signed`)."""
    from duban.errors import IntegrityError
    from duban.exports.manifest import verify_export
    from duban.present.output import emit_json

    check = verify_export(file)
    result = check.to_json()
    if check.ok:
        if check.checked == "events":
            text = f"ok: {file} matches its manifest: {check.rows} events verify, last hash {check.last_hash}"
        else:
            text = f"ok: {file} matches its manifest's SHA-256 (events are re-hashed only in JSONL exports)"
        if pubkey is not None or checkpoint_files:
            signed = signed_export(file, pubkey, checkpoint_files)
            result.update(signed)
            text += "\n" + "\n".join(f"{c['checkpoint']}：{c['size']} 条事件的签名根哈希成立"
                                     for c in signed["signed_checkpoints"])
        out(result, as_json, lambda: text)
        return
    if wants_json(as_json):
        emit_json(result)
    raise IntegrityError(check.message())


@click.command("keygen")
@click.option("--out", "path", required=True, type=click.Path(dir_okay=False),
              help="The private key file (mode 0600; keep it off the database host); the public key goes "
                   "beside it as NAME.pub.")
@click.option("--name", default=None, help="The key's name in signed checkpoints (no spaces or '+'). "
                                          "[default: duban.local/audit]")
@json_option
def keygen(path: str, name: str | None, as_json: bool) -> None:
    """Make the office's Ed25519 checkpoint key pair; prints the fingerprint."""
    from duban.service.keys import DEFAULT_NAME, generate

    key_file, pub_file, key = generate(path, name or DEFAULT_NAME)
    pub = key.public_key
    result = {"key_file": str(key_file), "public_key_file": str(pub_file), "name": key.name,
              "key_id": pub.key_id, "fingerprint": pub.fingerprint}
    out(result, as_json, lambda: "\n".join([
        f"私钥 {key_file}（仅本人可读，请离开数据库服务器保管）",
        f"公钥 {pub_file}（交纪检监察；核对指纹）",
        f"密钥名称 {key.name}  编号 {pub.key_id}",
        f"指纹 {pub.fingerprint}"]))


@click.command("checkpoint")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False), help="The office's private key.")
@click.option("--out", "path", type=click.Path(dir_okay=False),
              help="Append the signed checkpoint to this file (the copy mailed to the inspectors).")
@json_option
def checkpoint(key_file: str, path: str | None, as_json: bool) -> None:
    """Sign a checkpoint (size and Merkle root) of the audit log and store it."""
    from duban.service.checkpoints import make
    from duban.service.keys import load_signing_key

    key = load_signing_key(key_file)
    result = make(settings().app, key, path)
    out(result, as_json, lambda: (
        f"检查点 #{result['id']}：{result['size']} 条审计事件，默克尔根 {result['root']}\n"
        f"签署 {result['signed_at']}，密钥 {result['origin']}（指纹 {result['fingerprint']}）；"
        f"读取新事件 {result['events_read']} 条" + (f"；已追加到 {path}" if path else "")))


@click.command("prove")
@click.option("--case", "case_id", required=True, type=ROW_ID, help="The case whose events are proved.")
@click.option("--out", "path", required=True, type=click.Path(dir_okay=False), help="The bundle (JSON).")
@json_option
def prove(case_id: int, path: str, as_json: bool) -> None:
    """Write a case's events with inclusion proofs against the latest checkpoint (checked offline)."""
    from duban.service.proofs import prove as make_bundle
    from duban.service.proofs import write

    bundle = make_bundle(settings().app, case_id)
    write(bundle, path)
    result = {"file": path, "case_id": case_id, "events": len(bundle["events"]), "tree_size": bundle["tree_size"],
              "root": bundle["root"], "events_after_checkpoint": bundle["events_after_checkpoint"]}
    later = bundle["events_after_checkpoint"]
    out(result, as_json, lambda: (
        f"已写出 {path}：案件 {case_id} 的 {len(bundle['events'])} 条审计事件及其包含证明（检查点 {bundle['tree_size']} 条）"
        + (f"\n注意：另有 {later} 条事件晚于最新检查点，未包含；先签署新检查点（duban audit checkpoint）再证明" if later else "")))


def run_verify(pubkey: str | None, checkpoint_files: tuple[str, ...], bundle: str | None, state: bool,
               jobs: int | None, as_json: bool) -> None:
    """`audit verify` with --pubkey / --checkpoint / --bundle / --state."""
    from duban.errors import IntegrityError, UsageError
    from duban.service.keys import load_public_key

    public = load_public_key(pubkey) if pubkey else None
    if bundle is not None:
        if public is None:
            raise UsageError("--bundle 需要 --pubkey office.pub（证明包的检查点须由该密钥签署）")
        from duban.service.proofs import verify_bundle

        held = verify_bundle(bundle, public)
        out(held, as_json, lambda: (
            f"ok: {bundle}：案件 {held['case_id']} 的 {held['events']} 条事件均在检查点"
            f"（{held['tree_size']} 条，{held['signed_at']} 签署）之内，签名有效（指纹 {held['fingerprint']}）"))
        return
    if checkpoint_files and public is None:
        raise UsageError("--checkpoint 需要 --pubkey office.pub（检查点只凭其签名可信）")
    from duban.service.checkpoints import check

    app = settings().app
    checked = check(app, public, list(checkpoint_files), jobs)
    result: dict[str, Any] = checked.to_json()
    problems = [f"{g.where}：{g.problem}" for g in checked.findings]
    if state and checked.broken is None and not problems:
        from duban.service.state_check import check_state

        found = check_state(app)
        result["state"] = {"ok": not found.problems, "cases": found.cases, "users": found.users,
                           "problems": found.problems}
        problems.extend(found.problems)
        result["ok"] = not problems
    if checked.broken is None and not problems:
        out(result, as_json, lambda: _ok_text(checked, public is not None, result.get("state")))
        return
    if wants_json(as_json):
        from duban.present.output import emit_json

        emit_json(result)
    if checked.broken is not None:
        raise IntegrityError(f"{checked.broken} ({checked.count} events before it verify)")
    raise IntegrityError("；".join(problems[:5]) + (f"（另有 {len(problems) - 5} 处）" if len(problems) > 5 else ""))


def _ok_text(checked: Any, signed: bool, state: dict[str, Any] | None) -> str:
    lines = [f"ok: {checked.count} events, chain head {checked.head}"]
    if checked.root:
        lines.append(f"默克尔根 {checked.root}")
    if checked.checkpoints:
        how = "签名与根哈希" if signed else "根哈希（未核验签名：请加 --pubkey office.pub）"
        lines.append(f"{len(checked.checkpoints)} 个检查点均成立：{how}")
    if state is not None:
        lines.append(f"状态表：重放 {state['cases']} 个案件、核对 {state['users']} 个用户，全部一致")
    return "\n".join(lines)


def signed_export(file: str, pubkey: str | None, checkpoint_files: tuple[str, ...]) -> dict[str, Any]:
    """`audit verify --file F --pubkey K [--checkpoint C]…` after the manifest check passed."""
    from pathlib import Path

    from duban.engine.checkpoint import split_file
    from duban.errors import NotFoundError, UsageError
    from duban.exports.manifest import verify_signed
    from duban.service.keys import load_public_key

    if pubkey is None:
        raise UsageError("--checkpoint 需要 --pubkey office.pub（检查点只凭其签名可信）")
    public = load_public_key(pubkey)
    notes: list[tuple[str, str]] = []
    for path in checkpoint_files:
        if not Path(path).is_file():
            raise NotFoundError(f"--checkpoint {path}：文件不存在")
        notes.extend((f"{path} 第 {i} 个检查点", n)
                     for i, n in enumerate(split_file(Path(path).read_text(encoding="utf-8")), 1))
    return verify_signed(file, public, notes)


for _command in (keygen, checkpoint, prove):
    audit.add_command(_command)
