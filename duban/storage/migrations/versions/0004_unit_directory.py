"""the unit directory (SPEC §16): units as rows, renames kept

Before this revision a unit existed by being named (a case's lead or co-unit, a user's
unit), so a typo made an orphan unit. The directory is filled from every unit already
named, dated from the first time it was (its earliest user or case): nothing that worked
before stops working. Blank names (a unit user with unit ' ') are left out: no unit has
that name, and no case could be opened for it now.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FILL = """
INSERT INTO units (name, created_at)
SELECT named.unit, MIN(named.since) FROM (
    SELECT unit, created_at AS since FROM users WHERE unit IS NOT NULL
    UNION ALL
    SELECT case_units.unit, cases.opened_at FROM case_units JOIN cases ON cases.id = case_units.case_id
) AS named
WHERE TRIM(named.unit) <> ''
GROUP BY named.unit
"""


def upgrade() -> None:
    op.create_table('units',
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('unit_names',
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('unit', sa.String(), nullable=False),
    sa.Column('renamed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('unit_names', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unit_names_unit'), ['unit'], unique=False)
    op.execute(_FILL)


def downgrade() -> None:
    with op.batch_alter_table('unit_names', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unit_names_unit'))
    op.drop_table('unit_names')
    op.drop_table('units')
