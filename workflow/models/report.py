"""The elapsed report's daily roll-up, and the indexes its exact percentiles read.

A finished hall day never changes: a step's done time, holder and elapsed minutes are fixed when it
is done. So each finished day's steps are counted once per (step, department, holder, whole
minute) into ``elapsed_rollup`` (``workflow.reports.roll_up``, run by the timer worker), and a
year's report reads about 700 000 small rows instead of 4 million steps. The percentiles stay
exact: the roll-up says in which minute and at which rank the wanted values lie, and one index
lookup per value reads it (``ix_steps_*_minutes`` below).
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..db import Base, UTCDateTime
from .case import Step


class RolledDay(Base):
    """A hall day whose finished steps are in ``elapsed_rollup`` (all of them, in one transaction)."""

    __tablename__ = "elapsed_rollup_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ElapsedRollup(Base):
    """How many steps of one hall day took each whole minute, per step, department and holder."""

    __tablename__ = "elapsed_rollup"
    __table_args__ = (UniqueConstraint("day", "step_key", "department", "assignee_id", "minute"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    step_key: Mapped[str] = mapped_column(String(40))
    department: Mapped[str] = mapped_column(String(40))
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    minute: Mapped[int] = mapped_column(Integer)  # floor of the elapsed minutes
    count: Mapped[int] = mapped_column(Integer)
    within: Mapped[int] = mapped_column(Integer)  # of these, at or under their step's target
    targeted: Mapped[int] = mapped_column(Integer)  # of these, with a known target
    max_minutes: Mapped[float] = mapped_column(Float)


# One value at a given rank among a group's finished steps in one minute: (group, minutes) in
# order, the period's filter read from the index itself. Partial: only finished steps with minutes.
_FINISHED = "state = 'done' AND elapsed_minutes IS NOT NULL"
for _name, _group, _include in (("ix_steps_key_minutes", Step.key, ["done_at", "department"]),
                                ("ix_steps_department_minutes", Step.department, ["done_at"]),
                                ("ix_steps_assignee_minutes", Step.assignee_id, ["done_at", "department"])):
    Index(_name, _group, Step.elapsed_minutes, postgresql_include=_include,
          postgresql_where=text(_FINISHED), sqlite_where=text(_FINISHED))
