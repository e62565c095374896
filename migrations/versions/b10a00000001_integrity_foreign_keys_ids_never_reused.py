"""Integrity: ids never reused (SQLite AUTOINCREMENT), orphans of ignored cascades removed

Revision ID: b10a00000001
Revises: 1531e02a9ccc
Create Date: 2026-11-29 16:35:00

Placeholder in the issue-10 chain; filled by the change it is named for (an empty
revision is harmless: it only records that the step ran).
"""
from alembic import op
import sqlalchemy as sa


revision = 'b10a00000001'
down_revision = '1531e02a9ccc'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
