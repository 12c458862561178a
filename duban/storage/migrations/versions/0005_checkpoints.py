"""signed checkpoints and the Merkle frontier (SPEC §15)

`checkpoints` keeps every signed checkpoint of the audit log with the Merkle frontier at its
size (so the next one reads only the events since), `audit_exports` every export made (the
scheduler signs a checkpoint after each). Both start empty: a log is first checkpointed by
`duban audit checkpoint --key …`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('root', sa.String(), nullable=False),
    sa.Column('head_hash', sa.String(), nullable=True),
    sa.Column('frontier', sa.JSON(), nullable=False),
    sa.Column('origin', sa.String(), nullable=False),
    sa.Column('key_id', sa.String(), nullable=False),
    sa.Column('fingerprint', sa.String(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_checkpoints_size', 'checkpoints', ['size'], unique=False)
    op.create_table('audit_exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('format', sa.String(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('head_seq', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('audit_exports')
    op.drop_index('ix_checkpoints_size', table_name='checkpoints')
    op.drop_table('checkpoints')
