"""Audit exports: streamed to a temporary file beside the target, then renamed.

A reader never sees a half-written export, and a failed export leaves nothing behind.
JSONL keeps every hashed field exactly (instants in UTC as the chain hashes them), so an
export can be re-verified; CSV is UTF-8 with a BOM so Excel shows the Chinese text.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable
from datetime import tzinfo
from pathlib import Path
from typing import Any

from duban.engine.audit import format_instant
from duban.errors import UsageError

CSV_COLUMNS = [
    ("seq", "序号"), ("case_id", "案件编号"), ("at", "时间"), ("actor", "操作人"), ("role", "角色"),
    ("action", "动作"), ("trigger", "操作"), ("from_state", "原状态"), ("to_state", "新状态"),
    ("note", "说明"), ("data", "数据"), ("prev_hash", "前一哈希"), ("hash", "哈希"),
]


def export_events(events: Iterable[dict[str, Any]], fmt: str, path: str | Path, tz: tzinfo) -> int:
    """Write events to `path` in `fmt` (jsonl|csv); returns the number of rows written."""
    target = Path(path)
    folder = target.resolve().parent
    if not folder.is_dir():
        raise UsageError(f"--out {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--out {path}: folder {folder} is not writable")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    rows = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if fmt == "jsonl":
                for e in events:
                    record = {**e, "at": format_instant(e["at"])}
                    fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                    rows += 1
            else:
                fh.write("\ufeff")
                writer = csv.writer(fh)
                writer.writerow([h for _, h in CSV_COLUMNS])
                for e in events:
                    values = {**e, "at": e["at"].astimezone(tz).isoformat(),
                              "data": json.dumps(e["data"], ensure_ascii=False, sort_keys=True)}
                    writer.writerow(["" if values[k] is None else values[k] for k, _ in CSV_COLUMNS])
                    rows += 1
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rows
