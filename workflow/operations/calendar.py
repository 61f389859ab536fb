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
    """Import a State Council schedule: ``date,kind,name`` lines (all or nothing), saved as
    ``set_calendar_days`` does. The years it covers become confirmed: the notice lists only the
    holidays and adjusted working days, so every other weekday of those years is a working day."""
    if actor.role is not Role.admin:
        raise Forbidden("only admins maintain the calendar")
    rows = calendar_days.parse_csv(text)
    calendar_days.confirm_years(session, {row["day"].year for row in rows}, by=actor.username)
    return set_calendar_days(session, actor, rows)
