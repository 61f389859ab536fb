"""Calendar years whose State Council schedule was imported: their unlisted days count as confirmed.

Revision ID: f3b9c2d41a07
Revises: adb31be0c7a9
Create Date: 2026-11-23 16:30:00
"""
from alembic import op
import sqlalchemy as sa

import workflow.db

revision = "f3b9c2d41a07"
down_revision = "adb31be0c7a9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("confirmed_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_years")),
    )


def downgrade() -> None:
    op.drop_table("calendar_years")
