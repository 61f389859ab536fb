"""The applicant's side: a case found by its number and tracking code, shown without personal data,
with an estimate of completion; and the rating (好差评) of a delivered case, with the follow-up a
poor rating opens for the hall's supervisors.

Nothing here knows about HTTP. Throttling wrong codes is the web layer's job (it sees clients).
"""
from __future__ import annotations

import hmac
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from weakref import WeakKeyDictionary

from sqlalchemy import select, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, lazyload

from . import audit
from .actors import Actor, Role
from .calendar import BusinessCalendar
from .calendar_days import calendar_for, stamp_columns
from .clock import utcnow
from .definitions import Definition
from .errors import Conflict, Forbidden, IllegalAction, Invalid, NotFound
from .machines.case import CaseState
from .machines.step import SETTLED_STATES, StepState
from .models import Case, FollowUp, Rating, Step
from .operations._common import require_text
from .timers import Timing, definition_of, timing

APPLICANT = Actor(user_id=None, username="applicant", role=None, department=None)
# Five working days of the hall's default sessions (7 working hours a day).
FOLLOW_UP_MINUTES = 5 * 7 * 60
# How many recent completions of a step its typical duration is the median of.
RECENT = 50
# The least an open step is expected to still take, in working minutes.
MIN_LEFT = 5.0
# How long a step's recent median is reused, in seconds: a burst of lookups asks the same few
# medians thousands of times a minute, and a minute-old median estimates as well as a fresh one.
MEDIANS_TTL = 60.0
# Compared against when the case number is unknown, so that a miss costs what a hit costs.
_NO_CODE = "0" * 10
# Recent medians per database (engine), by step key: (median or None when no history, computed at).
_medians: WeakKeyDictionary[Engine, dict[str, tuple[float | None, float]]] = WeakKeyDictionary()
_medians_lock = threading.Lock()


def find(session: Session, case_no: str, code: str) -> Case | None:
    """The case with this number if ``code`` is its tracking code (compared in constant time).

    Only the number and code are read until the code matches: an unknown number and a wrong code
    cost the same one-row lookup (no steps loaded for a case the caller may not see). That lookup
    also brings whether the hall's calendar changed, for the view that follows; a match then loads
    the case with its steps and suspensions in one query.
    """
    case_no = (case_no or "").strip().upper()[:20]
    given = (code or "").strip().upper().encode()[:64]
    row = session.execute(select(Case.id, Case.tracking_code, *stamp_columns())
                          .where(Case.case_no == case_no)).first() if case_no else None
    expected = (row.tracking_code if row is not None else _NO_CODE).encode()
    matches = hmac.compare_digest(expected, given)
    if row is None or not matches:
        return None
    calendar_for(session, stamp=tuple(row[2:]))
    return session.scalars(
        select(Case).where(Case.id == row.id)
        .options(joinedload(Case.steps).lazyload(Step.assignee), joinedload(Case.suspensions))
    ).unique().one()


def recent_medians(session: Session, keys: list[str], sample: int = RECENT) -> dict[str, float]:
    """The median elapsed working minutes of each step's latest ``sample`` completions (one query).

    Each step's newest completions are read backwards along ``ix_steps_key_done_at`` and no
    further than ``sample`` rows, so the cost does not grow with the years of history.
    """
    keys = sorted(set(keys))
    if not keys:
        return {}
    latest = [select(Step.key, Step.elapsed_minutes)
              .where(Step.key == key, Step.done_at.is_not(None), Step.state == StepState.done,
                     Step.elapsed_minutes.is_not(None))
              .order_by(Step.done_at.desc()).limit(sample).subquery()
              for key in keys]
    query = union_all(*(select(part.c.key, part.c.elapsed_minutes) for part in latest))
    values: dict[str, list[float]] = {}
    for key, minutes in session.execute(query):
        values.setdefault(key, []).append(minutes)
    return {key: statistics.median(found) for key, found in values.items()}


def cached_medians(session: Session, keys: list[str]) -> dict[str, float]:
    """:func:`recent_medians`, each step's reused for :data:`MEDIANS_TTL` seconds per database."""
    now = time.monotonic()
    with _medians_lock:
        known = _medians.setdefault(session.get_bind().engine, {})
        fresh = {key: known[key] for key in keys if key in known and now - known[key][1] < MEDIANS_TTL}
    stale = [key for key in keys if key not in fresh]
    if stale:
        found = recent_medians(session, stale)
        computed = {key: (found.get(key), now) for key in stale}
        with _medians_lock:
            known.update(computed)
        fresh.update(computed)
    return {key: median for key, (median, _) in fresh.items() if median is not None}


def estimate(case: Case, definition: Definition, measured: Timing, medians: dict[str, float],
             calendar: BusinessCalendar, now: datetime) -> datetime | None:
    """When the case should be ready: each open step takes its recent median (its target when
    there is no history), less what it has used; steps run in parallel where the process allows.

    None while the clock is stopped (it depends on the applicant) or when the case will not finish.
    """
    if case.ready_at is not None:
        return case.ready_at
    if case.state is not CaseState.in_progress:
        return None
    finish: dict[str, float] = {}
    for step in case.steps:  # in the definition's topological order
        if step.state in SETTLED_STATES:
            finish[step.key] = 0.0
            continue
        typical = medians.get(step.key, float(definition.step(step.key).target_minutes))
        sla = measured.steps.get(step.key)
        # A step running past its typical time still needs some: never estimate it done already.
        left = max(typical - (sla.used_minutes if sla else 0.0), MIN_LEFT)
        start = max((finish[need] for need in step.needs), default=0.0)
        finish[step.key] = start + left
    remaining = max(finish.values(), default=0.0)
    return calendar.add(now, timedelta(minutes=remaining)).value


@dataclass(frozen=True)
class PublicStep:
    key: str
    title: dict
    department: str
    department_name: dict
    state: str
    ready_at: datetime | None
    done_at: datetime | None
    deadline: datetime | None
    sla_status: str | None


def public_view(session: Session, case: Case, now: datetime | None = None) -> dict:
    """What anyone holding the case number and code may see: states, agencies, times. No names of
    people, no ID or phone numbers, no free text typed by staff (it may name someone)."""
    now = now or utcnow()
    definition = definition_of(session, case)
    calendar = calendar_for(session)
    measured = timing(session, case, now, calendar)
    medians = cached_medians(session, [step.key for step in case.steps]) if case.state is CaseState.in_progress else {}
    # Only a delivered case can have been rated (and delivered is final): no query for the others.
    rating = session.scalar(select(Rating).where(Rating.case_id == case.id)) \
        if case.state is CaseState.delivered else None
    steps = []
    for step in case.steps:
        sla = measured.steps.get(step.key)
        steps.append(PublicStep(
            key=step.key, title=dict(definition.step(step.key).title), department=step.department,
            department_name=dict(definition.departments.get(step.department, {})), state=step.state.value,
            ready_at=step.ready_at, done_at=step.done_at,
            deadline=sla.deadline if sla and step.state not in SETTLED_STATES else None,
            sla_status=sla.status if sla else None))
    return {
        "case_no": case.case_no,
        "company_name": case.company_name,
        "state": case.state.value,
        "accepted_at": case.accepted_at,
        "ready_at": case.ready_at,
        "delivered_at": case.delivered_at,
        "deadline": measured.case.deadline if measured.case else None,
        "sla_status": measured.case.status if measured.case else None,
        "paused": bool(measured.case and measured.case.paused),
        "materials_pending": len(case.missing_materials or []),
        "calendar_confirmed": measured.calendar_confirmed,
        "estimate": estimate(case, definition, measured, medians, calendar, now),
        "steps": steps,
        "rating": {"score": rating.score, "created_at": rating.created_at} if rating else None,
        "can_rate": case.state is CaseState.delivered and rating is None,
    }


def rate(session: Session, case: Case, score, comment: str | None = None) -> Rating:
    """Rate a delivered case once, 1 to 5; a 1 or 2 opens a follow-up due in 5 working days."""
    errors = {}
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        errors["score"] = ["must be a whole number from 1 to 5"]
    if comment is not None and not isinstance(comment, str):
        errors["comment"] = ["must be text"]
        comment = None
    comment = (comment or "").strip() or None
    if comment is not None:
        try:
            comment = require_text(comment, "comment")
        except Invalid as error:
            errors.update(error.errors)
    if errors:
        raise Invalid(errors)
    if case.state is not CaseState.delivered:
        raise IllegalAction(f"only a delivered case can be rated; this one is {case.state.value}",
                            state=case.state.value)
    now = utcnow()
    rating = Rating(case_id=case.id, score=score, comment=comment, created_at=now)
    try:
        with session.begin_nested():  # a concurrent second rating fails on the unique case_id
            session.add(rating)
            session.flush()
    except IntegrityError:
        raise Conflict("this case has already been rated") from None
    audit.record(session, case, APPLICANT, "rate", payload={"score": score, "comment": comment}, at=now)
    if score <= 2:
        due = calendar_for(session).add(now, timedelta(minutes=FOLLOW_UP_MINUTES)).value
        session.add(FollowUp(case_id=case.id, rating_id=rating.id, created_at=now, due_at=due))
    session.flush()
    return rating


def open_follow_ups(session: Session, limit: int = 100) -> list[tuple[FollowUp, str, Rating]]:
    """Follow-ups nobody has closed yet, the soonest due first, with their case numbers and ratings."""
    return list(session.execute(
        select(FollowUp, Case.case_no, Rating).join(Case, Case.id == FollowUp.case_id)
        .join(Rating, Rating.id == FollowUp.rating_id)
        .where(FollowUp.closed_at.is_(None)).order_by(FollowUp.due_at, FollowUp.id).limit(limit)).all())


def close_follow_up(session: Session, follow_up_id: int, actor: Actor, reply: str) -> FollowUp:
    """A supervisor (of any department: the rating is of the hall) or an admin answers and closes it."""
    if actor.role not in (Role.supervisor, Role.admin):
        raise Forbidden("follow-ups are closed by supervisors and admins")
    reply = require_text(reply, "reply", limit=1000)
    follow_up = session.get(FollowUp, follow_up_id, with_for_update=True)
    if follow_up is None:
        raise NotFound(f"no follow-up {follow_up_id}")
    if follow_up.closed_at is not None:
        raise Conflict(f"the follow-up was closed by {follow_up.closed_by}")
    now = utcnow()
    follow_up.closed_at, follow_up.closed_by, follow_up.reply = now, actor.username, reply
    case = session.get(Case, follow_up.case_id)
    audit.record(session, case, actor, "follow_up_closed", payload={"reply": reply}, at=now)
    session.flush()
    return follow_up
