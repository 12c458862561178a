"""Start-up: wall time of `duban --help` and `duban case show ID` (median of several runs),
each a fresh process, against the bare interpreter starting (`python -c pass`) and against
importing SQLAlchemy alone (`case show` reads the database through it: its floor).

The processes run with bytecode caching on, after one untimed run of each command, as an
installed duban runs (pip compiles the package; an editable install caches on first use):
with ``PYTHONDONTWRITEBYTECODE=1`` inherited, every run would compile duban's own modules
again. Also reported: which of the heavy libraries `case show` imports.

Import cost (issue 16 item 5): for each of `case show`, `case list`, `case fire` (an 催办
by the office, repeatable), `notice list` and `tick` with nothing due, the time the
process spends importing (``python -X importtime``: the top-level imports' cumulative
times, less what the bare interpreter imports) against importing SQLAlchemy alone the same
way in the same run: the floor of any command that reads the database (target ≤ 2×).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import START, TZ

HEAVY = ("sqlalchemy", "click", "psycopg", "sqlmodel", "pydantic", "transitions", "structlog", "yaml", "alembic",
         "apscheduler", "chinese_calendar", "openpyxl")
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _wall(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, capture_output=True, check=True, env=_ENV)  # untimed: writes the bytecode caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=_ENV)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _imported(args: list[str]) -> list[str]:
    """The HEAVY libraries loaded once `duban ARGS` has run."""
    code = ("import json, sys\nfrom duban.cli import cli\ntry:\n    cli.main(json.loads(sys.argv[1]), prog_name='duban')\n"
            "except SystemExit:\n    pass\nprint(json.dumps(sorted(m for m in sys.modules if '.' not in m)), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, check=True,
                          env=_ENV)
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    return [m for m in HEAVY if m in loaded]


def _import_us(cmd: list[str]) -> int:
    """Microseconds the process spent importing (its top-level imports, nested ones included)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *cmd], capture_output=True, text=True, env=_ENV)
    total = 0
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|", 2)
            if name.startswith(" ") and not name.startswith("  ") and cumulative.strip().isdigit():
                total += int(cumulative)
    return total


def _median_import_us(cmd: list[str], runs: int) -> int:
    _import_us(cmd)  # untimed: bytecode caches
    return int(statistics.median(_import_us(cmd) for _ in range(runs)))


def import_costs(url: str, case_id: int, runs: int) -> dict[str, Any]:
    """Each command's import time over the bare interpreter's, against `import sqlalchemy`'s."""
    duban = ["-c", "from duban.cli import main; main()", "--db", url, "--now", START.isoformat()]
    commands = {"case_show": ["case", "show", str(case_id)], "case_list": ["case", "list"],
                "case_fire": ["--actor", "office", "case", "fire", str(case_id), "urge", "--note", "请抓紧"],
                "notice_list": ["notice", "list"], "tick": ["tick"]}
    bare = _median_import_us(["-c", "pass"], runs)
    floor = _median_import_us(["-c", "import sqlalchemy"], runs) - bare
    found: dict[str, Any] = {"import_sqlalchemy_ms": round(floor / 1000, 1)}
    for name, args in commands.items():
        cost = _median_import_us([*duban, *args], runs) - bare
        found[name] = {"import_ms": round(cost / 1000, 1), "over_sqlalchemy": round(cost / floor, 2)}
    found["target_over_sqlalchemy"] = 2.0
    return found


def bench_startup(runs: int) -> dict[str, Any]:
    from duban.clock import ManualClock
    from duban.service.app import App
    from duban.storage.database import Database

    duban = [sys.executable, "-c", "from duban.cli import main; main()"]
    script = Path(sys.executable).with_name("duban")
    if script.exists():
        duban = [str(script)]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'duban.db'}"
        app = App(Database(url), ManualClock(START), TZ)
        app.init()
        app.add_user("office", "office", None)
        app.add_unit("区发改局")  # a case names a unit of the directory
        case_id = app.open_case("supervision", title="启动测试", lead_unit="区发改局", co_units=[], due="2026-12-31",
                                values={}, actor="office")["id"]
        app.db.dispose()
        show = ["--db", url, "case", "show", str(case_id)]
        bare = _wall([sys.executable, "-c", "pass"], runs)
        sqlalchemy = _wall([sys.executable, "-c", "import sqlalchemy"], runs)
        helped = _wall([*duban, "--help"], runs)
        shown = _wall([*duban, *show], runs)
        imports = _imported(show)
        costs = import_costs(url, case_id, runs)
    return {"import_costs": costs, "python_bare_s": round(bare, 3), "import_sqlalchemy_s": round(sqlalchemy, 3), "help_s": round(helped, 3),
            "case_show_s": round(shown, 3), "case_show_imports": imports, "bytecode": "cached", "target_s": 0.3,
            "ratio": round(bare / max(helped, shown), 3)}
