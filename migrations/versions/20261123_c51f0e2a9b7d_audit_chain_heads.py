"""Audit chain heads on cases (so a deleted last event shows) and no TRUNCATE of events.

Revision ID: c51f0e2a9b7d
Revises: e263f57f399d
Create Date: 2026-11-23 13:45:00
"""
from alembic import op
import sqlalchemy as sa

revision = "c51f0e2a9b7d"
down_revision = "e263f57f399d"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_seq", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=False, server_default=GENESIS))
    # Existing chains: their head is their last event.
    op.execute(
        "UPDATE cases SET chain_seq = (SELECT max(seq) FROM events WHERE events.case_id = cases.id), "
        "chain_hash = (SELECT hash FROM events WHERE events.case_id = cases.id ORDER BY seq DESC LIMIT 1) "
        "WHERE EXISTS (SELECT 1 FROM events WHERE events.case_id = cases.id)"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
                   "FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER events_no_truncate ON events")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("chain_hash")
        batch_op.drop_column("chain_seq")
