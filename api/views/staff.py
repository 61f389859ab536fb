"""The staff homes: a department's work queue and the overdue board (the dashboard is ``dashboard.py``).

The board also carries what supervisors and admins answer: warning and breach notifications, and
the follow-ups that an applicant's rating of 1 or 2 opens (closed here with a reply). Every list is
measured live (``workflow.timers.with_timing``) at the moment of the request, so a
deadline passed a minute ago shows as breached before the timer worker has recorded it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import wraps

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from workflow import operations as ops, queries, tracking
from workflow.actors import SERVICE_WINDOW, Role
from workflow.calendar import HALL_TZ
from workflow.clock import utcnow
from workflow.definitions import store
from workflow.errors import Conflict, Forbidden, Invalid
from workflow.machines.case import CaseState
from workflow.models import Case
from workflow.sla import Sla
from workflow.timers import with_timing

from ..database import session
from . import messages, page_lang

bp = Blueprint("staff", __name__)

CASE_STATES = {
    CaseState.submitted: _l("Submitted, not yet accepted"),
    CaseState.in_progress: _l("In progress"),
    CaseState.suspended: _l("Suspended"),
    CaseState.ready: _l("Ready to hand over"),
    CaseState.delivered: _l("Delivered"),
    CaseState.rejected: _l("Rejected"),
    CaseState.withdrawn: _l("Withdrawn"),
}
STEP_STATES = {"ready": _l("Waiting to be claimed"), "in_progress": _l("Claimed")}
SLA_STATUSES = {"on_track": _l("On track"), "warning": _l("Warning"), "breached": _l("Breached"),
                None: _l("Not started")}
# The engine's messages about a reply, in the page's language; any other as it is.
REPLY_MESSAGES = {
    "is required": _l("Write what the hall found and did."),
    "must be at most 1000 characters": _l("Write at most 1000 characters."),
    "must not contain control characters": _l("Remove the special characters from the reply."),
}
NOTICE_KINDS = {"sla_warning": _l("Time limit warning"), "sla_breach": _l("Time limit breached")}
ALARMING = ("warning", "breached")
RUNNING = (CaseState.in_progress, CaseState.suspended)


@dataclass(frozen=True)
class Row:
    """One line of a list: a step of a case, or (for the window) the case as a whole."""

    case: Case
    subject: str  # the step's title, or "" for the whole case
    department: str
    state: str
    sla: Sla | None
    holder: str | None = None  # who has claimed the step
    step_key: str | None = None

    @property
    def anchor(self) -> str:
        """Where on the case page this row's work is: the step's card, or the top."""
        return f"step-{self.step_key}" if self.step_key else "main"

    @property
    def deadline(self) -> datetime | None:
        return self.sla.deadline if self.sla else None

    @property
    def status(self) -> str | None:
        return self.sla.status if self.sla else None

    def sort_key(self):
        # Soonest deadline first; clocks not running (not accepted, suspended) after every deadline.
        return (self.deadline is None, self.deadline or datetime.min.replace(tzinfo=HALL_TZ), self.case.case_no)


def roles(*allowed: Role):
    """Signed-in users of these roles only; anyone else signed in gets the 403 page."""
    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if current_user.role not in allowed:
                raise Forbidden("this page is not for your role")
            return view(*args, **kwargs)
        return wrapper
    return decorate


def _step_rows(departments: tuple[str, ...] | None) -> list[Row]:
    db = session()
    steps = queries.open_steps(db, departments)
    timing = {t.case.id: t.timing for t in with_timing(db, list({s.case_id: s.case for s in steps}.values()))}
    lang = page_lang()
    return [Row(step.case, store.get(db, step.case.definition_name, step.case.definition_version)
                .step(step.key).title[lang], step.department, STEP_STATES[step.state.value],
                timing[step.case_id].steps[step.key], step.assignee.display_name if step.assignee else None, step.key)
            for step in steps]


def _case_rows(states) -> list[Row]:
    db = session()
    return [Row(t.case, "", SERVICE_WINDOW, CASE_STATES[t.case.state], t.timing.case)
            for t in with_timing(db, queries.window_cases(db, states))]


def _render(template: str, rows: list[Row], **context):
    lang = page_lang()
    departments = {key: names[lang] for key, names in store.current(session()).departments.items()}
    return render_template(template, rows=rows, departments=departments, case_states=CASE_STATES,
                           sla_statuses=SLA_STATUSES, now=utcnow(), hall_tz=HALL_TZ,
                           live_every=current_app.config["LIVE_REFRESH_SECONDS"], **context)


@bp.get("/queue")
@roles(Role.clerk, Role.supervisor)
def queue():
    """The department's open work, soonest deadline first (the window's: cases it must act on)."""
    department = current_user.user.department
    if department == SERVICE_WINDOW:
        rows = _case_rows(queries.WINDOW_STATES)
    else:
        rows = _step_rows((department,))
    return _render("staff/queue.html", sorted(rows, key=Row.sort_key), department=department)


@bp.get("/board")
@roles(Role.supervisor, Role.admin)
def board():
    """What is late or about to be: warning and breached steps (cases, for the window), most overdue first."""
    return _board()


def _board(status: int = 200, **context):
    department = current_user.user.department
    if current_user.role is Role.admin:
        rows = _case_rows(RUNNING) + _step_rows(None)
    elif department == SERVICE_WINDOW:
        rows = _case_rows(RUNNING)
    else:
        rows = _step_rows((department,))
    rows = sorted((row for row in rows if row.status in ALARMING), key=Row.sort_key)
    context.setdefault("errors", {})
    context.setdefault("typed", MultiDict())
    return _render("staff/board.html", rows, department=department, notices=_notices(), notice_kinds=NOTICE_KINDS,
                   follow_ups=_follow_ups(), **context), status


@dataclass(frozen=True)
class Notice:
    id: int
    case_no: str
    kind: str  # "sla_warning" or "sla_breach"
    subject: str  # the step's title, or "" for the whole case
    created_at: datetime


def _notices() -> list[Notice]:
    """The supervisor's unread notifications, newest first, titled in the page's language."""
    db, lang = session(), page_lang()
    definition = store.current(db)
    titles = {step.key: step.title[lang] for step in definition.steps}
    return [Notice(n.id, case_no, n.kind, "" if n.subject == "case" else titles.get(n.subject, n.subject),
                   n.created_at)
            for n, case_no in queries.notifications_for(db, current_user.as_actor(), limit=50, unread_only=True)]


@bp.post("/board/notifications/<int:notification_id>/read")
@roles(Role.supervisor, Role.admin)
def read_notification(notification_id):
    """Acknowledge a warning or breach notification; back to the board."""
    ops.mark_read(session(), notification_id, current_user.as_actor())
    flash(_l("Marked as read."), "success")
    return redirect(url_for(".board"), 303)


@dataclass(frozen=True)
class FollowUpItem:
    """An open follow-up of a poor rating, as the board lists it (the hall's, not one department's)."""

    id: int
    case_no: str
    score: int
    comment: str | None
    rated_at: datetime
    due_at: datetime
    overdue: bool


def _follow_ups() -> list[FollowUpItem]:
    """Every open follow-up, the soonest due first: a rating is of the whole hall."""
    now = utcnow()
    return [FollowUpItem(f.id, case_no, rating.score, rating.comment, rating.created_at, f.due_at, f.due_at <= now)
            for f, case_no, rating in tracking.open_follow_ups(session(), limit=100)]


@bp.post("/board/follow-ups/<int:follow_up_id>/close")
@roles(Role.supervisor, Role.admin)
def close_follow_up(follow_up_id):
    """Answer a poor rating and close its follow-up (recorded in the case's audit trail); back to the board."""
    try:
        tracking.close_follow_up(session(), follow_up_id, current_user.as_actor(), request.form.get("reply", ""))
    except Invalid as error:
        session().rollback()
        return _board(422, failed=follow_up_id, errors=messages.said(error.errors, REPLY_MESSAGES), typed=request.form)
    except Conflict:
        session().rollback()
        return _board(409, alert=_l("Someone else closed this follow-up first; it is no longer on the board."))
    flash(_l("The follow-up was closed with your reply."), "success")
    return redirect(url_for(".board"), 303)
