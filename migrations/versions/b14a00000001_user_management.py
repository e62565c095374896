"""Users: disabled state and last sign-in (issue 14)

Revision ID: b14a00000001
Revises: b13a00000003
Create Date: 2026-11-29 19:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'b14a00000001'
down_revision = 'b13a00000003'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    # Nullable columns, no default: every existing user stays enabled, "never signed in" until next time.
    with op.batch_alter_table('users', table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_sign_in_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('users', table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('last_sign_in_at')
        batch_op.drop_column('disabled_at')
