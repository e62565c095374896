"""Sign-in: server-side session invalidation, API token names, expiry and revocation

Revision ID: b10a00000002
Revises: b10a00000001
Create Date: 2026-11-29 16:35:00

Written by hand (batch mode, so it runs on SQLite and PostgreSQL alike).  Tokens
that existed before get a name "(before expiry)" and expire 90 days after this
migration runs, instead of never.
"""
from datetime import UTC, datetime, timedelta

from alembic import op
import sqlalchemy as sa


revision = 'b10a00000002'
down_revision = 'b10a00000001'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    op.create_table(
        'user_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
        sa.UniqueConstraint('session_hash', name=op.f('uq_user_sessions_session_hash')),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table('user_sessions', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('api_tokens', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), server_default='', nullable=False))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(), nullable=True))
    expires = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=90)
    tokens = sa.table('api_tokens', sa.column('name', sa.String), sa.column('expires_at', sa.DateTime))
    op.execute(tokens.update().values(name='(before expiry)', expires_at=expires))
    with op.batch_alter_table('api_tokens', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.alter_column('expires_at', existing_type=sa.DateTime(), nullable=False)


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('name')
    with op.batch_alter_table('user_sessions', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_sessions_user_id'))
    op.drop_table('user_sessions')
