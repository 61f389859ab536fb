"""The documents a case yields, as plain data: the combined receipt, the acceptance slip, and the
signed token that lets anyone check a printed receipt.

Everything returned is JSON-native (strings, numbers, booleans, lists, dicts; instants as ISO 8601
in the hall's time zone), so ``pdf.render`` never sees an ORM object and the same dict is embedded
in the PDF as its machine-readable attachment. Personal ID and phone numbers are masked.

A receipt's content depends only on the finished case (its own timestamps, never "now", and not
whether it was handed over yet): downloading it twice, or before and after delivery, gives the
same document.
"""
from __future__ import annotations

from datetime import datetime

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import timers
from .applications import masked
from .calendar import HALL_TZ
from .definitions import store
from .errors import IllegalAction
from .machines.case import CaseState
from .machines.step import StepState
from .models import Case, Event, User

RECEIPT_STATES = frozenset({CaseState.ready, CaseState.delivered})
SLIP_STATES = frozenset({CaseState.in_progress, CaseState.suspended, CaseState.ready, CaseState.delivered})
TOKEN_SALT = "receipt"
DEFAULT_HALL = "广州市白云区政务服务中心"


def hall_time(moment: datetime | None) -> str | None:
    """An instant as ISO 8601 in the hall's time zone, to the second (``2026-11-23T10:05:00+08:00``)."""
    return moment.astimezone(HALL_TZ).isoformat(timespec="seconds") if moment else None


def _sla(sla) -> dict | None:
    if sla is None:
        return None
    return {"target_minutes": sla.target_minutes, "used_minutes": sla.used_minutes,
            "deadline": hall_time(sla.deadline), "status": sla.status, "paused": sla.paused,
            "on_time": sla.status != "breached"}


def _company(application: dict) -> dict:
    company = application["company"]
    return {"name": company["name"], "kind": company["kind"],
            "registered_capital": company["registered_capital"], "address": company["address"]}


def _person(person: dict) -> dict:
    return {"name": person["name"], "id_number": person["id_number"]}


def _base(session: Session, case: Case, hall: str, timing) -> tuple[dict, object]:
    definition = store.get(session, case.definition_name, case.definition_version)
    application = masked(case.application)
    data = {
        "hall": hall,
        "case_no": case.case_no,
        "definition": {"name": case.definition_name, "version": case.definition_version,
                       "title": dict(definition.title)},
        "company": _company(application),
        "legal_representative": _person(application["legal_representative"]),
        "channel": case.channel,
        "submitted_at": hall_time(case.created_at),
        "accepted_at": hall_time(case.accepted_at),
        "sla": _sla(timing.case),
        "calendar_confirmed": timing.calendar_confirmed,
    }
    return data, definition


def _require(case: Case, states: frozenset, document: str) -> None:
    if case.state not in states:
        allowed = ", ".join(s.value for s in CaseState if s in states)
        raise IllegalAction(f"the {document} exists only for a case that is {allowed}; "
                            f"{case.case_no} is {case.state.value}", state=case.state.value)


def licence_outputs(definition, case: Case) -> dict:
    """The outputs of the step that issued the business licence: the one whose outputs hold a USCC.

    Found through the process definition, so a hall that renames or restructures its steps keeps
    the licence on its receipts.
    """
    for step in case.steps:
        if any(spec["type"] == "uscc" for spec in definition.step(step.key).outputs.values()):
            return step.outputs or {}
    return {}


def receipt_data(session: Session, case: Case, *, hall: str = DEFAULT_HALL) -> dict:
    """The combined receipt of a finished case (ready or delivered), as plain data."""
    _require(case, RECEIPT_STATES, "receipt")
    # Measured at the case's own completion: the clock stopped there, and no "now" gets in.
    timing = timers.timing(session, case, now=case.ready_at)
    data, definition = _base(session, case, hall, timing)
    registration = licence_outputs(definition, case)
    data.update(
        document="receipt",
        completed_at=hall_time(case.ready_at),
        uscc=registration.get("uscc"),
        licence_no=registration.get("licence_no"),
        steps=[
            {
                "step": step.key,
                "title": dict(definition.step(step.key).title),
                "department": step.department,
                "department_name": dict(definition.departments[step.department]),
                "state": step.state.value,
                "clerk": step.assignee.display_name if step.assignee and step.state is StepState.done else None,
                "started_at": hall_time(step.ready_at),
                "done_at": hall_time(step.done_at),
                "outputs": dict(step.outputs or {}),
                "sla": _sla(timing.steps.get(step.key)),
            }
            for step in case.steps
        ],
    )
    return data


def slip_data(session: Session, case: Case, *, hall: str = DEFAULT_HALL) -> dict:
    """The acceptance slip (受理通知书) of an accepted case, as plain data."""
    _require(case, SLIP_STATES, "acceptance slip")
    timing = timers.timing(session, case)
    data, definition = _base(session, case, hall, timing)
    application = masked(case.application)
    accepted_by = session.scalar(
        select(func.coalesce(User.display_name, Event.actor)).select_from(Event)
        .outerjoin(User, User.id == Event.actor_id)
        .where(Event.case_id == case.id, Event.action == "accept").order_by(Event.seq)
    )
    data.update(
        document="slip",
        state=case.state.value,
        tracking_code=case.tracking_code,
        accepted_by=accepted_by,
        shareholders=[{"name": s["name"], "id_number": s["id_number"], "contribution": s["contribution"]}
                      for s in application["shareholders"]],
        requested_steps=[
            {"step": step.key, "title": dict(definition.step(step.key).title),
             "department": step.department, "department_name": dict(definition.departments[step.department])}
            for step in case.steps if step.state is not StepState.skipped
        ],
        missing_materials=list(case.missing_materials or []),
    )
    return data


def _serializer(secret: str | bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=TOKEN_SALT)


def sign_case_no(secret: str | bytes, case_no: str) -> str:
    """The token printed on a receipt: the case number, signed with the app's secret key."""
    return _serializer(secret).dumps(case_no)


def read_token(secret: str | bytes, token: str) -> str | None:
    """The case number inside a genuine token; None for a forged, changed or garbled one."""
    try:
        case_no = _serializer(secret).loads(token)
    except BadData:
        return None
    return case_no if isinstance(case_no, str) else None


def verification(session: Session, secret: str | bytes, token: str) -> dict | None:
    """What a public check of a receipt shows, or None when the token or its case is not valid.

    A genuine token names a case that had a receipt; only a case that is ready or delivered has one.
    """
    case_no = read_token(secret, token)
    if case_no is None:
        return None
    case = session.scalar(select(Case).where(Case.case_no == case_no))
    if case is None or case.state not in RECEIPT_STATES:
        return None
    return {"valid": True, "case_no": case.case_no, "company_name": case.company_name,
            "uscc": licence_outputs(store.get(session, case.definition_name, case.definition_version),
                                    case).get("uscc"),
            "completed_at": hall_time(case.ready_at)}
