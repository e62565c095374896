"""Sending: Idempotency-Key per user on outgoing messages

Revision ID: b10a00000003
Revises: b10a00000002
Create Date: 2026-11-29 16:35:00

``POST /api/v1/messages/send`` with an ``Idempotency-Key`` header stores the key and the
SHA-256 of the request body on the row; a unique constraint on (user_id, idempotency_key)
lets the database decide between two concurrent requests with the same key.  Rows without
a key keep NULL, which both SQLite and PostgreSQL allow any number of times.
"""
from alembic import op
import sqlalchemy as sa


revision = 'b10a00000003'
down_revision = 'b10a00000002'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('outgoing_messages', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('request_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            'uq_outgoing_messages_user_idempotency_key', ['user_id', 'idempotency_key']
        )


def downgrade():
    with op.batch_alter_table('outgoing_messages', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_constraint('uq_outgoing_messages_user_idempotency_key', type_='unique')
        batch_op.drop_column('request_hash')
        batch_op.drop_column('idempotency_key')
