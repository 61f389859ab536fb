"""Every error, mapped to HTTP in one place: problem+json under /api/, an HTML page elsewhere.

flask-smorest registers its HTTPException handler on the whole app (flask-smorest issue #640), so
``Api.handle_http_exception`` is overridden to answer pages with HTML and the API with RFC 9457
``application/problem+json`` (``type``, ``title``, ``status``, ``detail``, ``errors``).
"""
from __future__ import annotations

import json

import flask_smorest
from flask import Flask, current_app, render_template, request
from jinja2 import TemplateNotFound
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from workflow import errors as wf
from workflow.validation import flatten

API_PREFIX = "/api/"

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
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json"
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def wants_problem() -> bool:
    return request.path.startswith(API_PREFIX)


def _page(status: int, detail: str):
    try:
        return render_template(f"errors/{status}.html", detail=detail), status
    except TemplateNotFound:
        return render_template("errors/error.html", status=status,
                               title=HTTP_STATUS_CODES.get(status, "Error"), detail=detail), status


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

    def handle_http_exception(self, error: HTTPException):
        status = error.code or 500
        if not wants_problem():
            return _page(status, error.description)
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
        headers = dict(data.get("headers") or {})
        return problem(status, detail, type_="validation" if status == 422 else None, errors=errors,
                       headers=headers)


def handle_stale_data(_error: StaleDataError):
    """A lost optimistic-locking race that surfaced outside the operations' own flush."""
    return handle_workflow_error(wf.Conflict("the case was changed by someone else at the same moment; reload it"))


def register(app: Flask) -> None:
    app.register_error_handler(wf.WorkflowError, handle_workflow_error)
    app.register_error_handler(StaleDataError, handle_stale_data)
