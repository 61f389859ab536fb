"""Every error, mapped to HTTP in one place: problem+json under /api/, an HTML page elsewhere.

flask-smorest registers its HTTPException handler on the whole app (flask-smorest issue #640), so
``Api.handle_http_exception`` is overridden to answer pages with HTML and the API with RFC 9457
``application/problem+json`` (``type``, ``title``, ``status``, ``detail``, ``errors``).
"""
from __future__ import annotations

import http
import json

import flask_smorest
from flask import Flask, abort, current_app, g, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_smorest.utils import prepare_response
from jinja2 import TemplateNotFound
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from workflow import errors as wf
from workflow.validation import flatten

from .rest.schemas.common import ProblemSchema

API_PREFIX = "/api/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
JSON = "application/json"
# An application nests three levels deep. Python's json gives up near 1 000 with a RecursionError
# (a 500), and every recursive walk after it (the NUL check, marshmallow, the audit hash) nearer still.
MAX_BODY_DEPTH = 32

STATUS = {
    wf.NotFound: 404,
    wf.Unauthenticated: 401,
    wf.Forbidden: 403,
    wf.IllegalAction: 409,
    wf.Conflict: 409,
    wf.PreconditionFailed: 412,
    wf.Invalid: 422,
    wf.DefinitionError: 422,
}

PROBLEM_TYPES = {
    wf.IllegalAction: "illegal-action",
    wf.Conflict: "concurrent-update",
    wf.PreconditionFailed: "version-mismatch",
    wf.Invalid: "validation",
}


def problem(status: int, detail: str | None = None, *, type_: str | None = None, title: str | None = None,
            headers: dict | None = None, **extra):
    """An ``application/problem+json`` response."""
    body = {
        "type": f"/api/v1/problems/{type_}" if type_ else "about:blank",
        "title": title or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail or HTTP_STATUS_CODES.get(status, ""),
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def wants_problem() -> bool:
    return request.path.startswith(API_PREFIX)


# What an error page says, in the page's language: a heading, and what the person can do next.
PAGES = {
    400: (_l("The request could not be used"),
          _l("The page sent something the service could not accept, for example a form from a session that has "
             "since ended. Go back, reload the page and try again.")),
    401: (_l("Sign in first"), _l("This page is for signed-in staff. Sign in and open it again.")),
    403: (_l("This page is not for you"),
          _l("Your account's role or department may not open this page or take this action. If you need it, "
             "ask your supervisor or an administrator.")),
    404: (_l("Page not found"),
          _l("There is no page at this address, or no case with this number. Check the address, or find the "
             "case from your work queue.")),
    405: (_l("This address cannot be used that way"),
          _l("A page was opened in a way it does not accept, for example a form's address typed into the "
             "address bar. Go back and use the page's own buttons.")),
    409: (_l("The case has moved on"),
          _l("The action does not fit the case's current state, or someone acted on it first. Nothing was "
             "changed. Open the case again and check its state.")),
    412: (_l("The page was out of date"),
          _l("The case changed after this page was drawn. Nothing was changed. Open the case again and "
             "decide with what it shows now.")),
    413: (_l("Too much was sent"),
          _l("What was sent is larger than the service accepts (1 MB). Shorten it and try again.")),
    422: (_l("Some of what was sent is not valid"),
          _l("Nothing was saved. Go back, correct what was sent and try again.")),
    429: (_l("Too many requests"),
          _l("Too many requests came in a short time. Wait a minute, then try again.")),
    500: (_l("Something went wrong on our side"),
          _l("The service met an unexpected error and nothing was saved. Try again in a moment; if it "
             "happens again, tell the hall's technical staff the time it happened.")),
}


def _page(status: int, detail: str | None, headers: dict | None = None):
    """The HTML error page: the site's layout, the page's language, a way back."""
    heading, advice = PAGES.get(status) or PAGES[500 if status >= 500 else 400]
    bare = status >= 500  # after a server error the database is not asked again: no staff menu
    signed_in = False
    if not bare:
        db_session = g.get("db_session")
        if db_session is not None:
            # The request rolls back anyway (status >= 400); doing it first lets the page load who
            # is signed in even when a failed flush left the session unusable.
            db_session.rollback()
        signed_in = current_user.is_authenticated
    context = {"status": status, "heading": heading, "advice": advice, "detail": detail,
               "reason": HTTP_STATUS_CODES.get(status, "Error"), "signed_in": signed_in, "bare": bare}
    try:
        return render_template(f"errors/{status}.html", **context), status, headers or {}
    except TemplateNotFound:
        return render_template("errors/error.html", **context), status, headers or {}


def handle_workflow_error(error: wf.WorkflowError):
    status = STATUS.get(type(error), 400)
    if not wants_problem():
        return _page(status, error.detail)
    extra = {}
    if isinstance(error, wf.IllegalAction):
        extra["state"] = error.state
    if isinstance(error, wf.PreconditionFailed):
        extra["version"] = error.extra.get("version")
    if isinstance(error, wf.Invalid):
        extra["errors"] = error.errors
    headers = {"WWW-Authenticate": 'Bearer realm="onewindow"'} if status == 401 else None
    return problem(status, error.detail, type_=PROBLEM_TYPES.get(type(error)), headers=headers, **extra)


class Api(flask_smorest.Api):
    """flask-smorest's Api, answering HTTP errors as problem+json (API) or HTML (pages)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        """Document errors as they are sent: problem+json, not smorest's ``application/json`` Error.

        The same shared responses as flask-smorest's own (one per status name, and ``DEFAULT_ERROR``),
        which views name with ``documented(blp, 404, ...)`` or ``@blp.alt_response(404, response="NOT_FOUND")``.
        """
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
            prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Any other error, as RFC 9457 problem details", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def handle_http_exception(self, error: HTTPException):
        status = error.code or 500
        if not wants_problem():
            # werkzeug's stock sentence for the code adds nothing to the page's own explanation; its
            # headers (a 405's Allow, a 429's Retry-After) stay.
            headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
            return _page(status, None if error.description == type(error).description else error.description,
                         headers)
        data = getattr(error, "data", None) or {}
        messages = data.get("messages") or data.get("errors")
        errors = None
        if messages:
            # webargs keys errors by location first ("json", "query"); a client wants the field.
            errors = {}
            for location, fields in messages.items():
                errors.update(flatten(fields) if location == "json" else flatten(fields, location))
        if status == 400 and errors:
            detail = "; ".join(m for messages in errors.values() for m in messages)
        else:
            detail = data.get("message") or ("The request has invalid fields." if errors else error.description)
        if status == 413 and current_app.config.get("MAX_CONTENT_LENGTH"):
            detail = f"the request body is larger than the {current_app.config['MAX_CONTENT_LENGTH']} bytes accepted"
        headers = dict(data.get("headers") or {})
        return problem(status, detail, type_="validation" if status == 422 else None, errors=errors,
                       headers=headers)


def documented(blp: flask_smorest.Blueprint, *statuses: int):
    """Decorator naming in the OpenAPI document the problem answers a view may give besides its own."""
    def decorate(view):
        for status in statuses:
            view = blp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return view
    return decorate


def body_media_type(media_type: str):
    """Decorator (under ``@blp.route``): the view reads its body as ``media_type`` itself, not as JSON."""
    def decorate(view):
        view.body_media_type = media_type
        return view
    return decorate


def refuse_unreadable_bodies():
    """``before_request``: an API body that cannot be read as a JSON object is a 400 saying why.

    On every POST, PUT and PATCH under /api/, before authentication, validation or a query: a body
    sent as another content type, JSON that does not parse or nests too deep, and a top level that
    is not an object. An empty body is no body (a required one is then a 422 naming the fields);
    reading the body is also where one past MAX_CONTENT_LENGTH becomes a 413.
    """
    if request.method not in ("POST", "PUT", "PATCH") or not wants_problem():
        return None
    if request.routing_exception is not None:
        raise request.routing_exception  # 404 or 405 now: the app's other hooks would read the body
    data = request.get_data(cache=True)
    if request.content_length is None and request.max_content_length is not None \
            and len(data) >= request.max_content_length:
        # A body without a length (chunked) is cut at the limit and the part returned, no 413:
        # werkzeug raises only on a read after it (https://github.com/pallets/werkzeug/pull/2620).
        raise RequestEntityTooLarge()
    view = current_app.view_functions.get(request.endpoint)
    if not data or getattr(view, "body_media_type", JSON) != JSON:
        return None
    if not request.is_json:
        return _unreadable(f"send the body as JSON, with Content-Type: {JSON} (it came as "
                           f"{request.mimetype or 'no content type'})")
    try:
        body = json.loads(data)
    except RecursionError:
        return _unreadable(f"the JSON body nests more than {MAX_BODY_DEPTH} levels deep")
    except ValueError as error:  # JSONDecodeError, or UnicodeDecodeError for bytes that are not UTF-8
        return _unreadable(f"the body is not valid JSON: {error}")
    if not isinstance(body, dict):
        return _unreadable(f"the JSON body must be an object ({{...}}), not {_json_kind(body)}")
    if _deeper_than(body, MAX_BODY_DEPTH):
        return _unreadable(f"the JSON body nests more than {MAX_BODY_DEPTH} levels deep")
    return None


def _unreadable(detail: str):
    return problem(400, detail, type_="malformed-body")


def _json_kind(value) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return "a number"


def _deeper_than(value, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels, without recursing."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def refuse_nul_characters():
    """PostgreSQL cannot store or compare U+0000 in text or JSON: answer before any query, never a 500.

    In the address nothing can be found (404); in a query parameter the API names it in a 422 and a
    page answers 400; in an API body the 422 names the field.
    """
    if "\x00" in request.path:
        abort(404)
    api_request = request.path.startswith(API_PREFIX)
    bad_args = sorted({name for name, value in request.args.items(multi=True) if "\x00" in name + value})
    if bad_args and not api_request:
        abort(400)
    if bad_args:
        return problem(422, "query parameters must not contain NUL characters", type_="validation",
                       errors={f"query.{name}": ["must not contain NUL characters"] for name in bad_args})
    if not api_request or not request.is_json:
        return None
    paths = list(_nul_paths(request.get_json(silent=True), ""))
    if not paths:
        return None
    return problem(422, "text must not contain NUL characters", type_="validation",
                   errors={path or "_schema": ["must not contain NUL characters"] for path in paths})


def _nul_paths(value, path: str):
    if isinstance(value, str):
        if "\x00" in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nul_paths(item, f"{path}.{key}" if path else str(key))
            if "\x00" in str(key):
                yield path or "_schema"
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}.{index}" if path else str(index))


def handle_stale_data(_error: StaleDataError):
    """A lost optimistic-locking race that surfaced outside the operations' own flush."""
    return handle_workflow_error(wf.Conflict("the case was changed by someone else at the same moment; reload it"))


def register(app: Flask) -> None:
    app.before_request(refuse_unreadable_bodies)
    app.before_request(refuse_nul_characters)  # after: it walks a body already known to be readable
    app.register_error_handler(wf.WorkflowError, handle_workflow_error)
    app.register_error_handler(StaleDataError, handle_stale_data)
