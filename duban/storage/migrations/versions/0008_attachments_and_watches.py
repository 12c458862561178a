"""attachments, watches (关注) and read receipts (SPEC §13)

Attachments keep their bytes in the database by id (a file name never becomes a path);
`watches` is which office user watches which case; `notice_reads` who read a notice when.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('content_type', sa.String(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('added_by', sa.String(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_attachments_case_id', 'attachments', ['case_id'], unique=False)
    op.create_table('watches',
    sa.Column('case_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('user_name', sa.String(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('case_id', 'user_name')
    )
    op.create_table('notice_reads',
    sa.Column('notice_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('reader', sa.String(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], ),
    sa.PrimaryKeyConstraint('notice_id', 'reader')
    )


def downgrade() -> None:
    op.drop_table('notice_reads')
    op.drop_table('watches')
    op.drop_index('ix_attachments_case_id', table_name='attachments')
    op.drop_table('attachments')
