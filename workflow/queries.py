"""Read-side queries shared by the API and the pages: case lists with filters, audit events."""
from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from .actors import SERVICE_WINDOW, Actor, Role
from .errors import Forbidden
from .machines.case import CaseState
from .machines.step import OPEN_STATES
from .models import Case, Event, Notification, Step, User

# What the window itself must act on: new applications, suspended cases, finished ones to hand over.
WINDOW_STATES = (CaseState.submitted, CaseState.suspended, CaseState.ready)
RUNNING_STATES = (CaseState.in_progress, CaseState.suspended)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A list's total is counted up to here: beyond it the exact figure costs a scan of every match (a
# second and more at a million cases) and tells a clerk nothing a narrower search would not.
COUNT_LIMIT = 10_000
CASE_NO_START = re.compile(r"KB\d", re.IGNORECASE)


class CasePage(NamedTuple):
    items: list[Case]
    total: int  # the matching cases, at most COUNT_LIMIT
    total_is_exact: bool  # False: more than COUNT_LIMIT match


def _case_no(session: Session):
    """Case numbers in byte order on PostgreSQL, whatever the database's collation: what its index
    ``ix_cases_case_no_c`` holds, so a prefix is a range of it (SQLite compares bytes anyway)."""
    return Case.case_no.collate("C") if session.get_bind().dialect.name == "postgresql" else Case.case_no


def list_cases(session: Session, *, state: str | None = None, step: str | None = None,
               department: str | None = None, sla_status: str | None = None, q: str | None = None,
               page: int = 1, per_page: int = 20) -> CasePage:
    """One page of cases, newest first, and how many match the filters (counted up to COUNT_LIMIT).

    Every filter has an index behind it (``workflow/models/case.py``): a state or an SLA status with
    the creation time, a case-number prefix, and on PostgreSQL a trigram index for a part of a
    company name.
    """
    query = select(Case)
    if state:
        query = query.where(Case.state == CaseState(state))
    if step:
        # An open step of a case that has ended (withdrawn, rejected) is nobody's work any more.
        query = query.where(Case.state.in_(RUNNING_STATES), exists().where(
            Step.case_id == Case.id, Step.key == step, Step.state.in_(OPEN_STATES)))
    if department == SERVICE_WINDOW:
        query = query.where(Case.state.in_(WINDOW_STATES))
    elif department:
        query = query.where(Case.state.in_(RUNNING_STATES), exists().where(
            Step.case_id == Case.id, Step.department == department, Step.state.in_(OPEN_STATES)))
    if sla_status:
        query = query.where(Case.sla_status == sla_status)
    newest_first = (Case.created_at.desc(), Case.id.desc())
    if q:
        pattern = _escape_like(q.strip())
        case_no = _case_no(session)
        if CASE_NO_START.match(pattern):
            # A case number or the start of one (KB20261123-…) is no company's name. Case numbers are
            # handed out in order of creation, so their own order is newest first, and a day's cases
            # are one range of the case-number index — where the creation-time index, scanned from the
            # newest, would pass every later case before reaching them.
            query = query.where(case_no.like(f"{pattern.upper()}%", escape="\\"))
            newest_first = (case_no.desc(),)
        else:
            query = query.where(or_(case_no.like(f"{pattern}%", escape="\\"),
                                    Case.company_name.like(f"%{pattern}%", escape="\\")))
    counted = session.scalar(select(func.count()).select_from(
        query.with_only_columns(Case.id).limit(COUNT_LIMIT + 1).subquery()))
    items = session.scalars(
        query.order_by(*newest_first).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return CasePage(list(items), min(counted, COUNT_LIMIT), counted <= COUNT_LIMIT)


def case_events(session: Session, case: Case) -> list[Event]:
    """The case's audit trail, oldest first."""
    return list(session.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.seq)))


def notifications_for(session: Session, actor: Actor, limit: int = 100, unread_only: bool = False) -> list:
    """The newest notifications of the actor's department (every department for admins), with case numbers.

    Notifications are for supervisors (contract §2: a crossing "notifies the owning department's
    supervisors") and admins, as on the board; a clerk gets Forbidden.
    """
    if actor.role not in (Role.supervisor, Role.admin):
        raise Forbidden("notifications are for supervisors and admins")
    query = (select(Notification, Case.case_no).join(Case, Case.id == Notification.case_id)
             .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if actor.role is not Role.admin:
        query = query.where(Notification.department == actor.department)
    return list(session.execute(query).all())


def department_staff(session: Session, department: str) -> list[User]:
    """The active clerks and supervisors of a department, by name: whom a step can be handed to."""
    return list(session.scalars(
        select(User).where(User.department == department, User.active.is_(True),
                           User.role.in_((Role.clerk, Role.supervisor))).order_by(User.display_name, User.username)))


# The staff pages' lists. Each is bounded: a queue longer than this is a crisis the board shows.
PAGE_LIMIT = 200


def open_steps(session: Session, departments: tuple[str, ...] | None = None,
               limit: int = PAGE_LIMIT) -> list[Step]:
    """The ready and claimed steps of these departments (all when None), with their cases loaded."""
    # The cases' own steps in one more query: timing a case reads all of them (selectin is not
    # applied by itself to cases loaded through contains_eager, which made this one query per case).
    query = (select(Step).join(Case, Case.id == Step.case_id)
             .options(contains_eager(Step.case).selectinload(Case.steps))
             .where(Step.state.in_(OPEN_STATES))
             .order_by(Step.ready_at, Step.id).limit(limit))
    if departments is not None:
        query = query.where(Step.department.in_(departments))
    return list(session.scalars(query))


def window_cases(session: Session, states=WINDOW_STATES, limit: int = PAGE_LIMIT) -> list[Case]:
    """The cases in these states (by default what the window must act on), oldest first."""
    return list(session.scalars(select(Case).where(Case.state.in_(states))
                                .order_by(Case.created_at, Case.id).limit(limit)))


def case_counts(session: Session) -> dict[CaseState, int]:
    """How many cases are in each state (every state present, zero when none)."""
    counts = dict.fromkeys(CaseState, 0)
    counts.update((state, count) for state, count in session.execute(
        select(Case.state, func.count()).group_by(Case.state)))
    return counts


def search_events(session: Session, *, case_no: str | None = None, actor: str | None = None,
                  action: str | None = None, start: datetime | None = None, end: datetime | None = None,
                  page: int = 1, per_page: int = 50) -> tuple[list[tuple[Event, str]], int]:
    """One page of audit events of every case, newest first, each with its case number; and the total.

    ``case_no`` matches a case-number prefix (``KB20261123`` finds that day's cases), ``actor`` a
    username exactly, ``action`` exactly; ``start`` is included and ``end`` excluded. Filters left
    out (None or empty) match everything.
    """
    query = select(Event, Case.case_no).join(Case, Case.id == Event.case_id)
    if case_no and case_no.strip():
        query = query.where(_case_no(session).like(f"{_escape_like(case_no.strip().upper())}%", escape="\\"))
    if actor and actor.strip():
        query = query.where(Event.actor == actor.strip())
    if action:
        query = query.where(Event.action == action)
    if start is not None:
        query = query.where(Event.at >= start)
    if end is not None:
        query = query.where(Event.at < end)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(query.order_by(Event.at.desc(), Event.id.desc())
                           .offset((max(page, 1) - 1) * per_page).limit(per_page))
    return [(event, number) for event, number in rows], total
