"""the nearest running deadline stored, and who acted on which case (SPEC §11, issue 16)

- `cases.next_due_at`: the nearest running deadline's instant (None when closed or none
  runs), written with every case (`engine.model.Case.next_due_at`). 我的待办, 已办 and 协办
  are in that order; computed from the `deadlines` JSON in SQL it had to be worked out for
  every candidate row and sorted, whatever the page. Filled here for the open cases.
- `cases (next_due_at, id) WHERE closed_at IS NULL`: that order on open cases.
- `audit_events (actor, case_id)`: 已办, the cases a user acted on, without reading the log.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def _next_due(deadlines: Any) -> datetime | None:
    """As `Case.next_due_at`, from the stored JSON (this migration's own copy: it must not
    change when the model does)."""
    due = [datetime.fromisoformat(d["due_at"]) for d in (deadlines or {}).values() if d.get("status") == "running"]
    return min(due).astimezone(UTC) if due else None


def upgrade() -> None:
    op.add_column('cases', sa.Column('next_due_at', sa.DateTime(timezone=True), nullable=True))
    cases = sa.table('cases', sa.column('id', sa.Integer), sa.column('deadlines', sa.JSON),
                     sa.column('closed_at', sa.DateTime(timezone=True)),
                     sa.column('next_due_at', sa.DateTime(timezone=True)))
    conn = op.get_bind()
    write = sa.update(cases).where(cases.c.id == sa.bindparam('b_id')).values(next_due_at=sa.bindparam('b_due'))
    last = 0
    while True:  # the open cases, a batch at a time by id (a closed case has none)
        rows = conn.execute(sa.select(cases.c.id, cases.c.deadlines).where(cases.c.closed_at.is_(None), cases.c.id > last)
                            .order_by(cases.c.id).limit(BATCH)).all()
        if not rows:
            break
        last = rows[-1].id
        found = [{'b_id': r.id, 'b_due': due} for r in rows if (due := _next_due(r.deadlines)) is not None]
        if found:
            conn.execute(write, found)
    op.create_index('ix_cases_open_next_due_at', 'cases', ['next_due_at', 'id'], unique=False,
                    sqlite_where=sa.text('closed_at IS NULL'), postgresql_where=sa.text('closed_at IS NULL'))
    op.create_index('ix_audit_events_actor_case_id', 'audit_events', ['actor', 'case_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_events_actor_case_id', table_name='audit_events')
    op.drop_index('ix_cases_open_next_due_at', table_name='cases')
    op.drop_column('cases', 'next_due_at')
