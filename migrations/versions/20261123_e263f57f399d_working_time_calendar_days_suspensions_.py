"""Working time: admin calendar days, suspensions, SLA timers, notifications, stored SLA status.

Revision ID: e263f57f399d
Revises: a164722d0a7d
Create Date: 2026-11-23 12:37:42.374414
"""
from alembic import op
import sqlalchemy as sa
import workflow.db


revision = 'e263f57f399d'
down_revision = 'a164722d0a7d'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('updated_at', workflow.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f('ck_calendar_days_kind')),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_calendar_days'))
    )
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('created_at', workflow.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', workflow.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('read_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_notifications_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_department_unread', ['department', 'read_at'], unique=False)

    op.create_table('suspensions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('started_at', workflow.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', workflow.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_suspensions_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suspensions'))
    )
    with op.batch_alter_table('suspensions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suspensions_case_id'), ['case_id'], unique=False)

    op.create_table('timers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('due_at', workflow.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fired_at', workflow.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('warning', 'breach')", name=op.f('ck_timers_kind')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_timers_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timers')),
    sa.UniqueConstraint('case_id', 'subject', 'kind', name=op.f('uq_timers_case_id'))
    )
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.create_index('ix_timers_open_due', ['due_at'], unique=False, postgresql_where=sa.text('fired_at IS NULL AND due_at IS NOT NULL'), sqlite_where=sa.text('fired_at IS NULL AND due_at IS NOT NULL'))

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_status', sa.String(length=16), nullable=False, server_default='on_track'))
        batch_op.create_index(batch_op.f('ix_cases_sla_status'), ['sla_status'], unique=False)

    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_status', sa.String(length=16), nullable=False, server_default='on_track'))



def downgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_column('sla_status')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_sla_status'))
        batch_op.drop_column('sla_status')

    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_index('ix_timers_open_due', postgresql_where=sa.text('fired_at IS NULL AND due_at IS NOT NULL'), sqlite_where=sa.text('fired_at IS NULL AND due_at IS NOT NULL'))

    op.drop_table('timers')
    with op.batch_alter_table('suspensions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suspensions_case_id'))

    op.drop_table('suspensions')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_department_unread')

    op.drop_table('notifications')
    op.drop_table('calendar_days')
