"""Services: at most K concurrent connections per IMAP host

Revision ID: b13a00000002
Revises: b13a00000001
Create Date: 2026-11-29 18:00:00

``services.max_connections``: how many connections Mailroom's workers (on every machine) may hold
at once to the service's mail server; NULL = the provider plugin's default
(``mailroom_connection_limit``), else no limit.  Held in Redis by ``webapp.jobs.connection_slots``.
"""
from alembic import op
import sqlalchemy as sa


revision = 'b13a00000002'
down_revision = 'b13a00000001'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('services', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('max_connections', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('services', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('max_connections')
