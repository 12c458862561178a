"""The composition root: the one place an office's duban is assembled from its settings.

Every entry point builds its `App` here — a CLI command (`duban.commands.support.Settings`),
the demo (`duban.commands.demo`), each `duban serve` process (`duban.commands.serve`, which
hands the App to `duban.web.factory.create_app`): the database from its URL, the office's
zone, the clock (pinned by ``--now`` / ``DUBAN_NOW``, else the system's), and the workflow
catalog. Tests and benchmarks may build an App by hand with a `ManualClock`; nothing in
duban/ does.

The catalog reads YAML and validates every workflow file, and reading a case needs none of
it (a case is shown by the definition pinned in the database), so an App built here reads
the catalog on first use (`App.catalog`: the same catalog as `workflow_catalog`) unless one
is given: `duban case show` starts without YAML or the engine's validation (README
"Performance").
For the same reason this module imports what it builds inside its functions.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from duban.clock import Clock
    from duban.service.app import App
    from duban.storage.database import Database
    from duban.workflows import Catalog


def office_zone(name: str) -> tzinfo:
    """The office's zone (``--tz``, ``DUBAN_TZ``); UsageError (exit 2) for an unknown name."""
    from duban.clock import zone

    return zone(name)


def office_clock(now: str | None, tz: tzinfo) -> Clock:
    """The clock of one command or server: pinned at ``now`` (``--now``, an ISO instant read in
    the office's zone ``tz``) for rehearsals and tests, else the system's."""
    from duban.clock import ManualClock, SystemClock, parse_instant

    if now:
        return ManualClock(parse_instant(now, tz, what="--now"))
    return SystemClock()


def workflow_catalog() -> Catalog:
    """The workflows new cases can use: the shipped files, the office's own (``DUBAN_WORKFLOWS``)
    and its overrides (``DUBAN_SETTINGS``)."""
    from duban.workflows import Catalog

    return Catalog()


def build_app(db_url: str, clock: Clock, tz: tzinfo, *, origin: dict[str, str] | None = None,
              catalog: Catalog | None = None) -> App:
    """The App on the database at ``db_url`` with ``clock`` and zone ``tz``.

    Args:
        origin: what every event written through it records of where it came from (SPEC §12:
            ``{"via": "cli", "os_user": …}``, ``{"via": "web"}``); None records nothing.
        catalog: the workflows (a test's own directories); default: those of `workflow_catalog`,
            read when first needed.
    """
    from duban.storage.database import Database

    return _assemble(Database(db_url), clock, tz, origin, catalog)


def app_from_settings(db_url: str, now: str | None, tz_name: str, *, origin: dict[str, str] | None = None) -> App:
    """The App the global options describe (``--db``, ``--now``, ``--tz``). The database URL is
    checked first, then the zone, then the instant: a command with several bad options names
    the first of them, as it always has."""
    from duban.storage.database import Database

    database = Database(db_url)
    tz = office_zone(tz_name)
    return _assemble(database, office_clock(now, tz), tz, origin, None)


def _assemble(database: Database, clock: Clock, tz: tzinfo, origin: dict[str, str] | None,
              catalog: Catalog | None) -> App:
    from duban.logconfig import use_clock
    from duban.service.app import App

    app = App(database, clock, tz, catalog)
    database.origin = origin
    use_clock(clock, tz)  # log lines carry the App's time (the pinned one under --now, the demo's)
    return app
