"""indexes for the reads of an office at scale (SPEC §11, issue 16)

- `case_units (unit, case_id)`: a unit's cases in case-id order from the index alone (the
  to-do, `case list --unit`, the ledger's unit filter; its id order is the keyset page order).
- `cases (lead_unit, due_at) WHERE closed_at IS NULL`: a unit's open cases, nearest
  deadline first, without reading its closed history.
- `cases (workflow, state) WHERE closed_at IS NULL`: the open cases in the states where a
  role has a step to take (the office's and leader's to-do).
- `cases (opened_at)`: the cases opened in a report's period.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text('closed_at IS NULL')


def upgrade() -> None:
    op.create_index('ix_case_units_unit_case_id', 'case_units', ['unit', 'case_id'], unique=False)
    op.create_index('ix_cases_open_lead_unit_due_at', 'cases', ['lead_unit', 'due_at'], unique=False,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index('ix_cases_open_workflow_state', 'cases', ['workflow', 'state'], unique=False,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index('ix_cases_opened_at', 'cases', ['opened_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cases_opened_at', table_name='cases')
    op.drop_index('ix_cases_open_workflow_state', table_name='cases')
    op.drop_index('ix_cases_open_lead_unit_due_at', table_name='cases')
    op.drop_index('ix_case_units_unit_case_id', table_name='case_units')
