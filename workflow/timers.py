"""SLA timers: rows with a due time, armed by the operations and fired by the timer worker.

Every action that moves a clock calls ``rearm``, which recomputes the case's unfired timers
(stopped clocks get no due time). The worker's ``fire_due`` locks a batch of cases that have due
timers — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of workers share the work and none
waits on another — and, per timer, sets ``fired_at`` only where it is still NULL, records the event
and the supervisors' notification, all in the caller's transaction. A worker that dies mid-batch
leaves nothing: its transaction rolls back and the next sweep finds the same timers due.

Lock order is always the case row first, then its timers, for clerks and workers alike: no deadlock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import audit
from .actors import SERVICE_WINDOW, SYSTEM
from .calendar import HALL_TZ, BusinessCalendar
from .calendar_days import calendar_for
from .clock import utcnow
from .definitions import store
from .machines.case import CaseState
from .machines.step import OPEN_STATES
from .models import Case, Notification, Timer
from .sla import STATUSES, WARNING_SHARE, Clock, Sla, measure, reached_at

CASE = "case"
RUNNING_CASE_STATES = (CaseState.in_progress, CaseState.suspended)


def _suspensions(case: Case) -> tuple:
    return tuple((s.started_at, s.ended_at) for s in case.suspensions)


def clocks(session: Session, case: Case) -> dict[str, Clock]:
    """The case's clock and each step's, keyed by ``"case"`` and the step keys."""
    definition = store.get(session, case.definition_name, case.definition_version)
    suspensions = _suspensions(case)
    case_end = case.ready_at or (case.closed_at if case.state in (CaseState.rejected, CaseState.withdrawn) else None)
    result = {CASE: Clock(case.accepted_at, case_end, suspensions, definition.case_target_minutes)}
    for step in case.steps:
        end = step.done_at or case.closed_at  # a case that ended stops its open steps' clocks too
        result[step.key] = Clock(step.ready_at, end, suspensions, definition.step(step.key).target_minutes)
    return result


def _running(case: Case, subject: str) -> bool:
    if case.state not in RUNNING_CASE_STATES:
        return False
    return subject == CASE or case.step(subject).state in OPEN_STATES


def _due_times(calendar: BusinessCalendar, clock: Clock) -> dict[str, datetime | None]:
    target = timedelta(minutes=clock.target_minutes)
    warning, _ = reached_at(calendar, clock, target * WARNING_SHARE)
    deadline, _ = reached_at(calendar, clock, target)
    # Breached means *more* than the target used: that starts at the first working instant after
    # the deadline (a deadline at 12:00 is breached only once the afternoon session opens).
    breach = calendar.next_working_instant(deadline) if deadline is not None else None
    return {"warning": warning, "breach": breach}


def rearm(session: Session, case: Case) -> None:
    """Recompute the due times of the case's unfired timers after an action moved its clocks."""
    calendar = calendar_for(session)
    existing = {(t.subject, t.kind): t for t in session.scalars(
        select(Timer).where(Timer.case_id == case.id).execution_options(populate_existing=True))}
    for subject, clock in clocks(session, case).items():
        running = clock.start is not None and _running(case, subject)
        due = _due_times(calendar, clock) if running else {"warning": None, "breach": None}
        for kind, due_at in due.items():
            timer = existing.get((subject, kind))
            if timer is None:
                if due_at is None:
                    continue
                timer = Timer(case_id=case.id, subject=subject, kind=kind)
                session.add(timer)
            if timer.fired_at is None:
                timer.due_at = due_at
    session.flush()


def rearm_running(session: Session) -> int:
    """Recompute every running case's timers (after the calendar changed); return how many cases."""
    cases = session.scalars(select(Case).where(Case.state.in_(RUNNING_CASE_STATES))).all()
    for case in cases:
        rearm(session, case)
    return len(cases)


def _open_due(now: datetime):
    return (Timer.fired_at.is_(None), Timer.due_at.is_not(None), Timer.due_at < now)


def fire_due(session: Session, now: datetime | None = None, limit: int = 100) -> int:
    """Fire the due timers of a batch of cases; flush, and return how many fired.

    The caller commits (once per batch) and calls again until it returns 0. The batch is chosen
    through the open-timers index, oldest due first, and the cases are locked with SKIP LOCKED (the
    LIMIT applies after skipping, so each worker gets cases nobody else holds). All due timers of
    the locked cases are claimed by one UPDATE … RETURNING: only rows still unfired come back.
    """
    now = now or utcnow()
    cases = session.scalars(
        select(Case).join(Timer, Timer.case_id == Case.id).where(*_open_due(now))
        .order_by(Timer.due_at).limit(limit)
        .with_for_update(of=Case, skip_locked=True).execution_options(populate_existing=True)
    ).unique().all()
    if not cases:
        return 0
    by_id = {case.id: case for case in cases}
    claimed = session.execute(
        update(Timer).where(Timer.case_id.in_(by_id), *_open_due(now)).values(fired_at=now)
        .returning(Timer.case_id, Timer.subject, Timer.kind, Timer.due_at)
        .execution_options(synchronize_session=False)
    ).all()
    calendar = calendar_for(session)
    audit.prime_heads(session, by_id)  # one query instead of one per case; the inserts then batch
    case_clocks: dict[int, dict[str, Clock]] = {}
    for case_id, subject, kind, _due in sorted(claimed, key=lambda row: (row.case_id, row.due_at)):
        case = by_id[case_id]
        if case_id not in case_clocks:
            case_clocks[case_id] = clocks(session, case)
        _record(session, case, subject, kind, measure(calendar, case_clocks[case_id][subject], now), now)
    session.flush()
    return len(claimed)


def _record(session: Session, case: Case, subject_key: str, kind: str, sla: Sla | None, now: datetime) -> None:
    status = "warning" if kind == "warning" else "breached"
    subject = case if subject_key == CASE else case.step(subject_key)
    if STATUSES.index(status) > STATUSES.index(subject.sla_status):
        subject.sla_status = status
    step = None if subject_key == CASE else subject_key
    department = SERVICE_WINDOW if step is None else subject.department
    payload = {"status": status, "target_minutes": sla.target_minutes if sla else None,
               "used_minutes": sla.used_minutes if sla else None,
               "deadline": sla.deadline.isoformat() if sla and sla.deadline else None}
    audit.record(session, case, SYSTEM, f"sla_{kind}", step=step, payload=payload, at=now)
    what = f"step {step}" if step else "the case"
    session.add(Notification(
        department=department, case_id=case.id, subject=subject_key, kind=f"sla_{kind}", created_at=now,
        message=f"{case.case_no}: {what} {'passed 75 % of' if kind == 'warning' else 'breached'} "
                f"its {payload['target_minutes']}-minute target",
    ))


@dataclass(frozen=True)
class Timing:
    """The service levels of a case and its steps at one instant, for responses."""

    case: Sla | None
    steps: dict[str, Sla | None]
    calendar_confirmed: bool


def timing(session: Session, case: Case, now: datetime | None = None,
           calendar: BusinessCalendar | None = None) -> Timing:
    """Measure every clock of the case at ``now``."""
    now = now or utcnow()
    calendar = calendar or calendar_for(session)
    measured = {subject: measure(calendar, clock, now) for subject, clock in clocks(session, case).items()}
    confirmed = all(s.confirmed for s in measured.values() if s is not None)
    if all(s is None for s in measured.values()):
        confirmed = calendar.day(now.astimezone(HALL_TZ).date()).confirmed
    return Timing(case=measured.pop(CASE), steps=measured, calendar_confirmed=confirmed)



@dataclass(frozen=True)
class TimedCase:
    """A case with its service levels measured at one instant: what responses show."""

    case: Case
    timing: Timing


def with_timing(session: Session, cases: list[Case], now: datetime | None = None) -> list[TimedCase]:
    now = now or utcnow()
    calendar = calendar_for(session)
    return [TimedCase(case, timing(session, case, now, calendar)) for case in cases]
