"""Fleet: batch sync bookkeeping (placeholder until used; issue 13)

Revision ID: b13a00000003
Revises: b13a00000002
Create Date: 2026-11-29 19:40:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = 'b13a00000003'
down_revision = 'b13a00000002'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    pass


def downgrade():
    pass
