"""sign-in: passwords, tokens, sessions, lockouts (SPEC §12)

Users get a mobile number and a disabled mark; their secrets live in `credentials`, apart
from the directory row. Board sessions and API tokens are rows holding only the SHA-256 of
what the cookie or the bearer carries; failed sign-ins are counted in `sign_in_failures`.
Every existing user stays enabled and has no password (the CLI works as before).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('mobile', sa.String(), nullable=True))
        batch.add_column(sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('credentials',
    sa.Column('user_name', sa.String(), nullable=False),
    sa.Column('password_hash', sa.String(), nullable=True),
    sa.Column('password_set_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_secret', sa.String(), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_name'], ['users.name'], ),
    sa.PrimaryKeyConstraint('user_name')
    )
    op.create_table('sign_in_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_name', sa.String(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_sign_in_failures_user_name', 'sign_in_failures', ['user_name'], unique=False)
    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('id_hash', sa.String(), nullable=False),
    sa.Column('user_name', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_sessions_user_name', 'sessions', ['user_name'], unique=False)
    op.create_index('ux_sessions_id_hash', 'sessions', ['id_hash'], unique=True)
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_name', sa.String(), nullable=False),
    sa.Column('label', sa.String(), nullable=True),
    sa.Column('token_hash', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_api_tokens_user_name', 'api_tokens', ['user_name'], unique=False)
    op.create_index('ux_api_tokens_token_hash', 'api_tokens', ['token_hash'], unique=True)


def downgrade() -> None:
    op.drop_index('ux_api_tokens_token_hash', table_name='api_tokens')
    op.drop_index('ix_api_tokens_user_name', table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_index('ux_sessions_id_hash', table_name='sessions')
    op.drop_index('ix_sessions_user_name', table_name='sessions')
    op.drop_table('sessions')
    op.drop_index('ix_sign_in_failures_user_name', table_name='sign_in_failures')
    op.drop_table('sign_in_failures')
    op.drop_table('credentials')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('disabled_at')
        batch.drop_column('mobile')
