"""``Idempotency-Key``: a repeated POST gets the first response back and changes nothing.

Successful responses are stored in the same transaction as the action they answer, so an action
and its record commit together or not at all. Two racing requests with one key both run; the
loser's unique-key violation rolls its action back and it replays the winner's response.
Failures (4xx) are not stored: they changed nothing, so a repeat is simply evaluated again.
"""
from __future__ import annotations

from flask import Response, current_app, g, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from workflow.models import IdempotentResponse

from .auth import current_user
from .database import session
from .errors import problem

HEADER = "Idempotency-Key"
REPLAYED_HEADERS = ("Content-Type", "ETag", "Location")


def _key() -> str | None:
    if request.method != "POST":
        return None
    key = request.headers.get(HEADER, "").strip()
    return key or None


def _replay(record: IdempotentResponse) -> Response:
    response = current_app.response_class(record.body, status=record.status)
    for name, value in record.headers.items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _stored(user_id: int, key: str) -> IdempotentResponse | None:
    return session().scalar(
        select(IdempotentResponse).where(IdempotentResponse.user_id == user_id, IdempotentResponse.key == key)
    )


def replay_if_seen():
    """``before_request``: answer a repeat from the stored response."""
    key = _key()
    if key is None:
        return None
    if len(key) > 255:
        return problem(422, "Idempotency-Key must be at most 255 characters", type_="validation",
                       errors={HEADER: ["must be at most 255 characters"]})
    record = _stored(current_user().id, key)
    if record is None:
        return None
    if (record.method, record.path) != (request.method, request.path):
        return problem(422, f"this Idempotency-Key was used for {record.method} {record.path}",
                       type_="validation", errors={HEADER: ["already used for another request"]})
    return _replay(record)


def remember(response: Response) -> Response | None:
    """Store a successful response under the request's key (before the commit)."""
    key = _key()
    if key is None or not (200 <= response.status_code < 300) or "api_user" not in g:
        return None
    session().add(IdempotentResponse(
        user_id=current_user().id, key=key, method=request.method, path=request.path,
        status=response.status_code, body=response.get_data(as_text=True),
        headers={h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers},
    ))
    return None


def replay_after_race(error: IntegrityError) -> Response | None:
    """After a failed commit: if another request stored this key first, answer with its response."""
    key = _key()
    if key is None or "api_user" not in g:
        return None
    record = _stored(current_user().id, key)
    return _replay(record) if record is not None else None

