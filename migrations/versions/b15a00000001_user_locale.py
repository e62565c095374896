"""Users: language and time zone (placeholder until used; issue 15)

Revision ID: b15a00000001
Revises: b14a00000002
Create Date: 2026-11-29 19:40:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = 'b15a00000001'
down_revision = 'b14a00000002'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    pass


def downgrade():
    pass
