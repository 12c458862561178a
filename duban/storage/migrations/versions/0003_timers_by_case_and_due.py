"""timers by case and due instant: the scheduler reads the due timers of a chunk's cases

Without it, reading the due timers of a chunk's cases walks every timer of those cases
(the case_id index), so a sweep slowed down as cases gathered far-future timers. The status
is left out of the index: claiming and firing change it, and would then rewrite this index too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_timers_case_id_due_at', 'timers', ['case_id', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_timers_case_id_due_at', table_name='timers')
