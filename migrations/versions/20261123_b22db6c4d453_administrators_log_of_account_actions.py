"""The administrators' log: account actions (create, disable, enable, reset password, tokens).

Revision ID: b22db6c4d453
Revises: ea70b53393ca
Create Date: 2026-11-23 15:50:24
"""
from alembic import op
import sqlalchemy as sa
import workflow.db
from sqlalchemy.dialects import postgresql

revision = 'b22db6c4d453'
down_revision = 'ea70b53393ca'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', workflow.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_admin_events_actor_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_events'))
    )
    with op.batch_alter_table('admin_events', schema=None) as batch_op:
        batch_op.create_index('ix_admin_events_subject_at', ['subject', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('admin_events', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_events_subject_at')

    op.drop_table('admin_events')
