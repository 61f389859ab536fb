"""The admin-maintained calendar days, and the hall's BusinessCalendar built from them."""
from __future__ import annotations

import csv
import io
import os
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .calendar import DEFAULT_SESSIONS, BusinessCalendar, parse_sessions
from .clock import utcnow
from .errors import Invalid
from .models import CalendarDay

KINDS = ("holiday", "workday")
_cache: dict[tuple, BusinessCalendar] = {}


def _sessions():
    # The hall's opening hours; one hall per deployment, so an environment setting is enough.
    text = os.environ.get("HALL_SESSIONS")
    return parse_sessions(text) if text else DEFAULT_SESSIONS


def calendar_for(session: Session) -> BusinessCalendar:
    """The hall's calendar with the admin's days; rebuilt only when those days change."""
    stamp = session.execute(select(func.count(), func.max(CalendarDay.updated_at))).one()
    key = (tuple(stamp), _sessions())
    calendar = _cache.get(key)
    if calendar is None:
        overrides = dict(session.execute(select(CalendarDay.day, CalendarDay.kind)).all())
        calendar = BusinessCalendar(sessions=key[1], overrides=overrides)
        _cache.clear()
        _cache[key] = calendar
    return calendar


def parse_csv(text: str) -> list[dict]:
    """Rows of ``date,kind,name`` (a header line is optional); Invalid names every bad line."""
    rows, errors = [], {}
    for number, line in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not line or not "".join(line).strip():
            continue
        if number == 1 and line[0].strip().lower() == "date":
            continue
        cells = [c.strip() for c in line] + ["", "", ""]
        problems = []
        try:
            day = date.fromisoformat(cells[0])
        except ValueError:
            problems.append(f"date {cells[0]!r} is not YYYY-MM-DD")
            day = None
        if cells[1] not in KINDS:
            problems.append(f"kind {cells[1]!r} is not holiday or workday")
        if len(cells[2]) > 64:
            problems.append("name is longer than 64 characters")
        if len([c for c in line if c.strip()]) > 3:
            problems.append("has more than three fields")
        if problems:
            errors[f"line {number}"] = problems
        else:
            rows.append({"day": day, "kind": cells[1], "name": cells[2]})
    if errors:
        raise Invalid(errors, detail="the calendar file has bad lines; nothing was imported")
    return rows


def save_days(session: Session, rows: list[dict], by: str) -> int:
    """Insert or replace the given days; return how many were written."""
    now = utcnow()
    for row in rows:
        day = session.get(CalendarDay, row["day"])
        if day is None:
            session.add(CalendarDay(day=row["day"], kind=row["kind"], name=row.get("name", ""),
                                    updated_at=now, updated_by=by))
        else:
            day.kind, day.name, day.updated_at, day.updated_by = row["kind"], row.get("name", ""), now, by
    session.flush()
    return len(rows)


def days_of_year(session: Session, year: int) -> list[CalendarDay]:
    return list(session.scalars(
        select(CalendarDay).where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
        .order_by(CalendarDay.day)
    ))
