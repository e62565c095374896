"""Messages: flag and move write-back (issue 14): message_changes

Revision ID: b14a00000002
Revises: b14a00000001
Create Date: 2026-11-29 19:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'b14a00000002'
down_revision = 'b14a00000001'
branch_labels = None
depends_on = None

# A batch rebuild on SQLite must keep AUTOINCREMENT (ids never reused; see docs/development.md).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    op.create_table(
        'message_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_pk', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('folder_id', sa.Integer(), nullable=False),
        sa.Column('uid', sa.BigInteger(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('target_folder_id', sa.Integer(), nullable=True),
        sa.Column('server_flags', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('new_uid', sa.BigInteger(), nullable=True),
        sa.Column('job_id', sa.String(length=64), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['message_pk'], ['messages.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['folder_id'], ['folders.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['target_folder_id'], ['folders.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_message_changes_message_pk', 'message_changes', ['message_pk'])
    op.create_index('ix_message_changes_user_id', 'message_changes', ['user_id'])
    op.create_index('ix_message_changes_folder_state', 'message_changes', ['folder_id', 'state'])
    op.create_index('ix_message_changes_target_state', 'message_changes', ['target_folder_id', 'state'])


def downgrade():
    op.drop_index('ix_message_changes_target_state', table_name='message_changes')
    op.drop_index('ix_message_changes_folder_state', table_name='message_changes')
    op.drop_index('ix_message_changes_user_id', table_name='message_changes')
    op.drop_index('ix_message_changes_message_pk', table_name='message_changes')
    op.drop_table('message_changes')
