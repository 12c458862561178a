"""The scheduler's own table: one row per scheduler node, for `duban scheduler status`.

Timers and their claims live in `timers` (duban.storage.tables); this table only records
who runs and when each node last swept, so an operator can see a stopped or stuck node
(SPEC §6.4). It sits on the same SQLModel metadata as the other tables (duban.storage.models,
which imports this module at its end, so the migration environment always sees it); migration
0002 creates it. Only the scheduler's commands import it, so they alone load sqlmodel.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from duban.storage.tables import table


class SchedulerNodeRow(SQLModel, table=True):
    """A scheduler process, by node name: started, last sweep, timers fired."""

    __tablename__ = "scheduler_nodes"
    node: str = Field(primary_key=True)
    host: str
    pid: int
    started_at: datetime
    interval_seconds: float
    last_sweep_at: datetime | None = None
    last_sweep_fired: int = 0
    fired_total: int = 0
    stopped_at: datetime | None = None  # set on a clean stop; a killed node leaves it empty


SCHEDULER_NODES = table(SchedulerNodeRow)
