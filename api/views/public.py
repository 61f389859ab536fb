"""Pages anyone may open without signing in: the applicant's tracking page and rating, and the check of
a printed receipt.

Chinese by default, English with ``?lang=en`` (Flask-Babel; the catalogue is ``translations/``). The
language comes from the link alone (``api.LANGUAGE_BY_LINK_ONLY``), so every link and form here
carries ``lang`` on to the next page.
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import MultiDict

from workflow import errors as wf, receipts, tracking
from workflow.calendar import HALL_TZ
from workflow.calendar_days import calendar_for
from workflow.clock import utcnow

from .. import limits
from ..database import session
from . import messages, page_lang

bp = Blueprint("public", __name__)

# The case and its steps in the applicant's words (the staff pages say "claimed", "hand over", ...).
CASE_STATES = {
    "submitted": _l("Received, waiting to be accepted"),
    "in_progress": _l("Being processed"),
    "suspended": _l("Paused: waiting for materials from you"),
    "ready": _l("Ready: everything is done"),
    "delivered": _l("Handed over"),
    "rejected": _l("Not accepted"),
    "withdrawn": _l("Withdrawn"),
}
CASE_NEXT = {
    "submitted": _l("The hall has your application and will check it at the window. The clock starts when it is "
                    "accepted."),
    "in_progress": _l("The agencies below are working on your case, some of them at the same time."),
    "suspended": _l("The clock is stopped while the hall waits for materials from you. It runs again as soon as "
                    "the hall receives them."),
    "ready": _l("Everything is done. The hall will hand over your licence, seals and documents at the window or "
                "by mail."),
    "delivered": _l("Your documents have been handed over. Thank you for using the hall."),
    "rejected": _l("The case is closed without a result. The hall can tell you why and what to do next."),
    "withdrawn": _l("The application was withdrawn and the case is closed."),
}
STEP_STATES = {
    "waiting": _l("Waiting for earlier steps"),
    "ready": _l("Queued at the agency"),
    "in_progress": _l("Being processed"),
    "done": _l("Done"),
    "skipped": _l("Not requested"),
    "refused": _l("Refused"),
}
# A mark beside each step's words, so its state shows without colour (the words are what is read out);
# a step not started is an empty ring, dashed once the agency may start it (static/css/site.css).
STEP_MARKS = {"waiting": "", "ready": "", "in_progress": "●", "done": "✓", "skipped": "–", "refused": "✗"}
# The national "good and poor rating" (好差评) scale, worst first.
SCORES = {1: _l("Very dissatisfied"), 2: _l("Dissatisfied"), 3: _l("Fairly satisfied"), 4: _l("Satisfied"),
          5: _l("Very satisfied")}
# The engine's field messages, in the page's language; any other as it is.
FIELD_MESSAGES = {
    "must be a whole number from 1 to 5": _l("Choose a score from 1 to 5."),
    "must be at most 500 characters": _l("Write at most 500 characters."),
    "must not contain control characters": _l("Remove the special characters from the comment."),
    "must be text": _l("Write the comment as text."),
}
NOT_FOUND = _l("No case matches this case number and tracking code. Check both against your acceptance slip "
               "and try again.")
RATED = _l("Thank you for rating our service.")
NOT_RATEABLE = _l("This case cannot be rated: only a case whose documents have been handed over can be rated, "
                  "and only once.")
INVALID = _l("The rating was not saved: correct the fields marked below.")
# The pages whose address or form carries a case's tracking code.
TRACK_ENDPOINTS = ("public.track", "public.rate")
# States a case does not leave: its page stops refreshing itself.
CLOSED = ("delivered", "rejected", "withdrawn")


@bp.after_request
def _private_answers(response):
    """The tracking code is in the address: keep it out of Referer headers, caches and search engines."""
    if request.endpoint in TRACK_ENDPOINTS:
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Robots-Tag"] = "noindex"
    return response


def _lang_arg() -> dict:
    """``lang=en`` for the next link or form when the page is English (Chinese needs nothing)."""
    return {"lang": "en"} if page_lang() == "en" else {}


def _sessions_text() -> str:
    return ", ".join(f"{start:%H:%M}–{end:%H:%M}" for start, end in calendar_for(session()).sessions)


def _hall() -> str:
    return current_app.config.get("HALL_NAME", receipts.DEFAULT_HALL)


def _lookup(case_no: str = "", *, status: int = 200, not_found: bool = False, errors: dict | None = None):
    """The form asking for the case number and the tracking code (the code is never typed back)."""
    page = render_template("public/track.html", hall=_hall(), view=None, typed_case_no=case_no,
                           not_found=NOT_FOUND if not_found else None, errors=errors or {}, lang_arg=_lang_arg())
    return page, status


def _show(case, *, status: int = 200, alert=None, errors: dict | None = None, typed: MultiDict | None = None):
    """The case as its applicant sees it (``tracking.public_view``: no names, ID or phone numbers)."""
    now = utcnow()
    view = tracking.public_view(session(), case, now)
    page = render_template(
        "public/track.html", hall=_hall(), view=view, code=case.tracking_code, lang=page_lang(),
        lang_arg=_lang_arg(), case_states=CASE_STATES, case_next=CASE_NEXT, step_states=STEP_STATES,
        step_marks=STEP_MARKS, scores=SCORES, now=now, hall_tz=HALL_TZ, sessions=_sessions_text(), alert=alert,
        errors=errors or {}, typed=typed or MultiDict(), closed=CLOSED,
        # A case still moving refreshes itself; a closed one only changes when it is rated, here.
        live_every=None if view["state"] in CLOSED else current_app.config["LIVE_REFRESH_SECONDS"])
    return page, status


@bp.get("/track")
@limits.track_lookups
@limits.track_misses
def track():
    """The applicant's page: the form, or the case with its steps, deadline and estimate (no sign-in)."""
    case_no = request.args.get("case_no", "").strip()[:40]
    code = request.args.get("code", "").strip()
    if not case_no and not code:
        return _lookup()
    if not case_no or not code:
        errors = {"case_no": [_l("Enter the case number.")]} if not case_no else {}
        if not code:
            errors["code"] = [_l("Enter the tracking code.")]
        return _lookup(case_no, status=422, errors=errors)
    case = tracking.find(session(), case_no, code)
    if case is None:
        # The same answer for an unknown number and a wrong code; Flask-Limiter counts each as a miss.
        return _lookup(case_no, status=404, not_found=True)
    return _show(case)


@bp.post("/track/rating")
@limits.ratings
@limits.track_misses
def rate():
    """Rate a delivered case once, 1 to 5, with an optional comment (好差评); back to the case page."""
    form = request.form
    case = tracking.find(session(), form.get("case_no", ""), form.get("code", ""))
    if case is None:
        return _lookup(form.get("case_no", "").strip()[:40], status=404, not_found=True)
    try:
        tracking.rate(session(), case, _score(form.get("score", "")), form.get("comment"))
    except wf.Invalid as error:
        session().rollback()
        return _show(case, status=422, alert=INVALID, errors=messages.said(error.errors, FIELD_MESSAGES), typed=form)
    except (wf.IllegalAction, wf.Conflict):
        session().rollback()
        return _show(case, status=409, alert=NOT_RATEABLE)
    flash(RATED, "success")
    return redirect(url_for(".track", case_no=case.case_no, code=case.tracking_code, **_lang_arg()), 303)


def _score(text: str):
    """The chosen score as a number; anything else as it came, for the engine to name."""
    try:
        return int(text)
    except ValueError:
        return text.strip() or None


@bp.get("/verify/<token>")
@limits.verifications
def verify(token):
    """Show whether a receipt's token is genuine, with what a bank or landlord needs to compare."""
    result = receipts.verification(session(), current_app.config["SECRET_KEY"], token)
    page = render_template("public/verify.html", hall=_hall(), result=result, token=token)
    return page, 200 if result else 404


@bp.get("/healthz")
def health():
    """For load balancers and process supervisors: 200 when this process answers and reaches the
    database, 503 when the database does not answer. Says nothing else about the hall."""
    try:
        session().execute(text("SELECT 1"))
    except SQLAlchemyError:
        session().rollback()
        current_app.logger.exception("health check: the database does not answer")
        return {"status": "database unavailable"}, 503, {"Cache-Control": "no-store"}
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}
