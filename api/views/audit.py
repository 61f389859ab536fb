"""The audit trail viewer: every case's events, searched by case, user, action and time.

For supervisors and admins. A GET form, so a search is a link that can be kept and shared; the
search runs in SQL (``workflow.queries.search_events``), newest first, 50 to a page. Times are typed
and shown in Beijing time; "to" includes the whole minute it names (the whole day, for a date alone).
Whether each case's hash chain verifies is on the case page.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from math import ceil

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from workflow import queries
from workflow.actors import Role
from workflow.calendar import HALL_TZ
from workflow.definitions import store
from workflow.models import User

from ..database import session
from . import page_lang
from .case_pages import ACTIONS, STEP_STATES
from .staff import CASE_STATES, roles

bp = Blueprint("audit", __name__)

PER_PAGE = 50
# Who acts without an account: the timer worker and the joins (system), the applicant's rating.
OTHER_ACTORS = ("system", "applicant")


def _instant(text: str, *, end: bool) -> datetime:
    """A Beijing date-time (or date) as typed; for ``end``, the first instant after the minute (or day)."""
    moment = datetime.fromisoformat(text)
    if len(text) <= 10:  # a date alone: from its start, to its end
        moment = datetime.combine(moment.date(), time.min)
        step = timedelta(days=1)
    else:
        moment = moment.replace(second=0, microsecond=0)
        step = timedelta(minutes=1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=HALL_TZ)
    return moment + step if end else moment


def _filters(args) -> tuple[dict, dict[str, list[str]], dict[str, str]]:
    """The search as ``search_events`` takes it, the errors by field, and what was typed."""
    typed = {name: (args.get(name) or "").strip() for name in ("case_no", "actor", "action", "from", "to")}
    filters = {"case_no": typed["case_no"] or None, "actor": typed["actor"] or None}
    errors: dict[str, list[str]] = {}
    if typed["action"] and typed["action"] not in ACTIONS:
        errors["action"] = [_("Choose an action from the list.")]
    filters["action"] = typed["action"] or None
    for name, key in (("from", "start"), ("to", "end")):
        filters[key] = None
        if typed[name]:
            try:
                filters[key] = _instant(typed[name], end=name == "to")
            except ValueError:
                errors[name] = [_("Enter a date and time, for example %(example)s.", example="2026-11-23T09:00")]
    if not errors and filters["start"] and filters["end"] and filters["end"] <= filters["start"]:
        errors["to"] = [_("The end must be after the start.")]
    return filters, errors, typed


def _page(args) -> int:
    try:
        return max(1, int(args.get("page", 1)))
    except ValueError:
        return 1


@bp.get("/audit")
@roles(Role.supervisor, Role.admin)
def search():
    """Events of every case matching the form, newest first, a page at a time."""
    db, lang = session(), page_lang()
    filters, errors, typed = _filters(request.args)
    events, total, page = [], 0, _page(request.args)
    if not errors:
        events, total = queries.search_events(db, **filters, page=page, per_page=PER_PAGE)
    pages = max(1, ceil(total / PER_PAGE))
    definition = store.current(db)
    query = {name: value for name, value in typed.items() if value}

    def page_url(number: int) -> str:
        return url_for(".search", **query, page=number)

    return render_template(
        "audit/search.html", events=events, total=total, page=page, pages=pages, page_url=page_url,
        first=(page - 1) * PER_PAGE + 1, last=(page - 1) * PER_PAGE + len(events), errors=errors, typed=typed,
        actions=ACTIONS, case_states=CASE_STATES, step_states=STEP_STATES, hall_tz=HALL_TZ,
        step_titles={step.key: step.title[lang] for step in definition.steps},
        departments={key: names[lang] for key, names in definition.departments.items()},
        usernames=list(db.scalars(select(User.username).order_by(User.username))) + list(OTHER_ACTORS),
    ), 422 if errors else 200
