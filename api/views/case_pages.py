"""The case page and the actions staff take on a case and its steps, as plain HTML forms.

Every action is a POST with the CSRF token and the hidden ``version`` the page was drawn at, passed
to the engine as ``expected_version``: a double submit or a stale page gets "the case moved on"
(409/412) and changes nothing. The buttons shown follow the engine's permission rules, but only as a
courtesy: the operations decide, and a forged POST gets the engine's 403.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from pdf import render
from workflow import audit, errors as wf, operations as ops, queries, receipts
from workflow.actors import Actor
from workflow.applications import masked
from workflow.calendar import HALL_TZ
from workflow.calendar_days import calendar_for
from workflow.clock import utcnow
from workflow.definitions import Definition, store
from workflow.machines.step import StepState
from workflow.sla import measure
from workflow.models import Case
from workflow.operations.available import case_actions, step_actions
from workflow.timers import CASE, clocks, timing

from ..database import session
from ..errors import STATUS
from ..rest.documents import hall, pdf_response, track_url, verify_url
from . import messages, page_lang
from .staff import CASE_STATES, SLA_STATUSES

bp = Blueprint("case_pages", __name__, url_prefix="/cases")

STEP_STATES = {
    StepState.waiting: _l("Waiting for earlier steps"),
    StepState.ready: _l("Waiting to be claimed"),
    StepState.in_progress: _l("Claimed"),
    StepState.done: _l("Done"),
    StepState.skipped: _l("Not wanted"),
    StepState.refused: _l("Refused"),
}
ACTIONS = {
    "submit": _l("Submitted"), "accept": _l("Accept"), "reject": _l("Reject"), "suspend": _l("Suspend"),
    "resume": _l("Resume"), "withdraw": _l("Withdraw"), "deliver": _l("Deliver"), "claim": _l("Claim"),
    "release": _l("Release"), "complete": _l("Complete"), "refuse": _l("Refuse"), "reassign": _l("Reassign"),
    "unblock": _l("Opened"), "finish": _l("All steps finished"), "step_refused": _l("Case rejected by a step"),
    "sla_warning": _l("Time limit warning"), "sla_breach": _l("Time limit breached"),
    "rate": _l("Rated by the applicant"), "follow_up_closed": _l("Follow-up closed"),
}
DONE = {
    "accept": _l("The case was accepted; its clock has started."),
    "reject": _l("The application was rejected."),
    "suspend": _l("The case is suspended; its clock has stopped."),
    "resume": _l("The case was resumed; its clock runs again."),
    "withdraw": _l("The case was withdrawn."),
    "deliver": _l("The case was delivered."),
    "claim": _l("You claimed the step."),
    "release": _l("The step is back in the department's queue."),
    "complete": _l("The step is complete."),
    "refuse": _l("The step was refused; the case is rejected."),
    "reassign": _l("The step was handed to another clerk."),
}
# Output names as the forms label them; an output a newer definition adds shows its own name.
OUTPUT_LABELS = {
    "uscc": _l("Unified social credit code"), "licence_no": _l("Licence number"),
    "filing_no": _l("Filing number"), "seals": _l("Seals made"), "taxpayer_type": _l("Taxpayer type"),
    "ukey_issued": _l("Tax UKey issued"), "invoice_kind": _l("Invoice kind"), "quantity": _l("Quantity"),
    "bank_name": _l("Bank"), "account_no": _l("Account number"),
}
CHOICE_LABELS = {
    "small_scale": _l("Small-scale taxpayer"), "general": _l("General taxpayer"),
    "digital_ordinary": _l("Digital ordinary invoice"), "digital_special": _l("Digital special invoice"),
    "paper_ordinary": _l("Paper ordinary invoice"), "paper_special": _l("Paper special invoice"),
    "company": _l("Company seal"), "finance": _l("Finance seal"), "invoice": _l("Invoice seal"),
    "contract": _l("Contract seal"), "legal_representative": _l("Legal representative's seal"),
    "customs": _l("Customs seal"),
}
# The engine's field messages that a clerk meets most, in the page's language; others as they are.
FIELD_MESSAGES = {
    "is required": _l("Required."),
    "Missing data for required field.": _l("Required."),
    "Not a valid integer.": _l("Enter a whole number."),
    "is required when mailed": _l("Enter the tracking number of the mailing."),
    "has the wrong format": _l("The format is wrong."),
    "already holds the step": _l("This clerk already holds the step."),
    "must be an active clerk of the step's department": _l("Choose an active clerk of this department."),
}
MOVED_ON = _l("This case has moved on since the page was drawn: someone (perhaps you, with a double "
              "click) acted on it first. Nothing was changed now; check its state below before acting again.")
INVALID = _l("Nothing was saved: correct the fields marked below.")
PROMISE_MINUTES = 210


# ---------------------------------------------------------------- the completion form

@dataclass(frozen=True)
class OutputField:
    """One input of a step's completion form, generated from the definition's ``outputs``."""

    name: str
    type: str
    label: object
    choices: tuple[str, ...]
    spec: dict

    @property
    def input_id(self) -> str:
        return f"out-{self.name}"


def output_fields(definition: Definition, key: str) -> list[OutputField]:
    return [OutputField(name, spec["type"], OUTPUT_LABELS.get(name, name), tuple(spec.get("choices") or ()), spec)
            for name, spec in definition.step(key).outputs.items()]


def outputs_from_form(fields: list[OutputField], form: MultiDict) -> dict:
    """The form's values in the types the output schema expects; a blank field is left out (required)."""
    values = {}
    for field in fields:
        if field.type == "bool":
            values[field.name] = form.get(field.name) == "on"
        elif field.type == "list":
            values[field.name] = form.getlist(field.name)
        else:
            text = (form.get(field.name) or "").strip()
            if not text:
                continue
            if field.type == "int":
                try:
                    values[field.name] = int(text)
                except ValueError:
                    values[field.name] = text  # the schema names it: not a valid integer
            else:
                values[field.name] = text.upper() if field.type == "uscc" else text
    return values


# ---------------------------------------------------------------- the timeline

@dataclass(frozen=True)
class Bar:
    key: str
    title: str
    state: StepState
    start: float  # working minutes since acceptance
    end: float
    running: bool

    @property
    def minutes(self) -> float:
        return self.end - self.start


def timeline(case: Case, definition: Definition, lang: str, now: datetime) -> dict | None:
    """One bar per started step on an axis of working minutes since acceptance, and the scale."""
    if case.accepted_at is None:
        return None
    calendar = calendar_for(session())
    origin = case.accepted_at
    case_clock = clocks(session(), case)[CASE]

    def at(moment: datetime) -> float:
        # On the case's clock: working minutes, with the time it waited on the applicant cut out.
        return round(measure(calendar, replace(case_clock, end=moment), moment).used_minutes, 1)

    bars = []
    for step in case.steps:
        if step.ready_at is None:
            continue
        end = step.done_at or case.closed_at
        bars.append(Bar(step.key, definition.step(step.key).title[lang], step.state, at(step.ready_at),
                        at(end or now), end is None))
    furthest = max([PROMISE_MINUTES] + [bar.end for bar in bars])
    tick = 30 if furthest <= 420 else 60 if furthest <= 900 else 240
    axis = int(-(-furthest * 1.05 // tick) * tick)
    # Drawing units: a 480-wide picture scales with the page; labels sit above their bars, so the
    # bars get the whole width and stay legible at 390 px.
    left, width, top, row = 8, 464, 30, 40
    scale = width / axis
    return {"bars": bars, "axis": axis, "ticks": list(range(0, axis + 1, tick)), "left": left, "width": width,
            "top": top, "row": row, "scale": scale, "height": top + row * len(bars) + 44,
            "promise": PROMISE_MINUTES}


# ---------------------------------------------------------------- views

def _actor() -> Actor:
    return current_user.as_actor()


def _render_case(case_no: str, *, status: int = 200, alert=None, failed: str | None = None,
                 errors: dict | None = None, typed: MultiDict | None = None):
    db = session()
    case = ops.get_case(db, case_no)
    definition = store.get(db, case.definition_name, case.definition_version)
    lang = page_lang()
    now = utcnow()
    actor = _actor()
    measured = timing(db, case, now)
    departments = {key: names[lang] for key, names in definition.departments.items()}
    steps = [{"step": step, "title": definition.step(step.key).title[lang], "sla": measured.steps.get(step.key),
              "actions": step_actions(case, step, actor), "fields": output_fields(definition, step.key)}
             for step in case.steps]
    for item in steps:
        if "reassign" in item["actions"]:
            item["staff"] = [user for user in queries.department_staff(db, item["step"].department)
                             if user.id != item["step"].assignee_id]
    return render_template(
        "cases/case.html", case=case, application=masked(case.application), timing=measured, steps=steps,
        departments=departments, case_actions=case_actions(case, actor), events=queries.case_events(db, case),
        step_titles={s.key: definition.step(s.key).title[lang] for s in case.steps}, chain=_chain(case),
        chart=timeline(case, definition, lang, now), hall_tz=HALL_TZ, case_states=CASE_STATES, step_states=STEP_STATES,
        sla_statuses=SLA_STATUSES, actions=ACTIONS, choice_labels=CHOICE_LABELS, alert=alert, failed=failed,
        errors=errors or {}, typed=typed or MultiDict(), slip=case.state in receipts.SLIP_STATES,
        receipt=case.state in receipts.RECEIPT_STATES, live_every=current_app.config["LIVE_REFRESH_SECONDS"]), status


# Why a chain is broken, in the page's language (``workflow.audit.verify`` says it in English).
CHAIN_REASONS = {
    "expected event": _l("An event is missing or out of order."),
    "does not link": _l("It does not link to the event before it."),
    "content does not match": _l("Its content was changed after it was recorded."),
    "the chain ends": _l("The last events of the chain are missing."),
}


def _chain(case: Case) -> dict:
    """Whether the case's hash chain verifies; if not, the first broken event and why."""
    broken = audit.verify(session(), case_id=case.id)
    if not broken:
        return {"verified": True}
    link = broken[0]
    reason = next((text for start, text in CHAIN_REASONS.items() if link.reason.startswith(start)), link.reason)
    return {"verified": False, "seq": link.seq, "reason": reason, "detail": link.reason}


@bp.get("/<case_no>")
@login_required
def show(case_no):
    """The case: applicant, state and time limits, steps, the timeline and the audit trail."""
    return _render_case(case_no)


def _version() -> int:
    try:
        return int(request.form.get("version", ""))
    except ValueError:
        raise wf.PreconditionFailed("the form did not say which version of the case it showed") from None


def _act(case_no: str, action: str, run, form_key: str):
    """Run one engine operation for the signed-in user; PRG on success, the page again on a refusal."""
    try:
        run(ops.get_case(session(), case_no, lock=True), _actor(), _version())
    except (wf.IllegalAction, wf.Conflict, wf.PreconditionFailed) as error:
        session().rollback()
        return _render_case(case_no, status=STATUS[type(error)], alert=MOVED_ON)
    except wf.Invalid as error:
        session().rollback()
        return _render_case(case_no, status=422, alert=INVALID, failed=form_key,
                            errors=messages.said(error.errors, FIELD_MESSAGES), typed=request.form)
    flash(DONE[action], "success")
    return redirect(url_for(".show", case_no=case_no), 303)


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


@bp.post("/<case_no>/<any(accept, reject, suspend, resume, withdraw, deliver):action>")
@login_required
def case_action(case_no, action):
    """A window (or supervisor) action on the whole case."""
    form, db = request.form, session()
    run = {
        "accept": lambda c, a, v: ops.accept_case(db, c, a, missing_materials=_lines(form.get("missing_materials")),
                                                  expected_version=v),
        "reject": lambda c, a, v: ops.reject_case(db, c, a, reason=form.get("reason"), expected_version=v),
        "suspend": lambda c, a, v: ops.suspend_case(db, c, a, reason=form.get("reason"), expected_version=v),
        "resume": lambda c, a, v: ops.resume_case(db, c, a, expected_version=v),
        "withdraw": lambda c, a, v: ops.withdraw_case(db, c, a, reason=form.get("reason"), expected_version=v),
        "deliver": lambda c, a, v: ops.deliver_case(db, c, a, method=form.get("method", ""),
                                                    tracking_no=form.get("tracking_no"), expected_version=v),
    }[action]
    return _act(case_no, action, run, action)


@bp.post("/<case_no>/steps/<step>/<any(claim, release, complete, refuse, reassign):action>")
@login_required
def step_action(case_no, step, action):
    """An agency's action on one step; completion converts the generated form to typed outputs."""
    form, db = request.form, session()

    def complete(case, actor, version):
        definition = store.get(db, case.definition_name, case.definition_version)
        try:
            fields = output_fields(definition, step)
        except KeyError:
            raise wf.NotFound(f"case {case_no} has no step {step}") from None
        ops.complete_step(db, case, step, actor, outputs_from_form(fields, form), expected_version=version)

    run = {
        "claim": lambda c, a, v: ops.claim_step(db, c, step, a, expected_version=v),
        "release": lambda c, a, v: ops.release_step(db, c, step, a, expected_version=v),
        "refuse": lambda c, a, v: ops.refuse_step(db, c, step, a, reason=form.get("reason"), expected_version=v),
        "reassign": lambda c, a, v: ops.reassign_step(db, c, step, a, assignee=form.get("assignee", ""),
                                                      expected_version=v),
        "complete": complete,
    }[action]
    return _act(case_no, action, run, f"{action}:{step}")


@bp.get("/<case_no>/slip.pdf")
@login_required
def slip(case_no):
    """The acceptance slip, as ``GET /api/v1/cases/<no>/slip.pdf`` serves it, for a signed-in page."""
    case = ops.get_case(session(), case_no)
    data = receipts.slip_data(session(), case, hall=hall())
    return pdf_response(render.render_slip(data, track_url(case)), case.case_no, "slip")


@bp.get("/<case_no>/receipt.pdf")
@login_required
def receipt(case_no):
    """The combined receipt of a ready or delivered case."""
    case = ops.get_case(session(), case_no)
    data = receipts.receipt_data(session(), case, hall=hall())
    return pdf_response(render.render_receipt(data, verify_url(case.case_no)), case.case_no, "receipt")
