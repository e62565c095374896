"""Sending: Idempotency-Key per user on outgoing messages

Revision ID: b10a00000003
Revises: b10a00000002
Create Date: 2026-11-29 16:35:00

Placeholder in the issue-10 chain; filled by the change it is named for (an empty
revision is harmless: it only records that the step ran).
"""
from alembic import op
import sqlalchemy as sa


revision = 'b10a00000003'
down_revision = 'b10a00000002'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
