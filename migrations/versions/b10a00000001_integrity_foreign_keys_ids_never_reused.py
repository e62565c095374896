"""Integrity: ids never reused (SQLite AUTOINCREMENT), orphans of ignored cascades removed

Revision ID: b10a00000001
Revises: 1531e02a9ccc
Create Date: 2026-11-29 16:35:00

Until this release SQLite ran without ``PRAGMA foreign_keys``, so ``ON DELETE CASCADE`` and
``SET NULL`` never ran there: a deleted mailbox (or user, folder, ...) left its rows behind,
and SQLite handed the deleted highest id to the next new row, which inherited them.

1. Rows whose parent is gone are removed (CASCADE) or unlinked (SET NULL), as the database
   would have done.  Parents are visited before their children, so a folder whose mailbox is
   gone is deleted before the messages table is looked at, and those messages go too.  The
   same statements run on PostgreSQL, where foreign keys always held (they find nothing).
2. On SQLite, every table with an integer id is rebuilt with AUTOINCREMENT, so an id is never
   handed out twice.  PostgreSQL's sequences never reuse an id: nothing to do there.

migrations/env.py runs this with foreign keys off on SQLite (rebuilding a table drops the old
one, which would otherwise cascade) and checks ``PRAGMA foreign_key_check`` afterwards.
"""
import logging

import sqlalchemy as sa
from alembic import op

revision = 'b10a00000001'
down_revision = '1531e02a9ccc'
branch_labels = None
depends_on = None

log = logging.getLogger('alembic.runtime.migration')

#: (table, column, parent table, ON DELETE action) for every foreign key at this revision,
#: parents before children.  The parent's key column is ``id`` for all of them.
FOREIGN_KEYS = [
    ('accounts', 'user_id', 'users', 'CASCADE'),
    ('accounts', 'service_id', 'services', 'SET NULL'),
    ('api_tokens', 'user_id', 'users', 'CASCADE'),
    ('oauth_apps', 'service_id', 'services', 'CASCADE'),
    ('notifications', 'user_id', 'users', 'CASCADE'),
    ('notifications', 'account_id', 'accounts', 'CASCADE'),
    ('email_log', 'account_id', 'accounts', 'SET NULL'),
    ('email_log', 'user_id', 'users', 'SET NULL'),
    ('folders', 'account_id', 'accounts', 'CASCADE'),
    ('aliases', 'account_id', 'accounts', 'CASCADE'),
    ('out_of_office', 'account_id', 'accounts', 'CASCADE'),
    ('auto_replies', 'account_id', 'accounts', 'CASCADE'),
    ('filters', 'account_id', 'accounts', 'CASCADE'),
    ('outgoing_messages', 'user_id', 'users', 'CASCADE'),
    ('outgoing_messages', 'account_id', 'accounts', 'SET NULL'),
    ('outgoing_attachments', 'outgoing_id', 'outgoing_messages', 'CASCADE'),
    ('messages', 'account_id', 'accounts', 'CASCADE'),
    ('messages', 'folder_id', 'folders', 'CASCADE'),
    ('message_bodies', 'message_pk', 'messages', 'CASCADE'),
]

#: Tables whose primary key is an integer ``id`` of their own (not a parent's key).
ID_TABLES = [
    'users',
    'services',
    'accounts',
    'api_tokens',
    'oauth_apps',
    'notifications',
    'email_log',
    'folders',
    'aliases',
    'auto_replies',
    'filters',
    'outgoing_messages',
    'outgoing_attachments',
    'messages',
]


def _orphans(table, column, parent):
    """SQL condition: the row points at a parent row that does not exist."""
    return (
        f'{column} IS NOT NULL AND NOT EXISTS '
        f'(SELECT 1 FROM {parent} WHERE {parent}.id = {table}.{column})'
    )


def remove_orphans():
    """Delete or unlink every row whose parent is gone; return the count per (table, column)."""
    bind = op.get_bind()
    counts = {}
    for table, column, parent, action in FOREIGN_KEYS:
        where = _orphans(table, column, parent)
        if action == 'CASCADE':
            sql = f'DELETE FROM {table} WHERE {where}'
        else:
            sql = f'UPDATE {table} SET {column} = NULL WHERE {where}'
        count = bind.execute(sa.text(sql)).rowcount
        if count:
            counts[(table, column)] = count
            done = 'Deleted' if action == 'CASCADE' else f'Set {column} to NULL in'
            log.warning(
                '%s %d row(s) of %s whose %s pointed at a deleted %s row (ON DELETE %s).',
                done, count, table, column, parent, action,
            )
    return counts


def upgrade():
    remove_orphans()
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in ID_TABLES:
        with op.batch_alter_table(
            table, recreate='always', table_kwargs={'sqlite_autoincrement': True}
        ):
            pass


def downgrade():
    # Removed orphans cannot come back (nothing could show them anyway); the tables lose
    # AUTOINCREMENT again.
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in reversed(ID_TABLES):
        with op.batch_alter_table(table, recreate='always'):
            pass
