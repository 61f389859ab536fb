"""Working-time records: the hall's calendar days, suspensions, SLA timers and notifications."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..db import Base, UTCDateTime


class CalendarDay(Base):
    """A day an admin entered: a statutory holiday or an adjusted working day (调休上班).

    Takes precedence over the chinese-calendar package, and is the only source for years the
    package does not cover.
    """

    __tablename__ = "calendar_days"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="system")


class CalendarYear(Base):
    """A year whose State Council schedule an admin imported: its unlisted days are confirmed too."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_by: Mapped[str] = mapped_column(String(64))


class Suspension(Base):
    """An interval during which the case's clock stood still (waiting on the applicant)."""

    __tablename__ = "suspensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(500))


class Timer(Base):
    """One SLA threshold (75 % warning or 100 % breach) of the case or one of its steps.

    ``due_at`` is when it fires, NULL while its clock is stopped; ``fired_at`` is set once, in the
    transaction that records the event, so a threshold is never recorded twice.
    """

    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("case_id", "subject", "kind"),
        CheckConstraint("kind IN ('warning', 'breach')", name="kind"),
        # What the sweep reads: only open timers, by due time. Its cost follows the due timers.
        Index("ix_timers_open_due", "due_at", postgresql_where=text("fired_at IS NULL AND due_at IS NOT NULL"),
              sqlite_where=text("fired_at IS NULL AND due_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(40))  # "case" or a step key
    kind: Mapped[str] = mapped_column(String(8))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """A message for a department's supervisors (an SLA breach, for now)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_department_unread", "department", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_by: Mapped[str | None] = mapped_column(String(64))
    # Why it happened, as the acknowledging supervisor recorded it (reports list breaches with it).
    reason: Mapped[str | None] = mapped_column(String(500))
