"""scheduler nodes: last sweep per node, for `duban scheduler status`

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scheduler_nodes',
    sa.Column('node', sa.String(), nullable=False),
    sa.Column('host', sa.String(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('interval_seconds', sa.Float(), nullable=False),
    sa.Column('last_sweep_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sweep_fired', sa.Integer(), nullable=False),
    sa.Column('fired_total', sa.Integer(), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('node')
    )


def downgrade() -> None:
    op.drop_table('scheduler_nodes')
