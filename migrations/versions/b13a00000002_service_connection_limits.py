"""Services: at most K concurrent connections per IMAP host

Revision ID: b13a00000002
Revises: b13a00000001
Create Date: 2026-11-29 18:00:00

Placeholder in the issue-13 chain; filled by the change it is named for (an empty
revision is harmless: it only records that the step ran).
"""
from alembic import op
import sqlalchemy as sa


revision = 'b13a00000002'
down_revision = 'b13a00000001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
