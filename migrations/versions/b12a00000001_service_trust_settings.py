"""Services: a corporate server's own trust setting (CA certificate or no verification)

Revision ID: b12a00000001
Revises: b10a00000003
Create Date: 2026-11-29 16:35:00

Placeholder in the issue-12 chain; filled by the change it is named for (an empty
revision is harmless: it only records that the step ran).
"""
from alembic import op
import sqlalchemy as sa


revision = 'b12a00000001'
down_revision = 'b10a00000003'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
