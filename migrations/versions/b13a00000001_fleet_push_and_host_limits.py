"""Fleet: push (IDLE) per mailbox, due times for cron

Revision ID: b13a00000001
Revises: b12a00000002
Create Date: 2026-11-29 18:00:00

``accounts.push``: the mailbox's INBOX is held in IMAP IDLE by ``mailroom idle`` (off by
default), so cron's periodic sweep visits it less often.  ``accounts.next_sync_at``: when cron
syncs the mailbox next (spread over the interval; null: at once), with the index cron's one
query for due mailboxes uses.
"""
from alembic import op
import sqlalchemy as sa


revision = 'b13a00000001'
down_revision = 'b12a00000002'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('accounts', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('push', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_sync_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_accounts_active_next_sync_at', ['active', 'next_sync_at'], unique=False)


def downgrade():
    with op.batch_alter_table('accounts', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_index('ix_accounts_active_next_sync_at')
        batch_op.drop_column('next_sync_at')
        batch_op.drop_column('push')
