"""Users: language and time zone (issue 15)

Revision ID: b15a00000001
Revises: b14a00000002
Create Date: 2026-11-29 19:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'b15a00000001'
down_revision = 'b14a00000002'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('users', table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('users', table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('time_zone')
        batch_op.drop_column('language')
