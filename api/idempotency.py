"""``Idempotency-Key``: a repeated POST gets the first response back and changes nothing.

The key is reserved at the start of the request, inside the request's own transaction, by
inserting its row: a second request with the same key waits on the unique index until the first
ends, then replays the first response (or, if the first failed and rolled back, runs itself). The
response is written into that row before the commit, so an action and its record commit together
or not at all. Failures (4xx) are not kept: they changed nothing, so a repeat is evaluated again.

Stored responses may hold what only the creating response shows (unmasked ID numbers), so a key
lives 24 hours; after that it is forgotten and the user's expired keys are deleted.
"""
from __future__ import annotations

from datetime import timedelta

from flask import Response, current_app, g, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from workflow.clock import utcnow
from workflow.models import IdempotentResponse

from .auth import current_user
from .database import session
from .errors import problem

HEADER = "Idempotency-Key"
REPLAYED_HEADERS = ("Content-Type", "ETag", "Location")
LIFETIME = timedelta(hours=24)


def _key() -> str | None:
    if request.method != "POST":
        return None
    key = request.headers.get(HEADER, "").strip()
    return key or None


def _replay(record: IdempotentResponse) -> Response:
    if (record.method, record.path) != (request.method, request.path):
        return problem(422, f"this Idempotency-Key was used for {record.method} {record.path}",
                       type_="validation", errors={HEADER: ["already used for another request"]})
    response = current_app.response_class(record.body, status=record.status)
    for name, value in record.headers.items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _stored(user_id: int, key: str) -> IdempotentResponse | None:
    return session().scalar(
        select(IdempotentResponse).where(IdempotentResponse.user_id == user_id, IdempotentResponse.key == key,
                                         IdempotentResponse.created_at >= utcnow() - LIFETIME)
    )


def reserve_or_replay():
    """``before_request``: replay a repeat, or reserve the key for this request."""
    key = _key()
    if key is None:
        return None
    if len(key) > 255:
        return problem(422, "Idempotency-Key must be at most 255 characters", type_="validation",
                       errors={HEADER: ["must be at most 255 characters"]})
    if "\x00" in key:  # PostgreSQL cannot store it: a 500 otherwise
        return problem(422, "Idempotency-Key must not contain NUL characters", type_="validation",
                       errors={HEADER: ["must not contain NUL characters"]})
    if not request.headers.get("Authorization"):
        # Keys are kept per user. A public endpoint (the applicant's rating) has none to keep them
        # by and is once-only by itself; an endpoint that needs a user answers its own 401.
        return None
    user_id, db = current_user().id, session()
    record = _stored(user_id, key)
    if record is not None:
        return _replay(record)
    db.execute(delete(IdempotentResponse).where(IdempotentResponse.user_id == user_id,
                                                IdempotentResponse.created_at < utcnow() - LIFETIME))
    record = IdempotentResponse(user_id=user_id, key=key, method=request.method, path=request.path,
                                status=0, headers={}, body="")
    db.add(record)
    try:
        db.flush()  # waits here while another request holds the same key
    except IntegrityError:
        db.rollback()
        record = _stored(user_id, key)
        if record is None:
            return problem(409, "another request with this Idempotency-Key is still running; retry")
        return _replay(record)
    g.idempotency_record = record
    return None


def remember(response: Response) -> None:
    """Write a successful response into the reserved row (before the commit)."""
    record = g.pop("idempotency_record", None)
    if record is None or not (200 <= response.status_code < 300):
        return
    record.status = response.status_code
    record.body = response.get_data(as_text=True)
    record.headers = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}
