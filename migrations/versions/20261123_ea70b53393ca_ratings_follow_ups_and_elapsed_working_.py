"""Ratings (好差评), their follow-ups, and the elapsed working minutes of finished steps and cases.

Elapsed minutes are fixed when a step is done or a case becomes ready; rows finished before this
migration keep NULL (working time needs the hall's calendar, which SQL does not have), and the
estimates and reports leave them out.

Revision ID: ea70b53393ca
Revises: c51f0e2a9b7d
Create Date: 2026-11-23 15:22:19
"""
from alembic import op
import sqlalchemy as sa
import workflow.db


revision = 'ea70b53393ca'
down_revision = 'c51f0e2a9b7d'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ratings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=True),
    sa.Column('created_at', workflow.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score BETWEEN 1 AND 5', name=op.f('ck_ratings_score_range')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_ratings_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ratings')),
    sa.UniqueConstraint('case_id', name=op.f('uq_ratings_case_id'))
    )
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ratings_created_at'), ['created_at'], unique=False)

    op.create_table('follow_ups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('created_at', workflow.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', workflow.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', workflow.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=64), nullable=True),
    sa.Column('reply', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_follow_ups_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rating_id'], ['ratings.id'], name=op.f('fk_follow_ups_rating_id_ratings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_ups')),
    sa.UniqueConstraint('rating_id', name=op.f('uq_follow_ups_rating_id'))
    )
    with op.batch_alter_table('follow_ups', schema=None) as batch_op:
        batch_op.create_index('ix_follow_ups_open_due', ['closed_at', 'due_at'], unique=False)

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('elapsed_minutes', sa.Float(), nullable=True))

    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('elapsed_minutes', sa.Float(), nullable=True))
        batch_op.create_index('ix_steps_key_done_at', ['key', 'done_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_index('ix_steps_key_done_at')
        batch_op.drop_column('elapsed_minutes')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('elapsed_minutes')

    with op.batch_alter_table('follow_ups', schema=None) as batch_op:
        batch_op.drop_index('ix_follow_ups_open_due')

    op.drop_table('follow_ups')
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ratings_created_at'))

    op.drop_table('ratings')
