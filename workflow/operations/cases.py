"""Case operations: submit, accept, reject, suspend, resume, withdraw, deliver."""
from __future__ import annotations

import functools
import secrets

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from .. import audit, calendar_days, timers
from ..actors import SYSTEM, Actor
from ..applications import ApplicationSchema
from ..calendar import HALL_TZ
from ..clock import utcnow
from ..definitions import Definition, store
from ..errors import Forbidden, Invalid, NotFound
from ..machines import case as case_machine, fire
from ..machines import step as step_machine
from ..machines.case import CaseState
from ..machines.step import SETTLED_STATES, StepState
from ..models import Case, CaseCounter, Step, Suspension
from ..validation import load
from ._common import authorize, check_version, ensure_can, flush, record, require_text

# 32 symbols without look-alikes (0/O, 1/I): 10 of them carry 50 random bits.
TRACKING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
DELIVERY_METHODS = ("counter", "mail")


def get_case(session: Session, case_no: str, *, lock: bool = False) -> Case:
    """Load a case by number; ``lock`` takes its row lock for an action.

    Locked, the case costs two statements: the lock, which also brings whether the hall's calendar
    changed (``calendar_days.stamp_columns``), then the case with its steps and suspensions. The
    second must be a statement of its own: when a lock wait ends, PostgreSQL re-reads the locked row
    but not the rows joined to it, which would be as they were when the waiting statement began (a
    step another clerk completed meanwhile would look open). The audit chain's head is the locked
    row's own (``audit.heads_of_locked``).
    """
    if not lock:
        case = session.scalar(select(Case).where(Case.case_no == case_no))
    else:
        _write_lock_sqlite(session)
        locked = session.execute(_lock(), {"case_no": case_no}).first()
        case = None
        if locked is not None:
            calendar_days.calendar_for(session, stamp=tuple(locked[1:]))
            case = session.execute(_with_parts(), {"case_id": locked[0]}).unique().scalar_one()
            audit.heads_of_locked(session, [(case.id, case.chain_seq, case.chain_hash)])
    if case is None:
        raise NotFound(f"no case {case_no}")
    return case


# Built once: building these statements and their cache keys costs more than running them.
@functools.cache
def _lock():
    return (select(Case.id, *calendar_days.stamp_columns()).where(Case.case_no == bindparam("case_no"))
            .with_for_update(of=Case))


@functools.cache
def _with_parts():
    return (select(Case).where(Case.id == bindparam("case_id"))
            .options(joinedload(Case.steps), joinedload(Case.suspensions))
            .execution_options(populate_existing=True))


def _write_lock_sqlite(session: Session) -> None:
    """SQLite has no row locks: take the database's write lock before reading, as FOR UPDATE would the row's.

    Python's sqlite3 begins a transaction only before the first write, so a case read before it
    could change before that write; ``BEGIN IMMEDIATE`` makes the read and the action one
    serialised unit (other writers wait, readers do not in WAL mode). A transaction already open
    has written, so it holds the write lock already.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def definition_of(session: Session, case: Case) -> Definition:
    return timers.definition_of(session, case)


def _next_case_no(session: Session, now) -> str:
    day = now.astimezone(HALL_TZ).date()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(CaseCounter).values(day=day, last=1)
        .on_conflict_do_update(index_elements=[CaseCounter.day], set_={"last": CaseCounter.last + 1})
        .returning(CaseCounter.last)
    )
    number = session.execute(statement).scalar_one()
    return f"KB{day:%Y%m%d}-{number:04d}"


def _wanted_steps(definition: Definition, wants: dict) -> set[str]:
    optional = set(definition.optional_steps)
    errors = {f"wants.{key}": [f"unknown optional step; choose from {', '.join(sorted(optional))}"]
              for key in wants if key not in optional}
    if errors:
        raise Invalid(errors)
    return {s.key for s in definition.steps if not s.optional or wants.get(s.key, False)}


def _build_steps(case: Case, definition: Definition, wanted: set[str]) -> None:
    case.steps = [
        Step(key=s.key, position=i, department=s.department, needs=list(s.needs),
             state=StepState.waiting if s.key in wanted else StepState.skipped)
        for i, s in enumerate(definition.steps)
    ]


def submit_case(session: Session, actor: Actor, application: dict) -> Case:
    """Create a case from an application (window staff only); every bad field is named at once."""
    if not actor.is_window:
        raise Forbidden("only service window staff may submit applications")
    definition = store.current(session)
    try:
        data = load(ApplicationSchema(), application)
    except Invalid as invalid:
        # Name the unknown optional steps too, with every other bad field, in one answer.
        wants = application.get("wants") if isinstance(application, dict) else None
        if isinstance(wants, dict):
            try:
                _wanted_steps(definition, wants)
            except Invalid as more:
                invalid.errors.update(more.errors)
        raise
    wanted = _wanted_steps(definition, data["wants"])
    now = utcnow()
    case = Case(
        case_no=_next_case_no(session, now),
        tracking_code="".join(secrets.choice(TRACKING_ALPHABET) for _ in range(10)),
        state=CaseState.submitted,
        version=1,
        definition_name=definition.name,
        definition_version=definition.version,
        channel=data.pop("channel"),
        company_name=data["company"]["name"],
        company_kind=data["company"]["kind"],
        application=data,
        missing_materials=[],
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    _build_steps(case, definition, wanted)
    session.add(case)
    flush(session)
    audit.new_chain(session, case)
    audit.record(session, case, actor, "submit", to_state=case.state,
                 payload={"definition": f"{definition.name} v{definition.version}",
                          "steps": sorted(wanted)})
    return case


def _case_action(session: Session, case: Case, actor: Actor, event: str, expected_version: int | None,
                 payload: dict | None = None, **context) -> None:
    authorize(case_machine.PERMISSIONS, event, case, actor=actor)
    check_version(case, expected_version)
    before = case.state
    fire(case_machine.MACHINE, event, case, actor=actor, **context)
    case.touch(utcnow())
    record(session, case, actor, event, from_state=before, to_state=case.state, payload=payload)


def advance(session: Session, case: Case, definition: Definition) -> None:
    """Open every step whose needs are settled and, when all are settled, make the case ready.

    The parallel join happens here, in the transaction of the completion that settles the last
    step (not in transitions' ``on_final``: pytransitions issue #715 fires it too early in 0.9.3).
    """
    now = utcnow()
    by_key = {s.key: s for s in case.steps}
    for step in case.steps:
        if step.state is StepState.waiting and all(by_key[n].state in SETTLED_STATES for n in step.needs):
            fire(step_machine.MACHINE, "unblock", step, dependencies=[by_key[n] for n in step.needs])
            step.ready_at = now
            audit.record(session, case, SYSTEM, "unblock", step=step.key,
                         from_state=StepState.waiting, to_state=step.state)
    if case.state is CaseState.in_progress and all(s.state in SETTLED_STATES for s in case.steps):
        fire(case_machine.MACHINE, "finish", case, by_engine=True)
        case.ready_at = now
        audit.record(session, case, SYSTEM, "finish", from_state=CaseState.in_progress, to_state=case.state)


def accept_case(session: Session, case: Case, actor: Actor, *, missing_materials: list[str] | None = None,
                expected_version: int | None = None) -> Case:
    """受理: start the case; optional missing materials (容缺) are noted for the applicant to supply."""
    authorize(case_machine.PERMISSIONS, "accept", case, actor=actor)
    materials = [m.strip() for m in (missing_materials or []) if isinstance(m, str) and m.strip()]
    if len(materials) > 50 or any(len(m) > 200 for m in materials):
        raise Invalid({"missing_materials": ["at most 50 items of at most 200 characters"]})
    check_version(case, expected_version)
    ensure_can(case_machine.MACHINE, "accept", case)
    definition = store.current(session, case.definition_name)
    if definition.version != case.definition_version:
        # A newer process was published since submission: the case runs under the one it is accepted under.
        wanted = {s.key for s in case.steps if s.state is not StepState.skipped}
        wants = {k: k in wanted for k in definition.optional_steps}
        case.steps.clear()
        flush(session)
        _build_steps(case, definition, _wanted_steps(definition, wants))
        case.definition_version = definition.version
    _case_action(session, case, actor, "accept", expected_version,
                 payload={"missing_materials": materials, "definition": f"{definition.name} v{definition.version}"})
    case.accepted_at = utcnow()
    case.missing_materials = materials
    advance(session, case, definition)
    flush(session)  # a lost optimistic-locking race surfaces here, as Conflict
    timers.rearm(session, case)
    return case


def reject_case(session: Session, case: Case, actor: Actor, *, reason: str,
                expected_version: int | None = None) -> Case:
    """不予受理: refuse the application before acceptance, with a reason."""
    reason = require_text(reason, "reason")
    _case_action(session, case, actor, "reject", expected_version, payload={"reason": reason})
    case.closing_reason, case.closed_at = reason, utcnow()
    flush(session)
    return case


def suspend_case(session: Session, case: Case, actor: Actor, *, reason: str,
                 expected_version: int | None = None) -> Case:
    """Stop the clock while the case waits on the applicant (补正)."""
    reason = require_text(reason, "reason")
    _case_action(session, case, actor, "suspend", expected_version, payload={"reason": reason})
    case.suspensions.append(Suspension(started_at=utcnow(), reason=reason))
    flush(session)
    timers.rearm(session, case)
    return case


def _end_suspension(case: Case) -> None:
    for suspension in case.suspensions:
        if suspension.ended_at is None:
            suspension.ended_at = utcnow()


def resume_case(session: Session, case: Case, actor: Actor, *, expected_version: int | None = None) -> Case:
    """Restart the clock."""
    _case_action(session, case, actor, "resume", expected_version)
    _end_suspension(case)
    flush(session)
    timers.rearm(session, case)
    return case


def withdraw_case(session: Session, case: Case, actor: Actor, *, reason: str,
                  expected_version: int | None = None) -> Case:
    """The applicant withdrew the application."""
    reason = require_text(reason, "reason")
    _case_action(session, case, actor, "withdraw", expected_version, payload={"reason": reason})
    case.closing_reason, case.closed_at = reason, utcnow()
    _end_suspension(case)
    flush(session)
    timers.rearm(session, case)
    return case


def deliver_case(session: Session, case: Case, actor: Actor, *, method: str, tracking_no: str | None = None,
                 expected_version: int | None = None) -> Case:
    """一窗通取: hand everything over at the counter, or mail it with a tracking number."""
    authorize(case_machine.PERMISSIONS, "deliver", case, actor=actor)
    errors = {}
    if method not in DELIVERY_METHODS:
        errors["method"] = [f"must be one of {', '.join(DELIVERY_METHODS)}"]
    tracking_no = (tracking_no or "").strip() or None
    if method == "mail" and not tracking_no:
        errors["tracking_no"] = ["is required when mailed"]
    if tracking_no and len(tracking_no) > 64:
        errors["tracking_no"] = ["must be at most 64 characters"]
    if errors:
        raise Invalid(errors)
    delivery = {"method": method, "tracking_no": tracking_no if method == "mail" else None}
    _case_action(session, case, actor, "deliver", expected_version, payload=delivery)
    case.delivery = delivery
    case.delivered_at = case.closed_at = utcnow()
    flush(session)
    return case
