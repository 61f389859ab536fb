"""Helpers shared by the case and step operations."""
from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from .. import audit
from ..errors import Conflict, IllegalAction, Invalid, PreconditionFailed
from ..validation import has_control_characters


def authorize(permissions: dict, event: str, obj, **context) -> None:
    """Run the machine's permission guards for ``event`` before firing it, so 403 beats 409."""
    probe = SimpleNamespace(model=obj, kwargs=context)
    for guard in permissions.get(event, ()):
        guard(probe)


def ensure_can(machine, event: str, obj) -> None:
    """Refuse early (409) when ``event`` cannot happen from the current state."""
    if event not in machine.get_triggers(obj.state.name):
        raise IllegalAction(
            f"cannot {event} while {type(obj).__name__.lower()} is {obj.state.value}", state=obj.state.value
        )


def check_version(case, expected_version: int | None) -> None:
    """Optimistic locking as the caller sees it: ``If-Match`` or a form's hidden version."""
    if expected_version is not None and expected_version != case.version:
        raise PreconditionFailed(
            f"the case is at version {case.version}, not {expected_version}", version=case.version
        )


@contextmanager
def lost_race():
    """Turn a lost optimistic-locking race (a flush's UPDATE … WHERE version = …) into Conflict."""
    try:
        yield
    except StaleDataError:
        raise Conflict("the case was changed by someone else at the same moment; reload it") from None


def flush(session: Session) -> None:
    """Flush, turning a lost optimistic-locking race into Conflict."""
    with lost_race():
        session.flush()


def record(session: Session, case, actor, action: str, **details) -> None:
    """Audit ``action``; its first event of a transaction may flush (SQLite), so a lost race is Conflict."""
    with lost_race():
        audit.record(session, case, actor, action, **details)


def require_text(value, field: str, limit: int = 500) -> str:
    """A mandatory free-text field such as a reason."""
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if not text:
        raise Invalid({field: ["is required"]})
    if len(text) > limit:
        raise Invalid({field: [f"must be at most {limit} characters"]})
    if has_control_characters(text):
        raise Invalid({field: ["must not contain control characters"]})
    return text
