"""Mail edge cases: Sent folder found by the send job, attachments, deleted folders

Revision ID: b12a00000002
Revises: b12a00000001
Create Date: 2026-11-29 16:35:00

Placeholder in the issue-12 chain; filled by the change it is named for (an empty
revision is harmless: it only records that the step ran).
"""
from alembic import op
import sqlalchemy as sa


revision = 'b12a00000002'
down_revision = 'b12a00000001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
