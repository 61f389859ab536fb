"""Admin operations on the hall's calendar: entering holidays and adjusted working days."""
from __future__ import annotations

from sqlalchemy.orm import Session

from .. import calendar_days, timers
from ..actors import Actor, Role
from ..errors import Forbidden


def set_calendar_days(session: Session, actor: Actor, rows: list[dict]) -> tuple[int, int]:
    """Save days (admins only) and recompute running cases' deadlines; return (days, cases)."""
    if actor.role is not Role.admin:
        raise Forbidden("only admins maintain the calendar")
    written = calendar_days.save_days(session, rows, by=actor.username)
    return written, timers.rearm_running(session)


def import_calendar_csv(session: Session, actor: Actor, text: str) -> tuple[int, int]:
    """Parse ``date,kind,name`` lines (all or nothing) and save them as ``set_calendar_days`` does."""
    if actor.role is not Role.admin:
        raise Forbidden("only admins maintain the calendar")
    return set_calendar_days(session, actor, calendar_days.parse_csv(text))
