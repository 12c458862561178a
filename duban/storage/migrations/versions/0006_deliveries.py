"""deliveries of notices and their attempts (SPEC §14)

The notices outbox gets delivered: one `deliveries` row per notice × recipient × channel
(written in the transaction that wrote the notice), every try in `delivery_attempts`, the
office numbers of printed notices in `notice_numbers`, and a mailbox per user.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(), nullable=False),
    sa.Column('recipient', sa.String(), nullable=False),
    sa.Column('address', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_deliveries_notice_id', 'deliveries', ['notice_id'], unique=False)
    op.create_index('ix_deliveries_status_next_at', 'deliveries', ['status', 'next_at'], unique=False)
    op.create_table('delivery_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(), nullable=False),
    sa.Column('recipient', sa.String(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('node', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_delivery_attempts_delivery_id', 'delivery_attempts', ['delivery_id'], unique=False)
    op.create_index('ix_delivery_attempts_channel_at', 'delivery_attempts', ['channel', 'at'], unique=False)
    op.create_table('notice_numbers',
    sa.Column('notice_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('word', sa.String(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], ),
    sa.PrimaryKeyConstraint('notice_id')
    )
    op.create_index('ux_notice_numbers_word_year_number', 'notice_numbers', ['word', 'year', 'number'], unique=True)
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('email', sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('email')
    op.drop_index('ux_notice_numbers_word_year_number', table_name='notice_numbers')
    op.drop_table('notice_numbers')
    op.drop_index('ix_delivery_attempts_channel_at', table_name='delivery_attempts')
    op.drop_index('ix_delivery_attempts_delivery_id', table_name='delivery_attempts')
    op.drop_table('delivery_attempts')
    op.drop_index('ix_deliveries_status_next_at', table_name='deliveries')
    op.drop_index('ix_deliveries_notice_id', table_name='deliveries')
    op.drop_table('deliveries')
