"""Services: a corporate server's own trust setting (CA certificate or no verification)

Revision ID: b12a00000001
Revises: b10a00000003
Create Date: 2026-11-29 16:35:00

A corporate server with a company CA or a self-signed certificate gets its own trust
setting, used by every mailbox connecting through it: ``ca_certificate`` holds PEM text of
one or more CA certificates (validated on save), ``verify_certificate`` off means "do not
verify the certificate" (shown as a standing warning).  Existing services keep verifying
against the system CAs.
"""
from alembic import op
import sqlalchemy as sa


revision = 'b12a00000001'
down_revision = 'b10a00000003'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('services', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('ca_certificate', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('verify_certificate', sa.Boolean(), server_default='1', nullable=False))


def downgrade():
    with op.batch_alter_table('services', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('verify_certificate')
        batch_op.drop_column('ca_certificate')
