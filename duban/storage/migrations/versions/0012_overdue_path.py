"""the overdue cases in id order (SPEC §11, issue 16)

- `cases (id) WHERE overdue`: `case list --overdue` and the ledger's 超期 filter, a page in
  id order. Only open cases are overdue (a missed deadline that still runs), and in an office
  of years they are the newest: walked along the primary key, the page first passed every
  older case (at 1,000,000 cases on PostgreSQL, 628,665 rows read for a page of 50: 366 ms).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_cases_overdue_id', 'cases', ['id'], unique=False,
                    sqlite_where=sa.text('overdue = 1'), postgresql_where=sa.text('overdue'))


def downgrade() -> None:
    op.drop_index('ix_cases_overdue_id', table_name='cases')
