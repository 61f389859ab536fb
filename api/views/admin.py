"""The administrators' pages under ``/admin``: users and their API tokens, the hall's calendar, and
the process definitions.

Every change goes through the engine (``workflow.accounts``, ``workflow.operations.calendar``,
``workflow.definitions.store``), which checks it and logs it; this module turns forms into its
arguments and its English refusals into the page's language beside the fields they name. Changes
answer with a redirect (post/redirect/get), refusals with the page again and what was typed, except
a password, which is never sent back.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from workflow import accounts, calendar_days
from workflow.actors import Role
from workflow.calendar import HALL_TZ
from workflow.clock import utcnow
from workflow.definitions import DEFAULT_NAME, Definition, store
from workflow.errors import DefinitionError, IllegalAction, Invalid
from workflow.operations.calendar import import_calendar_csv, set_calendar_days

from ..database import session
from . import messages, page_lang
from .staff import roles

bp = Blueprint("admin", __name__, url_prefix="/admin")

ROLES = {Role.clerk: _l("Clerk"), Role.supervisor: _l("Supervisor"), Role.admin: _l("Administrator")}
LOG_ACTIONS = {
    "user_created": _l("Account created"), "user_disabled": _l("Account disabled"),
    "user_enabled": _l("Account enabled"), "password_reset": _l("Password reset"),
    "token_issued": _l("API token issued"), "token_revoked": _l("API token revoked"),
}
DAY_KINDS = {
    calendar_days.WORKING: _l("Working day"), calendar_days.REST: _l("Weekend"),
    calendar_days.HOLIDAY: _l("Holiday"), calendar_days.WORKDAY: _l("Adjusted working day"),
    calendar_days.UNCONFIRMED: _l("Not confirmed"),
}
# A short mark in each day's cell, so that no kind is told by its colour alone.
DAY_MARKS = {calendar_days.HOLIDAY: _l("off"), calendar_days.WORKDAY: _l("work"), calendar_days.UNCONFIRMED: "?"}
ENTRY_KINDS = {"holiday": _l("Holiday (no work)"), "workday": _l("Working day (e.g. an adjusted weekend)")}
WEEKDAYS = (_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun"))
MONTHS = (_l("January"), _l("February"), _l("March"), _l("April"), _l("May"), _l("June"), _l("July"),
          _l("August"), _l("September"), _l("October"), _l("November"), _l("December"))

# The engine's messages, as the pages say them; an unknown one is shown as it is.
MESSAGES = {
    "must be 1 to 64 characters": _l("Enter 1 to 64 characters."),
    "must be at most 64 characters": _l("Enter at most 64 characters."),
    "must be at least 8 characters": _l("A password needs at least 8 characters."),
    "clerks and supervisors need a department": _l("Clerks and supervisors need a department."),
    "name is longer than 64 characters": _l("The name is longer than 64 characters."),
    "has more than three fields": _l("The line has more than three fields (date, kind, name)."),
}
PATTERNS = (
    (re.compile(r"user (?P<name>.+) already exists"), _l("The username %(name)s is already taken.")),
    (re.compile(r"unknown department .*"), _l("Choose a department from the list.")),
    (re.compile(r"unknown role .*"), _l("Choose a role from the list.")),
    (re.compile(r"date '' is not YYYY-MM-DD"), _l("Enter the date, written YYYY-MM-DD.")),
    (re.compile(r"date '(?P<value>.*)' is not YYYY-MM-DD"), _l("“%(value)s” is not a date written YYYY-MM-DD.")),
    (re.compile(r"kind '(?P<value>.*)' is not holiday or workday"),
     _l("The kind “%(value)s” is neither holiday nor workday.")),
)
PASSWORDS_DIFFER = _l("The two passwords are not the same.")
NOTHING_SAVED = _l("Nothing was saved: correct the fields marked below.")


def say(message: str) -> str:
    """An engine message in the page's language (unknown ones as they are)."""
    return messages.say(message, MESSAGES, PATTERNS)


def _said(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    return messages.said(errors, MESSAGES, PATTERNS)


def _today() -> date:
    return utcnow().astimezone(HALL_TZ).date()


def _render(template: str, status: int = 200, **context):
    context.setdefault("errors", {})
    context.setdefault("typed", MultiDict())
    context.setdefault("failed", None)  # which form the errors belong to, on a page with several
    return render_template(template, hall_tz=HALL_TZ, roles=ROLES, **context), status


def _departments() -> dict[str, str]:
    """The departments of the current process definition, titled in the page's language."""
    lang = page_lang()
    return {key: names[lang] for key, names in store.current(session()).departments.items()}


# ---------------------------------------------------------------- the index

@dataclass(frozen=True)
class CalendarHorizon:
    """How far ahead the hall's calendar is confirmed, and whether that is too short."""

    days: int
    until: date | None  # the last confirmed day, None when today is not confirmed
    gap: date  # the first day without confirmed data
    short: bool


def calendar_horizon() -> CalendarHorizon:
    today = _today()
    days = calendar_days.confirmed_days_ahead(session(), today)
    return CalendarHorizon(days, today + timedelta(days=days - 1) if days else None, today + timedelta(days=days),
                           days < calendar_days.CONFIRMED_DAYS_WANTED)


@bp.get("")
@roles(Role.admin)
def index():
    """The four parts of administration, and a warning when the calendar runs out soon."""
    users = accounts.list_users(session())
    return _render("admin/index.html", horizon=calendar_horizon(), wanted=calendar_days.CONFIRMED_DAYS_WANTED,
                   users=len(users), disabled=sum(not u.active for u in users), current=store.current(session()))


# ---------------------------------------------------------------- users

USER_FIELDS = ("username", "display_name", "role", "department")


def _users_page(status: int = 200, **context):
    departments = _departments()
    return _render("admin/users.html", status, users=accounts.list_users(session()), departments=departments,
                   roles_options={role.value: label for role, label in ROLES.items()},
                   department_options={"": _("None (administrators)"), **departments}, now=utcnow(), **context)


@bp.get("/users")
@roles(Role.admin)
def users():
    """Every account, and the form to create one."""
    return _users_page()


@bp.post("/users")
@roles(Role.admin)
def create_user():
    """Create an account; on to its page (tokens, password)."""
    form = request.form
    values = {name: form.get(name, "").strip() for name in USER_FIELDS}
    try:
        user = accounts.create_user(session(), values["username"], form.get("password", ""), values["role"],
                                    values["department"] or None, values["display_name"] or None,
                                    by=current_user.as_actor())
    except Invalid as error:
        session().rollback()
        return _users_page(422, errors=_said(error.errors), typed=MultiDict(values), alert=NOTHING_SAVED)
    flash(_("The account %(name)s was created. It can sign in now.", name=user.username), "success")
    return redirect(url_for(".user", username=user.username), 303)


def _user_page(username: str, status: int = 200, **context):
    db = session()
    user = accounts.get_user(db, username)
    return _render("admin/user.html", status, user=user, tokens=accounts.tokens_of(db, username),
                   log=accounts.account_log(db, username), log_actions=LOG_ACTIONS, departments=_departments(),
                   now=utcnow(), myself=user.id == current_user.user.id, **context)


@bp.get("/users/<username>")
@roles(Role.admin)
def user(username):
    """One account: its state, password reset, its API tokens and what administrators did to it."""
    return _user_page(username)


def _back_to(username: str):
    """Back to the list or to the user's page, whichever the form came from."""
    if request.form.get("from") == "list":
        return redirect(url_for(".users"), 303)
    return redirect(url_for(".user", username=username), 303)


@bp.post("/users/<username>/<any(disable, enable):action>")
@roles(Role.admin)
def set_active(username, action):
    """Disable an account (signed out at once, tokens refused) or enable it again."""
    try:
        accounts.set_active(session(), current_user.as_actor(), username, action == "enable")
    except IllegalAction:
        session().rollback()
        return _user_page(username, 409, alert=_l("You cannot disable your own account."))
    if action == "enable":
        flash(_("%(name)s is enabled again and can sign in.", name=username), "success")
    else:
        flash(_("%(name)s is disabled: signed out, unable to sign in, and its API tokens no longer work.",
                name=username), "success")
    return _back_to(username)


@bp.post("/users/<username>/password")
@roles(Role.admin)
def reset_password(username):
    """Set a new password (the same rule as a new account's) and lift a lockout."""
    password = request.form.get("password", "")
    try:
        if password != request.form.get("password_again", ""):
            raise Invalid({"password_again": [str(PASSWORDS_DIFFER)]})
        accounts.reset_password(session(), current_user.as_actor(), username, password)
    except Invalid as error:
        session().rollback()
        return _user_page(username, 422, errors=_said(error.errors), failed="password", alert=NOTHING_SAVED)
    flash(_("The password of %(name)s was reset; any lockout is lifted. Tell them the new password in person.",
            name=username), "success")
    return redirect(url_for(".user", username=username), 303)


@bp.post("/users/<username>/tokens")
@roles(Role.admin)
def issue_token(username):
    """Issue an API token and show it, this once: only its digest is kept."""
    label = request.form.get("label", "").strip()
    try:
        token = accounts.create_token(session(), username, label, by=current_user.as_actor())
    except Invalid as error:
        session().rollback()
        return _user_page(username, 422, errors=_said(error.errors), failed="token", typed=request.form,
                          alert=NOTHING_SAVED)
    except IllegalAction:
        session().rollback()
        return _user_page(username, 409, alert=_l("This account is disabled: enable it before issuing a token."))
    # The token is in this response only; like every signed-in page it is Cache-Control: no-store
    # (api/security.py), so no cache or history copy keeps it.
    return _render("admin/token_issued.html", user=accounts.get_user(session(), username), token=token,
                   label=label)


@bp.post("/tokens/<int:token_id>/revoke")
@roles(Role.admin)
def revoke_token(token_id):
    """Revoke a token: requests with it get 401 from now on."""
    token = accounts.revoke_token_by_id(session(), current_user.as_actor(), token_id)
    owner = token.user.username
    flash(_("The token %(label)s of %(name)s is revoked; it no longer works.",
            label=token.label or f"#{token.id}", name=owner), "success")
    return redirect(url_for(".user", username=owner), 303)


# ---------------------------------------------------------------- the calendar

FIRST_YEAR, LAST_YEAR = 2000, 2100  # as the calendar API accepts


def _year(text: str | None) -> int:
    if not text:
        return _today().year
    try:
        year = int(text)
    except ValueError:
        abort(404)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        abort(404)
    return year


def _calendar_page(year: int, status: int = 200, **context):
    db = session()
    months = [(MONTHS[i], _weeks(days)) for i, days in enumerate(calendar_days.year_view(db, year))]
    return _render("admin/calendar.html", status, year=year, months=months, weekdays=WEEKDAYS,
                   entered=calendar_days.days_of_year(db, year), day_kinds=DAY_KINDS, day_marks=DAY_MARKS,
                   entry_kinds=ENTRY_KINDS, today=_today(), horizon=calendar_horizon(),
                   wanted=calendar_days.CONFIRMED_DAYS_WANTED, lang=page_lang(),
                   years=(max(FIRST_YEAR, year - 1), min(LAST_YEAR, year + 1)), **context)


def _weeks(days: list) -> list[list]:
    """A month's days as weeks from Monday, padded with None before the 1st and after the last."""
    cells = [None] * days[0].day.weekday() + list(days)
    cells += [None] * (-len(cells) % 7)
    return [cells[i:i + 7] for i in range(0, len(cells), 7)]


@bp.get("/calendar")
@roles(Role.admin)
def calendar():
    """A year of the hall's calendar, month by month; forms to add a day and import a schedule."""
    return _calendar_page(_year(request.args.get("year")))


@bp.post("/calendar/days")
@roles(Role.admin)
def add_day():
    """Enter one holiday or working day (replacing what that date had); deadlines are recomputed."""
    form = request.form
    year = _year(form.get("year"))
    try:
        row = calendar_days.parse_day(form.get("date", ""), form.get("kind", ""), form.get("name", ""))
        _written, rearmed = set_calendar_days(session(), current_user.as_actor(), [row])
    except Invalid as error:
        session().rollback()
        return _calendar_page(year, 422, errors=_said(error.errors), typed=form, failed="day", alert=NOTHING_SAVED)
    flash(_("%(date)s is saved as %(kind)s. The deadlines of %(cases)s running cases were recomputed.",
            date=row["day"].isoformat(), kind=ENTRY_KINDS[row["kind"]], cases=rearmed), "success")
    return redirect(url_for(".calendar", year=row["day"].year), 303)


@bp.post("/calendar/import")
@roles(Role.admin)
def import_calendar():
    """Import a CSV of ``date,kind,name`` lines, all or nothing; bad lines are named with their numbers."""
    year = _year(request.form.get("year"))
    upload = request.files.get("file")
    failed = None
    if upload is None or not upload.filename:
        failed = {"file": [_("Choose a CSV file to import.")]}
    else:
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            failed = {"file": [_("The file is not UTF-8 text. Save it as CSV UTF-8 and try again.")]}
    if failed is None:
        try:
            written, rearmed = import_calendar_csv(session(), current_user.as_actor(), text)
        except Invalid as error:
            session().rollback()
            lines = [(_("Line %(num)s", num=key.removeprefix("line ")), [say(m) for m in said])
                     for key, said in error.errors.items()]
            return _calendar_page(year, 422, failed="import", lines=lines,
                                  alert=_l("Nothing was imported: the file has bad lines. Correct them and import "
                                           "the whole file again."))
        if not written:
            failed = {"file": [_("The file has no days in it.")]}
    if failed is not None:
        session().rollback()
        return _calendar_page(year, 422, errors=failed, failed="import", alert=NOTHING_SAVED)
    flash(_("%(days)s days were imported. The deadlines of %(cases)s running cases were recomputed.",
            days=written, cases=rearmed), "success")
    return redirect(url_for(".calendar", year=year), 303)


# ---------------------------------------------------------------- process definitions

@dataclass(frozen=True)
class Box:
    key: str
    title: str
    short_title: str
    department: str
    target_minutes: int
    optional: bool
    x: int
    y: int


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    path: str


BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 248, 80, 64, 20, 12


def _fit(text: str, width: int, size: float) -> str:
    """``text`` cut with an ellipsis to about ``width`` drawing units at font ``size`` (CJK are wider)."""
    used, kept = 0.0, ""
    for char in text:
        used += size * (1.0 if ord(char) > 0x2E80 else 0.66)
        if used > width:
            return kept.rstrip() + "…"
        kept += char
    return kept


def dag(definition: Definition, lang: str) -> dict:
    """The definition's steps as boxes in columns by dependency depth, and an arrow per ``needs``."""
    depth: dict[str, int] = {}
    columns: dict[int, list] = {}
    for step in definition.steps:  # topological order: a step's needs come before it
        depth[step.key] = 1 + max((depth[n] for n in step.needs), default=-1)
        columns.setdefault(depth[step.key], []).append(step)
    rows = max(len(steps) for steps in columns.values())
    height = 2 * PAD + rows * BOX_H + (rows - 1) * GAP_Y
    boxes = {}
    for column, steps in columns.items():
        top = PAD + (rows - len(steps)) * (BOX_H + GAP_Y) // 2  # centred in its column
        for row, step in enumerate(steps):
            title = step.title[lang]
            boxes[step.key] = Box(step.key, title, _fit(title, BOX_W - 20, 13),
                                  _fit(definition.departments[step.department][lang], BOX_W - 20, 12),
                                  step.target_minutes, step.optional,
                                  PAD + column * (BOX_W + GAP_X), top + row * (BOX_H + GAP_Y))
    arrows = []
    for step in definition.steps:
        for need in step.needs:
            a, b = boxes[need], boxes[step.key]
            x1, y1, x2, y2 = a.x + BOX_W, a.y + BOX_H // 2, b.x - 2, b.y + BOX_H // 2
            bend = GAP_X // 2
            arrows.append(Arrow(need, step.key, f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"))
    width = 2 * PAD + len(columns) * BOX_W + (len(columns) - 1) * GAP_X
    return {"boxes": list(boxes.values()), "arrows": arrows, "width": width, "height": height, "box_w": BOX_W,
            "box_h": BOX_H}


DOCUMENT_ORDER = ("name", "version", "title", "case_target_minutes", "departments", "steps")
STEP_ORDER = ("key", "title", "department", "needs", "optional", "target_minutes", "outputs")


def _ordered(mapping: dict, order: tuple[str, ...]) -> dict:
    """The keys in the packaged definition's order (a database may have sorted them), others after."""
    return {**{key: mapping[key] for key in order if key in mapping}, **mapping}


def _draft(current: Definition) -> dict:
    """The current document, numbered as the next version: what an admin starts a new one from."""
    draft = _ordered(dict(current.document, version=current.version + 1), DOCUMENT_ORDER)
    draft["steps"] = [_ordered(step, STEP_ORDER) for step in draft["steps"]]
    return draft


def _definitions_page(status: int = 200, document: str | None = None, **context):
    db = session()
    current = store.current(db)
    rows = [row for row in store.published(db) if row.name == DEFAULT_NAME]
    versions = {row.version for row in rows}
    wanted = request.args.get("version", type=int)
    if wanted is not None and wanted not in versions:
        abort(404)
    shown = store.get(db, DEFAULT_NAME, wanted) if wanted else current
    lang = page_lang()
    if document is None:
        document = json.dumps(_draft(current), ensure_ascii=False, indent=2)
    return _render("admin/definitions.html", status, rows=list(reversed(rows)), current=current, shown=shown,
                   drawing=dag(shown, lang), lang=lang, document=document, **context)


@bp.get("/definitions")
@roles(Role.admin)
def definitions():
    """The published versions, the chosen one (the current by default) drawn, and the form to publish."""
    return _definitions_page()


@bp.post("/definitions")
@roles(Role.admin)
def publish_definition():
    """Publish a new version pasted as JSON; cases accepted from now on run under it."""
    text = request.form.get("document", "")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return _definitions_page(422, document=text, errors={"document": [
            _("This is not valid JSON: line %(line)s, column %(column)s: %(message)s",
              line=error.lineno, column=error.colno, message=error.msg)]}, alert=NOTHING_SAVED)
    if not isinstance(document, dict) or document.get("name") != DEFAULT_NAME:
        # The hall runs one process; a document of another name would be published and never used.
        return _definitions_page(422, document=text, errors={"document": [
            _("The document must be a JSON object whose name is %(name)s.", name=DEFAULT_NAME)]}, alert=NOTHING_SAVED)
    try:
        published = store.publish(session(), document, published_by=current_user.user.username)
    except DefinitionError as error:
        session().rollback()
        return _definitions_page(422, document=text, errors={"document": [
            _("The engine refused this definition: %(reason)s", reason=error.detail)]}, alert=NOTHING_SAVED)
    flash(_("Version %(version)s is published. Cases accepted from now on run under it; cases accepted before "
            "keep their version.", version=published.version), "success")
    return redirect(url_for(".definitions"), 303)
