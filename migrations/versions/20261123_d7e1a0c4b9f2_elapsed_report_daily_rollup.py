"""Province scale: the elapsed report's daily roll-up and its indexes, and the case list's indexes.

Revision ID: d7e1a0c4b9f2
Revises: f3b9c2d41a07
Create Date: 2026-11-23 19:00:00

On a large existing ``steps`` table the three indexes take a while to build (about 12 s each per
5 million steps on 2 cores); the roll-up itself is filled by the timer worker, not here. The case
list gets an index for newest-first, one for an SLA status with it, and on PostgreSQL a byte-order index
of case numbers (prefixes and newest first) and a trigram index (extension pg_trgm, trusted since PostgreSQL 13, so the
database's owner may create it) for parts of company names.
"""
from alembic import op
import sqlalchemy as sa

import workflow.db

revision = "d7e1a0c4b9f2"
down_revision = "f3b9c2d41a07"
branch_labels = None
depends_on = None

FINISHED = "state = 'done' AND elapsed_minutes IS NOT NULL"
INDEXES = (("ix_steps_key_minutes", "key", ["done_at", "department"]),
           ("ix_steps_department_minutes", "department", ["done_at"]),
           ("ix_steps_assignee_minutes", "assignee_id", ["done_at", "department"]))


def upgrade() -> None:
    op.create_table(
        "elapsed_rollup_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rolled_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_elapsed_rollup_days")),
    )
    op.create_table(
        "elapsed_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("step_key", sa.String(length=40), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("within", sa.Integer(), nullable=False),
        sa.Column("targeted", sa.Integer(), nullable=False),
        sa.Column("max_minutes", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elapsed_rollup")),
        sa.UniqueConstraint("day", "step_key", "department", "assignee_id", "minute",
                            name=op.f("uq_elapsed_rollup_day")),
    )
    for name, group, include in INDEXES:
        op.create_index(name, "steps", [group, "elapsed_minutes"], postgresql_include=include,
                        postgresql_where=sa.text(FINISHED), sqlite_where=sa.text(FINISHED))
    op.create_index("ix_cases_created", "cases", ["created_at", "id"])
    op.drop_index("ix_cases_sla_status", table_name="cases")
    op.create_index("ix_cases_sla_status_created", "cases", ["sla_status", "created_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index("ix_cases_case_no_c", "cases", [sa.text('case_no COLLATE "C"')])
        op.create_index("ix_cases_company_name_trgm", "cases", ["company_name"], postgresql_using="gin",
                        postgresql_ops={"company_name": "gin_trgm_ops"})


def downgrade() -> None:
    # The pg_trgm extension stays: it belongs to the whole database, may have been there before (the
    # upgrade creates it only if missing) and may be owned by a superuser, whom only a DROP would need.
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_cases_company_name_trgm", table_name="cases")
        op.drop_index("ix_cases_case_no_c", table_name="cases")
    op.drop_index("ix_cases_sla_status_created", table_name="cases")
    op.create_index("ix_cases_sla_status", "cases", ["sla_status"])
    op.drop_index("ix_cases_created", table_name="cases")
    for name, _group, _include in INDEXES:
        op.drop_index(name, table_name="steps")
    op.drop_table("elapsed_rollup")
    op.drop_table("elapsed_rollup_days")
