"""an index for the cases of a report's period (SPEC §11, issue 16)

- `cases (closed_at, opened_at)`: the cases open at some moment of a report's period —
  opened by its end and not closed before its start — as two ranges of one index: the
  open cases (closed_at IS NULL) opened by the end, and those closed since the start,
  opened_at checked in the index. A report then reads its period's cases, not the
  office's older history (`duban.storage.report_reads.period_cases`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_cases_closed_at_opened_at', 'cases', ['closed_at', 'opened_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cases_closed_at_opened_at', table_name='cases')
