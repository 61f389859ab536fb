"""The window clerk's new-application form (issue 5): type an application in, get a case.

The engine (``workflow.operations.cases.submit_case``) checks every rule; this module only turns
the form into the application dict, the engine's English messages into the page's language beside
the fields they name, and a double submit of one form into one case.

Form controls are named by the application's own dotted paths (``company.name``,
``shareholders.2.id_number``), so an engine error lands beside its field without a lookup table;
only the shareholder rows are renumbered, because empty rows are left out of the application.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from flask import Blueprint, flash, redirect, render_template, request, session as cookie
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from workflow import operations as ops
from workflow.actors import Role
from workflow.definitions import store
from workflow.errors import Forbidden, Invalid
from workflow.models import IdempotentResponse

from ..database import session
from . import messages, page_lang
from .staff import roles

bp = Blueprint("window", __name__)

SHAREHOLDER_ROWS = 5
SHAREHOLDER_FIELDS = ("name", "id_number", "contribution")
COMPANY_FIELDS = ("name", "kind", "registered_capital", "address", "business_scope")
PERSON_FIELDS = ("name", "id_number", "phone")
KIND_LABELS = {  # in the order of workflow.applications.COMPANY_KINDS
    "llc": _l("Limited liability company"),
    "sole_proprietorship": _l("Sole proprietorship"),
    "partnership": _l("Partnership"),
    "branch": _l("Branch"),
}
SECTIONS = {"company": _l("Company details"), "legal_representative": _l("Legal representative"),
            "shareholders": _l("Shareholders"), "wants": _l("Services to open at the same time"),
            "channel": _l("How the application came in")}
LABELS = {
    "company.name": _l("Company name"),
    "company.kind": _l("Type of company"),
    "company.registered_capital": _l("Registered capital (yuan)"),
    "company.address": _l("Registered address"),
    "company.business_scope": _l("Business scope"),
    "legal_representative.name": _l("Full name"),
    "legal_representative.id_number": _l("ID number"),
    "legal_representative.phone": _l("Mobile number"),
    "name": _l("Full name"),
    "id_number": _l("ID number"),
    "contribution": _l("Contribution (yuan)"),
}
CHANNEL_LABELS = {"window": _l("At the window"), "mail": _l("By post")}

# The forms this browser session was given, form_id -> case_no once submitted (None before): a
# repeated POST of one form goes to the case it made. The newest few are kept (the cookie is small).
FORMS_KEY = "new_application_forms"
FORMS_KEPT = 10
# The same form_id is also reserved in the database (the Idempotency-Key table), inside the
# request's transaction: two POSTs racing from one double click cannot both create a case.
RESERVATION_PREFIX = "new-application:"

# The engine's messages (workflow.identifiers, workflow.applications, marshmallow), as the page says them.
MESSAGES = {
    "Missing data for required field.": _l("Required."),
    "Field may not be null.": _l("Required."),
    "Not a valid string.": _l("Enter text."),
    "Unknown field.": _l("This field is not expected."),
    "must be 18 characters": _l("An ID number has 18 characters."),
    "first 17 characters must be digits": _l("The first 17 characters of an ID number are digits."),
    "last character must be a digit or X": _l("The last character of an ID number is a digit or X."),
    "check digit does not match": _l("The check digit does not match: check the ID number for a typo."),
    "must be 11 digits": _l("A mobile number has 11 digits."),
    "must start with 13, 14, 15, 16, 17, 18 or 19": _l("A mobile number starts with 13 to 19."),
    "must be a decimal number such as 1000000.00": _l("Enter an amount in yuan, such as 1000000.00."),
    "must not be negative": _l("The amount must not be negative."),
    "must have at most two decimal places": _l("Use at most two decimal places."),
    "must have at most 15 digits before the decimal point": _l("The amount is too large."),
}
PATTERNS = (
    (re.compile(r"Length must be between (?P<min>\d+) and (?P<max>\d+)\."),
     _l("Enter %(min)s to %(max)s characters.")),
    (re.compile(r"contributions add up to (?P<total>[\d.]+), not the registered capital (?P<capital>[\d.]+)"),
     _l("The contributions add up to %(total)s yuan, not the registered capital of %(capital)s yuan.")),
    (re.compile(r"birth date (?P<date>\d+) is not a real date"), _l("The birth date %(date)s is not a real date.")),
    (re.compile(r"birth date (?P<date>\d+) is before 1900-01-01"), _l("The birth date %(date)s is before 1900.")),
    (re.compile(r"birth date (?P<date>\d+) is in the future"), _l("The birth date %(date)s is in the future.")),
    (re.compile(r"Must be one of: .*"), _l("Choose one of the options.")),
    (re.compile(r"unknown optional step; .*"), _l("This service is not offered.")),
)
# An empty shareholder list breaks Length(1, 50) on the list itself: say what that means here.
NO_SHAREHOLDERS = _l("Enter at least one shareholder.")


def say(message: str, path: str = "") -> str:
    """An engine message in the page's language (an unknown one in a general sentence, kept verbatim)."""
    if path == "shareholders" and message.startswith("Length must be"):
        return str(NO_SHAREHOLDERS)
    return messages.say(message, MESSAGES, PATTERNS,
                        unknown=lambda detail: _("This value is not accepted: %(detail)s", detail=detail))


@dataclass
class Form:
    """What the page shows: the typed values and the messages, both keyed by control name."""

    form_id: str
    values: dict[str, str]
    wants: dict[str, bool]
    errors: dict[str, list[str]]  # control name, "shareholders" or "_schema" -> messages

    def value(self, name: str) -> str:
        return self.values.get(name, "")


def control_id(name: str) -> str:
    """The HTML id of the control named ``name``: ``company.registered_capital`` → ``f-company-registered-capital``."""
    return "f-" + name.replace(".", "-").replace("_", "-")


def _optional_steps() -> list[tuple[str, str]]:
    """The services an applicant may choose (the process definition's optional steps), with titles."""
    definition = store.current(session())
    return [(key, definition.step(key).title[page_lang()]) for key in definition.optional_steps]


def _new_form_id() -> str:
    form_id = secrets.token_urlsafe(16)
    forms = dict(cookie.get(FORMS_KEY) or {})
    forms[form_id] = None
    cookie[FORMS_KEY] = dict(list(forms.items())[-FORMS_KEPT:])
    return form_id


def _where(name: str) -> str:
    """A control's name as the error summary says it: "Shareholder 2 · ID number"."""
    section, _dot, rest = name.partition(".")
    if section == "shareholders" and rest:
        row, _dot, field = rest.partition(".")
        return f"{_('Shareholder %(num)d', num=int(row) + 1)} · {LABELS[field]}"
    if name in LABELS:
        return f"{SECTIONS[section]} · {LABELS[name]}"
    return str(SECTIONS[section])


def _render(form: Form, status: int = 200):
    steps = _optional_steps()
    # (link target, what it is, messages); the whole-form messages have no target.
    summary = [("" if name == "_schema" else control_id(name), "" if name == "_schema" else _where(name), messages)
               for name, messages in form.errors.items()]
    return render_template("window/new_application.html", form=form, kinds=KIND_LABELS, channels=CHANNEL_LABELS,
                           steps=steps, rows=range(SHAREHOLDER_ROWS), control_id=control_id, summary=summary,
                           labels=LABELS, sections=SECTIONS), status


@bp.get("/applications/new")
@roles(Role.clerk, Role.supervisor)
def new_application():
    """The empty form, with every optional service ticked."""
    _window_only()
    form = Form(_new_form_id(), {"company.kind": "llc", "channel": "window"},
                {key: True for key, _title in _optional_steps()}, {})
    return _render(form)


@bp.post("/applications/new")
@roles(Role.clerk, Role.supervisor)
def create_application():
    """Submit the typed application; a repeat of the same form goes to the case it already made."""
    _window_only()
    form_id = request.form.get("form_id", "")
    forms = dict(cookie.get(FORMS_KEY) or {})
    if forms.get(form_id):
        return _already_made(forms[form_id])
    values = {name: value for name, value in request.form.items() if name not in ("csrf_token", "form_id")}
    wants = {key: f"wants.{key}" in request.form for key, _title in _optional_steps()}
    if form_id not in forms:
        # Not a form this session was given (or one long forgotten): show it again, nothing stored.
        form = Form(_new_form_id(), values, wants, {"_schema": [_("This form has expired. Check the details and submit it again.")]})
        return _render(form, 409)
    made = _reserve(form_id)
    if made is not None:
        return _already_made(made)
    application, rows = _application(values, wants)
    try:
        case = ops.submit_case(session(), current_user.as_actor(), application)
    except Invalid as invalid:
        return _render(Form(form_id, values, wants, _place(invalid.errors, rows)), 422)
    forms[form_id] = case.case_no
    cookie[FORMS_KEY] = forms
    _remember(form_id, case.case_no)
    flash(_("Application received as case %(case_no)s.", case_no=case.case_no), "success")
    return redirect(case_url(case.case_no), 303)


def case_url(case_no: str) -> str:
    """The case page (``api/views/case_pages.py``), by its path: the contract's URL, whoever serves it."""
    return f"/cases/{case_no}"


def _window_only() -> None:
    if not current_user.as_actor().is_window:
        raise Forbidden("only service window staff take in applications")


def _already_made(case_no: str):
    flash(_("This form was already submitted as case %(case_no)s; no second case was made.", case_no=case_no),
          "info")
    return redirect(case_url(case_no), 303)


def _reserve(form_id: str) -> str | None:
    """Reserve the form in the database; the case number if another request already used it."""
    db, user_id = session(), current_user.user.id
    key = RESERVATION_PREFIX + form_id
    db.add(IdempotentResponse(user_id=user_id, key=key, method="POST", path=request.path, status=0,
                              headers={}, body=""))
    try:
        db.flush()  # a second POST of the same form waits here until the first commits or rolls back
    except IntegrityError:
        db.rollback()
        record = db.scalar(select(IdempotentResponse).where(IdempotentResponse.user_id == user_id,
                                                            IdempotentResponse.key == key))
        return (record.body or None) if record is not None else None
    return None


def _remember(form_id: str, case_no: str) -> None:
    record = session().scalar(select(IdempotentResponse).where(
        IdempotentResponse.user_id == current_user.user.id, IdempotentResponse.key == RESERVATION_PREFIX + form_id))
    record.status, record.body = 303, case_no


def _application(values: dict[str, str], wants: dict[str, bool]) -> tuple[dict, list[int]]:
    """The application dict, and for each shareholder in it the form row it came from.

    Blank controls are left out, so the engine says "required" rather than "too short".
    """
    def part(prefix: str, names) -> dict:
        return {name: values[f"{prefix}.{name}"].strip() for name in names
                if values.get(f"{prefix}.{name}", "").strip()}

    rows = [i for i in range(SHAREHOLDER_ROWS) if part(f"shareholders.{i}", SHAREHOLDER_FIELDS)]
    application = {
        "company": part("company", COMPANY_FIELDS),
        "legal_representative": part("legal_representative", PERSON_FIELDS),
        "shareholders": [part(f"shareholders.{i}", SHAREHOLDER_FIELDS) for i in rows],
        "wants": wants,
        "channel": values.get("channel") or "window",
    }
    return application, rows


SHAREHOLDER_PATH = re.compile(r"shareholders\.(\d+)(\..+)?")


def _place(errors: dict[str, list[str]], rows: list[int]) -> dict[str, list[str]]:
    """The engine's errors keyed by control name, in the page's language.

    ``shareholders.1.id_number`` is the second *non-empty* row; errors on no control of the form
    go to the shareholder block (``shareholders``) or to the top (``_schema``).
    """
    controls = {f"company.{n}" for n in COMPANY_FIELDS} | {f"legal_representative.{n}" for n in PERSON_FIELDS} \
        | {f"shareholders.{i}.{n}" for i in range(SHAREHOLDER_ROWS) for n in SHAREHOLDER_FIELDS} | {"channel"}
    placed: dict[str, list[str]] = {}
    for path, found in errors.items():
        target = path
        match = SHAREHOLDER_PATH.fullmatch(path)
        if match and int(match.group(1)) < len(rows):
            target = f"shareholders.{rows[int(match.group(1))]}{match.group(2) or ''}"
        if target.startswith("wants."):
            target = "wants"
        elif target not in controls and target != "shareholders":
            target = "_schema"
        placed.setdefault(target, []).extend(say(str(m), path) for m in found)
    order = ["_schema"] + [f"company.{n}" for n in COMPANY_FIELDS] + [f"legal_representative.{n}" for n in PERSON_FIELDS] \
        + ["shareholders"] + [f"shareholders.{i}.{n}" for i in range(SHAREHOLDER_ROWS) for n in SHAREHOLDER_FIELDS] \
        + ["wants", "channel"]
    return {name: placed[name] for name in order if name in placed}
