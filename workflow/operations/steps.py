"""Step operations: claim, release, complete, refuse — by the owning department only."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, timers
from ..actors import SYSTEM, Actor, Role
from ..clock import utcnow
from ..errors import Invalid, NotFound
from ..machines import case as case_machine, fire
from ..machines import step as step_machine
from ..machines.case import CaseState
from ..calendar_days import calendar_for
from ..models import Case, Step, User
from ..sla import used_minutes
from ..validation import load
from ._common import authorize, check_version, ensure_can, flush, record, require_text
from .cases import advance, definition_of


def _step(case: Case, key: str) -> Step:
    try:
        return case.step(key)
    except KeyError:
        raise NotFound(f"case {case.case_no} has no step {key}") from None


def _step_action(session: Session, case: Case, key: str, actor: Actor, event: str,
                 expected_version: int | None, payload: dict | None = None) -> Step:
    """Check, fire and audit one action on a step; the caller sets its fields and flushes once."""
    step = _step(case, key)
    authorize(step_machine.PERMISSIONS, event, step, actor=actor)
    check_version(case, expected_version)
    before = step.state
    fire(step_machine.MACHINE, event, step, actor=actor)
    case.touch(utcnow())
    record(session, case, actor, event, step=key, from_state=before, to_state=step.state, payload=payload)
    return step


def claim_step(session: Session, case: Case, key: str, actor: Actor, *,
               expected_version: int | None = None) -> Case:
    """Take a ready step into one's own hands."""
    step = _step_action(session, case, key, actor, "claim", expected_version)
    step.assignee_id, step.claimed_at = actor.user_id, utcnow()
    flush(session)  # one UPDATE each of the step and the case, one INSERT of the event; a lost race is Conflict
    return case


def release_step(session: Session, case: Case, key: str, actor: Actor, *,
                 expected_version: int | None = None) -> Case:
    """Give a claimed step back to the department's queue."""
    step = _step_action(session, case, key, actor, "release", expected_version)
    step.assignee_id = step.claimed_at = None
    flush(session)
    return case


def reassign_step(session: Session, case: Case, key: str, actor: Actor, *, assignee: str,
                  expected_version: int | None = None) -> Case:
    """A supervisor hands a claimed step to another active clerk (or supervisor) of the department.

    The step stays ``in_progress`` and its clock runs on; the event names both holders.
    """
    step = _step(case, key)
    authorize(step_machine.PERMISSIONS, "reassign", step, actor=actor)
    check_version(case, expected_version)
    ensure_can(step_machine.MACHINE, "reassign", step)
    user = session.scalar(select(User).where(User.username == (assignee or "").strip()))
    if user is None or not user.active or user.department != step.department \
            or user.role not in (Role.clerk, Role.supervisor):
        raise Invalid({"assignee": ["must be an active clerk of the step's department"]})
    if user.id == step.assignee_id:
        raise Invalid({"assignee": ["already holds the step"]})
    previous = step.assignee.username if step.assignee else None
    _step_action(session, case, key, actor, "reassign", expected_version,
                 payload={"from": previous, "to": user.username})
    step.assignee_id, step.assignee = user.id, user
    flush(session)
    return case


def complete_step(session: Session, case: Case, key: str, actor: Actor, outputs: dict, *,
                  expected_version: int | None = None) -> Case:
    """Finish a step with its output fields; open the steps that needed it; join when all are settled."""
    step = _step(case, key)
    authorize(step_machine.PERMISSIONS, "complete", step, actor=actor)
    check_version(case, expected_version)
    ensure_can(step_machine.MACHINE, "complete", step)
    definition = definition_of(session, case)
    values = load(definition.step(key).outputs_schema, outputs if isinstance(outputs, dict) else {})
    calendar = calendar_for(session)  # before any change: its query then has nothing to flush first
    _step_action(session, case, key, actor, "complete", expected_version, payload={"outputs": values})
    step.outputs = audit.canonical(values)
    step.done_at = utcnow()
    advance(session, case, definition)
    # Fix the working time used, for the applicant's estimates and the admins' reports (in SQL); the
    # same clocks then rearm the timers.
    case_clocks = timers.clocks(session, case, definition)
    step.elapsed_minutes = used_minutes(calendar, case_clocks[key], step.done_at)
    if case.ready_at is not None:
        case.elapsed_minutes = used_minutes(calendar, case_clocks[timers.CASE], case.ready_at)
    flush(session)  # every change of the action in one go; a lost race is Conflict
    timers.rearm(session, case, calendar=calendar, case_clocks=case_clocks)
    return case


def refuse_step(session: Session, case: Case, key: str, actor: Actor, *, reason: str,
                expected_version: int | None = None) -> Case:
    """不予登记 and the like: the step is refused and the whole case is rejected."""
    reason = require_text(reason, "reason")
    step = _step_action(session, case, key, actor, "refuse", expected_version, payload={"reason": reason})
    step.refusal_reason = reason
    fire(case_machine.MACHINE, "step_refused", case, by_engine=True)
    case.closing_reason, case.closed_at = f"{key}: {reason}", utcnow()
    audit.record(session, case, SYSTEM, "step_refused", step=key, from_state=CaseState.in_progress,
                 to_state=case.state, payload={"reason": reason})
    flush(session)
    timers.rearm(session, case)
    return case
