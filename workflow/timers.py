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

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from weakref import WeakKeyDictionary

from sqlalchemy import bindparam, case as sql_case, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from . import audit, calendar_days
from .actors import SERVICE_WINDOW, SYSTEM
from .calendar import HALL_TZ, BusinessCalendar
from .calendar_days import calendar_for
from .clock import utcnow
from .definitions import Definition, store
from .machines.case import CaseState
from .machines.step import OPEN_STATES
from .models import Case, Event, Notification, Step, Suspension, Timer
from .sla import STATUSES, WARNING_SHARE, Clock, Sla, measure, reached_at

CASE = "case"
KINDS = ("warning", "breach")
RUNNING_CASE_STATES = (CaseState.in_progress, CaseState.suspended)
# Published definitions by database engine: a published version never changes, so each process
# reads it once per database instead of once per request (``store.get`` remembers it per session).
_published: WeakKeyDictionary[Engine, dict[tuple[str, int], Definition]] = WeakKeyDictionary()


def definition_of(session: Session, case) -> Definition:
    """The process definition the case runs under."""
    known = _published.setdefault(session.get_bind().engine, {})
    key = (case.definition_name, case.definition_version)
    definition = known.get(key)
    if definition is None:
        definition = known[key] = store.get(session, *key)
    return definition


def _suspensions(case: Case) -> tuple:
    return tuple((s.started_at, s.ended_at) for s in case.suspensions)


def clocks(session: Session, case: Case, definition: Definition | None = None) -> dict[str, Clock]:
    """The case's clock and each step's, keyed by ``"case"`` and the step keys."""
    definition = definition or definition_of(session, case)
    suspensions = _suspensions(case)
    result = {CASE: _case_clock(case, definition, suspensions)}
    for step in case.steps:
        result[step.key] = _step_clock(case, step, definition, suspensions)
    return result


def _case_clock(case, definition: Definition, suspensions: tuple) -> Clock:
    end = case.ready_at or (case.closed_at if case.state in (CaseState.rejected, CaseState.withdrawn) else None)
    return Clock(case.accepted_at, end, suspensions, definition.case_target_minutes)


def _step_clock(case, step, definition: Definition, suspensions: tuple) -> Clock:
    end = step.done_at or case.closed_at  # a case that ended stops its open steps' clocks too
    return Clock(step.ready_at, end, suspensions, definition.step(step.key).target_minutes)


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


@functools.cache
def _upsert(dialect_name: str):
    """INSERT … ON CONFLICT for timers, built once per dialect (executed with a list of rows)."""
    # On the table, not the mapped class: the ORM's bulk INSERT would split the rows whose due_at is
    # None into statements of their own.
    timers = Timer.__table__
    statement = (postgresql if dialect_name == "postgresql" else sqlite).insert(timers)
    return statement.on_conflict_do_update(
        index_elements=[timers.c.case_id, timers.c.subject, timers.c.kind],
        set_={"due_at": statement.excluded.due_at},
        where=timers.c.fired_at.is_(None) & timers.c.due_at.is_distinct_from(statement.excluded.due_at),
    )


def rearm(session: Session, case: Case, *, calendar: BusinessCalendar | None = None,
          case_clocks: dict[str, Clock] | None = None) -> None:
    """Recompute the due times of the case's unfired timers after an action moved its clocks.

    One upsert for the whole case: each started clock's two thresholds get their due time if the
    clock runs, none (NULL) if it is stopped or finished; a fired timer keeps its time, and a timer
    whose time did not change is not rewritten. A clock that never started has no timers.
    ``calendar`` and ``case_clocks`` save recomputing what the caller already has.
    """
    calendar = calendar or calendar_for(session)
    rows = []
    for subject, clock in (case_clocks or clocks(session, case)).items():
        if clock.start is None:
            continue
        due = _due_times(calendar, clock) if _running(case, subject) else dict.fromkeys(KINDS)
        rows += [{"case_id": case.id, "subject": subject, "kind": kind, "due_at": due_at}
                 for kind, due_at in due.items()]
    if not rows:
        return
    session.execute(_upsert(session.get_bind().dialect.name), rows)
    _expire(session, Timer, "case_id", {case.id})


def _expire(session: Session, model, key: str, ids: set[int], attributes: list[str] | None = None) -> None:
    """Expire ``model`` objects this session holds for ``ids``, after a bulk statement changed their rows."""
    for identity in [k for k in session.identity_map.keys() if k[0] is model]:
        obj = session.identity_map.get(identity)
        if obj is not None and obj.__dict__.get(key) in ids:
            session.expire(obj, attributes)


def rearm_running(session: Session) -> int:
    """Recompute every running case's timers (after the calendar changed); return how many cases."""
    cases = session.scalars(select(Case).where(Case.state.in_(RUNNING_CASE_STATES))).all()
    calendar = calendar_for(session)
    for case in cases:
        rearm(session, case, calendar=calendar)
    return len(cases)


def _open_due(now: datetime):
    return (Timer.fired_at.is_(None), Timer.due_at.is_not(None), Timer.due_at < now)


@dataclass
class _DueCase:
    """What the sweep reads of a locked case: enough for its clocks, its events and its statuses."""

    id: int
    case_no: str
    state: CaseState
    definition_name: str
    definition_version: int
    accepted_at: datetime | None
    ready_at: datetime | None
    closed_at: datetime | None
    chain_seq: int
    chain_hash: str
    sla_status: str
    steps: list = field(default_factory=list)
    suspensions: list = field(default_factory=list)

    def step(self, key: str):
        return next(step for step in self.steps if step.key == key)


_DUE_CASE_COLUMNS = (Case.id, Case.case_no, Case.state, Case.definition_name, Case.definition_version,
                     Case.accepted_at, Case.ready_at, Case.closed_at, Case.chain_seq, Case.chain_hash,
                     Case.sla_status)


def fire_due(session: Session, now: datetime | None = None, limit: int = 200) -> int:
    """Fire the due timers of a batch of cases; return how many fired.

    The caller commits (once per batch) and calls again until it returns 0. The batch is chosen
    through the open-timers index, oldest due first, and the cases are locked with SKIP LOCKED (the
    LIMIT applies after skipping, so each worker gets cases nobody else holds). All due timers of
    the locked cases are claimed by one UPDATE … RETURNING: only rows still unfired come back.

    A batch costs the same eight statements however many timers it fires: the locked cases (with the
    calendar's stamp), the claim, their steps and suspensions (plain rows, not ORM objects), and one
    bulk statement each for the events, the notifications, the cases' statuses and chain heads and
    the steps' statuses. Batches of 200 timers keep a sweep of a thousand to five of them, small
    enough that several workers share the work and a clerk waits at most one short batch for a case
    the sweep holds. Objects of these cases that the session holds are expired, so they read the new
    statuses.
    """
    now = now or utcnow()
    rows = session.execute(
        select(*_DUE_CASE_COLUMNS, *calendar_days.stamp_columns()).join(Timer, Timer.case_id == Case.id)
        .where(*_open_due(now)).order_by(Timer.due_at).limit(limit).with_for_update(of=Case, skip_locked=True)
    ).all()
    if not rows:
        return 0
    width = len(_DUE_CASE_COLUMNS)
    by_id = {row.id: _DueCase(*row[:width]) for row in rows}
    calendar = calendar_days.calendar_for(session, stamp=tuple(rows[0][width:]))
    claimed = session.execute(
        update(Timer).where(Timer.case_id.in_(by_id), *_open_due(now)).values(fired_at=now)
        .returning(Timer.case_id, Timer.subject, Timer.kind, Timer.due_at)
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        return 0
    fired = sorted({row.case_id for row in claimed})
    step_subjects = {(row.case_id, row.subject) for row in claimed if row.subject != CASE}
    if step_subjects:
        for row in session.execute(select(Step.case_id, Step.id, Step.key, Step.department, Step.ready_at,
                                          Step.done_at, Step.sla_status)
                                   .where(tuple_(Step.case_id, Step.key).in_(sorted(step_subjects)))):
            by_id[row.case_id].steps.append(_Status(row))
    for row in session.execute(select(Suspension.case_id, Suspension.started_at, Suspension.ended_at)
                               .where(Suspension.case_id.in_(fired)).order_by(Suspension.started_at)):
        by_id[row.case_id].suspensions.append(row)
    if session.get_bind().dialect.name == "postgresql":  # the rows are locked: their heads hold
        audit.heads_of_locked(session, [(c.id, c.chain_seq, c.chain_hash) for c in by_id.values()])
    else:  # read before the claim took SQLite's write lock: the heads are read again, in one query
        audit.prime_heads(session, fired)
    events, notes = [], []
    for case_id, subject, kind, _due in sorted(claimed, key=lambda row: (row.case_id, row.due_at)):
        case = by_id[case_id]
        definition = definition_of(session, case)
        suspensions = _suspensions(case)
        clock = _case_clock(case, definition, suspensions) if subject == CASE \
            else _step_clock(case, case.step(subject), definition, suspensions)
        events.append(_fire(session, case, subject, kind, measure(calendar, clock, now), now, notes))
    # On the tables: the ORM's bulk INSERT would split rows with a None (a case's events have no step).
    session.execute(insert(Event.__table__), events)
    session.execute(insert(Notification.__table__), notes)
    fired = [by_id[case_id] for case_id in fired]
    cases, steps = Case.__table__, Step.__table__
    heads = {case.id: audit.chain_head(session, case.id) for case in fired}
    session.execute(
        update(cases).where(cases.c.id == bindparam("b_id"))
        .values(sla_status=_raised(cases.c.sla_status, bindparam("b_status")), chain_seq=bindparam("b_seq"),
                chain_hash=bindparam("b_hash")),
        [{"b_id": case.id, "b_status": case.sla_status, "b_seq": heads[case.id][0], "b_hash": heads[case.id][1]}
         for case in fired],
    )
    raised = [{"b_id": step.id, "b_status": step.sla_status} for case in fired for step in case.steps if step.raised]
    if raised:
        session.execute(update(steps).where(steps.c.id == bindparam("b_id")).values(sla_status=bindparam("b_status")),
                        raised)
    _expire(session, Case, "id", set(heads), ["sla_status", "chain_seq", "chain_hash"])
    _expire(session, Step, "case_id", set(heads), ["sla_status"])
    return len(claimed)


def _raised(stored, swept):
    """The worse of the stored status and the one the sweep computed: a recorded status only moves forward.

    On SQLite the batch's cases are read before the claim takes the write lock, so another sweep
    may raise a case's status and commit in between; writing this sweep's value as it is would put
    a recorded breach back to on_track (found by tests/reliability/crash_drill.py).
    """
    rank = {status: number for number, status in enumerate(STATUSES)}
    return sql_case((sql_case(rank, value=swept) > sql_case(rank, value=stored), swept), else_=stored)


class _Status:
    """A step row whose SLA status the sweep may raise."""

    __slots__ = ("id", "key", "department", "ready_at", "done_at", "sla_status", "raised")

    def __init__(self, row) -> None:
        self.id, self.key, self.department = row.id, row.key, row.department
        self.ready_at, self.done_at, self.sla_status, self.raised = row.ready_at, row.done_at, row.sla_status, False


def _fire(session: Session, case: _DueCase, subject_key: str, kind: str, sla: Sla | None, now: datetime,
          notes: list[dict]) -> dict:
    """One threshold crossed: raise the subject's status, and return its event row (and note its notification)."""
    status = "warning" if kind == "warning" else "breached"
    subject = case if subject_key == CASE else case.step(subject_key)
    if STATUSES.index(status) > STATUSES.index(subject.sla_status):
        subject.sla_status = status
        if subject is not case:
            subject.raised = True
    step = None if subject_key == CASE else subject_key
    department = SERVICE_WINDOW if step is None else subject.department
    payload = {"status": status, "target_minutes": sla.target_minutes if sla else None,
               "used_minutes": sla.used_minutes if sla else None,
               "deadline": sla.deadline.isoformat() if sla and sla.deadline else None}
    what = f"step {step}" if step else "the case"
    notes.append({
        "department": department, "case_id": case.id, "subject": subject_key, "kind": f"sla_{kind}",
        "created_at": now, "message": f"{case.case_no}: {what} {'passed 75 % of' if kind == 'warning' else 'breached'} "
                                      f"its {payload['target_minutes']}-minute target",
    })
    return audit.event_row(session, case.id, case.case_no, SYSTEM, f"sla_{kind}", step=step, payload=payload, at=now)


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
