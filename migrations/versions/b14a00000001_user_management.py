"""Users: disabled state, last sign-in, token last use (placeholder until used; issue 14)

Revision ID: b14a00000001
Revises: b13a00000003
Create Date: 2026-11-29 19:40:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = 'b14a00000001'
down_revision = 'b13a00000003'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    pass


def downgrade():
    pass
