"""Cases (办件) and their steps (环节)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Enum, Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..db import Base, JSONType, UTCDateTime
from ..machines.case import CaseState
from ..machines.step import StepState
from .timing import Suspension
from .user import User


def _state_enum(enum_class, name):
    # Stored as text with a CHECK: adding a state later is a migration of the CHECK, not of a PG type.
    return Enum(enum_class, name=name, native_enum=False, length=16, create_constraint=True)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_state_created", "state", "created_at"),
        # The reports by day, the daily counts and the histogram (INCLUDE: index-only on PostgreSQL).
        Index("ix_cases_ready_at", "ready_at",
              postgresql_include=["elapsed_minutes", "definition_name", "definition_version"]),
        Index("ix_cases_accepted_at", "accepted_at"),
        # The case list (workflow.queries.list_cases): newest first, alone or by SLA status.
        Index("ix_cases_created", "created_at", "id"),
        Index("ix_cases_sla_status_created", "sla_status", "created_at"),
        # Its search on PostgreSQL: case numbers in byte order whatever the database's collation (a
        # prefix is a range of it, and it is newest first backwards), and a part of a company name
        # (trigrams; the migration creates the pg_trgm extension).
        Index("ix_cases_case_no_c", text('case_no COLLATE "C"')).ddl_if(dialect="postgresql"),
        Index("ix_cases_company_name_trgm", "company_name", postgresql_using="gin",
              postgresql_ops={"company_name": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_no: Mapped[str] = mapped_column(String(20), unique=True)
    tracking_code: Mapped[str] = mapped_column(String(16))
    state: Mapped[CaseState] = mapped_column(_state_enum(CaseState, "case_state"), default=CaseState.submitted)
    # Optimistic locking: every UPDATE checks the version it read (SQLAlchemy's version_id_col); each
    # action bumps it exactly once (``touch``), however many flushes the action needs.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    definition_name: Mapped[str] = mapped_column(String(40))
    definition_version: Mapped[int]
    channel: Mapped[str] = mapped_column(String(16))
    company_name: Mapped[str] = mapped_column(String(100), index=True)
    company_kind: Mapped[str] = mapped_column(String(32))
    application: Mapped[dict] = mapped_column(JSONType)
    missing_materials: Mapped[list] = mapped_column(JSONType, default=list)
    delivery: Mapped[dict | None] = mapped_column(JSONType)
    closing_reason: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The head of the case's audit chain, written with each event: a deleted last event shows.
    chain_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    chain_hash: Mapped[str] = mapped_column(String(64), default="0" * 64, server_default="0" * 64)
    # The worst SLA status the timer worker has recorded (it only moves forward); for filtering.
    sla_status: Mapped[str] = mapped_column(String(16), default="on_track", server_default="on_track")
    # Working minutes from acceptance to ready (suspensions cut out), fixed when the case becomes ready.
    elapsed_minutes: Mapped[float | None] = mapped_column(Float)

    steps: Mapped[list[Step]] = relationship(
        back_populates="case", order_by="Step.position", cascade="all, delete-orphan", lazy="selectin"
    )

    suspensions: Mapped[list[Suspension]] = relationship(
        order_by="Suspension.started_at", cascade="all, delete-orphan", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    def touch(self, now: datetime) -> None:
        """Mark one action on the case (or one of its steps): the version moves on by one."""
        self.version += 1
        self.updated_at = now

    def step(self, key: str) -> Step:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)


class Step(Base):
    __tablename__ = "steps"
    __table_args__ = (
        UniqueConstraint("case_id", "key"),
        Index("ix_steps_department_state", "department", "state"),
        # Recent durations per step (the applicant's estimate) and the per-step report.
        Index("ix_steps_key_done_at", "key", "done_at", postgresql_include=["elapsed_minutes", "state", "department"]),
        # A period's finished steps for the department and clerk reports.
        Index("ix_steps_done_at_elapsed", "done_at",
              postgresql_include=["key", "department", "assignee_id", "state", "elapsed_minutes"],
              postgresql_where=text("elapsed_minutes IS NOT NULL"), sqlite_where=text("elapsed_minutes IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    position: Mapped[int]
    department: Mapped[str] = mapped_column(String(40))
    needs: Mapped[list] = mapped_column(JSONType, default=list)
    state: Mapped[StepState] = mapped_column(_state_enum(StepState, "step_state"), default=StepState.waiting)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outputs: Mapped[dict | None] = mapped_column(JSONType)
    refusal_reason: Mapped[str | None] = mapped_column(String(500))
    sla_status: Mapped[str] = mapped_column(String(16), default="on_track", server_default="on_track")
    # Working minutes from ready to done (suspensions cut out), fixed at completion.
    elapsed_minutes: Mapped[float | None] = mapped_column(Float)

    case: Mapped[Case] = relationship(back_populates="steps")
    assignee: Mapped[User | None] = relationship(lazy="joined")


class CaseCounter(Base):
    """The last case number handed out per day (case numbers are KBYYYYMMDD-NNNN)."""

    __tablename__ = "case_counters"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)
