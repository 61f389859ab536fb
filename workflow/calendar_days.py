"""The admin-maintained calendar days, and the hall's BusinessCalendar built from them."""
from __future__ import annotations

import calendar as month_calendar
import csv
import io
import os
from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar
from sqlalchemy import String, cast, event, func, select
from sqlalchemy.orm import Session

from .calendar import DEFAULT_SESSIONS, BusinessCalendar, parse_sessions
from .clock import utcnow
from .errors import Invalid
from .models import CalendarDay, CalendarYear
from .validation import has_control_characters

KINDS = ("holiday", "workday")
_cache: dict[tuple, BusinessCalendar] = {}
_MEMO = "hall_calendar"  # the calendar a transaction checked, in session.info


def _sessions():
    # The hall's opening hours; one hall per deployment, so an environment setting is enough.
    text = os.environ.get("HALL_SESSIONS")
    return parse_sessions(text) if text else DEFAULT_SESSIONS


def stamp_columns() -> tuple:
    """What tells whether the admin's days or years changed, as columns another query can carry along
    (the count and latest change of the days, the confirmed years): see ``calendar_for``."""
    return (
        select(func.count()).select_from(CalendarDay).scalar_subquery(),
        select(func.max(CalendarDay.updated_at)).scalar_subquery(),
        select(func.aggregate_strings(cast(CalendarYear.year, String), ",")).scalar_subquery(),
    )


def calendar_for(session: Session, stamp: tuple | None = None) -> BusinessCalendar:
    """The hall's calendar with the admin's days and years; rebuilt only when those change.

    Whether they changed is asked once per transaction (one statement, or none when a caller's own
    query brought ``stamp_columns()`` along as ``stamp``), and the answer kept until the transaction
    ends or this module saves a day or a year: an action that completes a step measures and rearms
    several clocks on the same calendar.
    """
    calendar = session.info.get(_MEMO)
    if calendar is not None and stamp is None:
        return calendar
    count, latest, years = stamp or session.execute(select(*stamp_columns())).one()
    key = (count, latest, tuple(sorted(int(y) for y in years.split(","))) if years else (), _sessions())
    calendar = _cache.get(key)
    if calendar is None:
        overrides = dict(session.execute(select(CalendarDay.day, CalendarDay.kind)).all())
        calendar = BusinessCalendar(sessions=key[3], overrides=overrides, confirmed_years=key[2])
        _cache.clear()
        _cache[key] = calendar
    session.info[_MEMO] = calendar
    return calendar


def _changed(session: Session) -> None:
    session.info.pop(_MEMO, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_calendar(session: Session, transaction) -> None:
    # Another transaction (of any process) may change the days once this one ends; a flush's own
    # subtransaction ends inside the transaction.
    if transaction.parent is None or transaction.nested:
        _changed(session)


def _day_problems(date_text: str, kind: str, name: str) -> tuple[date | None, dict[str, list[str]]]:
    """Check one day as typed: the date, or None, and what is wrong, by field."""
    problems: dict[str, list[str]] = {}
    try:
        day = date.fromisoformat(date_text)
    except ValueError:
        problems["date"] = [f"date {date_text!r} is not YYYY-MM-DD"]
        day = None
    if kind not in KINDS:
        problems["kind"] = [f"kind {kind!r} is not holiday or workday"]
    if len(name) > 64:
        problems["name"] = ["name is longer than 64 characters"]
    elif has_control_characters(name):  # as every free text (operations._common.require_text)
        problems["name"] = ["name must not contain control characters"]
    return day, problems


def parse_day(date_text: str, kind: str, name: str = "") -> dict:
    """One day typed in a form, as ``save_days`` takes it; Invalid names each bad field."""
    day, problems = _day_problems(date_text.strip(), kind.strip(), name.strip())
    if problems:
        raise Invalid(problems, detail="the day was not saved")
    return {"day": day, "kind": kind.strip(), "name": name.strip()}


def decode_csv(data: bytes) -> str:
    """The text of a calendar file as uploaded: UTF-8 only; Invalid for anything else, which would
    otherwise be stored garbled (a GBK export from a spreadsheet is the usual case)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Invalid({"file": [f"is not UTF-8 text (byte {error.start + 1}); save it as CSV UTF-8"]},
                      detail="the calendar file is not UTF-8 text; nothing was imported") from None


def parse_csv(text: str) -> list[dict]:
    """Rows of ``date,kind,name`` (a header line and a byte order mark are optional); Invalid names
    every bad line."""
    rows, errors = [], {}
    text = text.removeprefix("\ufeff")  # spreadsheets' "CSV UTF-8" starts with one; it is not a date
    # newline="": the csv module splits the lines itself, whichever break a file uses (\r\n, \n or a
    # lone \r, even mixed), as its documentation asks; a StringIO splits at \n only, and the reader
    # then raised csv.Error (a 500) at the first lone \r.
    reader = csv.reader(io.StringIO(text, newline=""))
    number = 0
    try:
        for number, line in enumerate(reader, start=1):
            if not line or not "".join(line).strip():
                continue
            if number == 1 and line[0].strip().lower() == "date":
                continue
            cells = [c.strip() for c in line] + ["", "", ""]
            day, by_field = _day_problems(cells[0], cells[1], cells[2])
            problems = [problem for field in ("date", "kind", "name") for problem in by_field.get(field, [])]
            if len([c for c in line if c.strip()]) > 3:
                problems.append("has more than three fields")
            if problems:
                errors[f"line {number}"] = problems
            else:
                rows.append({"day": day, "kind": cells[1], "name": cells[2]})
    except csv.Error as error:  # a field past the module's limit (128 KiB): the rest cannot be read
        errors[f"line {number + 1}"] = [f"cannot be read as CSV: {error}"]
    if errors:
        raise Invalid(errors, detail="the calendar file has bad lines; nothing was imported")
    return rows


def confirm_years(session: Session, years, by: str) -> None:
    """Record that these years' whole schedules are in: their days not listed are ordinary days."""
    for year in sorted(set(years)):
        if session.get(CalendarYear, year) is None:
            session.add(CalendarYear(year=year, confirmed_at=utcnow(), confirmed_by=by))
    session.flush()
    _changed(session)


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
    _changed(session)
    return len(rows)


def days_of_year(session: Session, year: int) -> list[CalendarDay]:
    """The days an admin entered for ``year``, in date order."""
    return list(session.scalars(
        select(CalendarDay).where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
        .order_by(CalendarDay.day)
    ))


# The admin pages and the dashboard warn when fewer days ahead than this are confirmed.
CONFIRMED_DAYS_WANTED = 60


def confirmed_days_ahead(session: Session, today: date) -> int:
    """How many consecutive days from ``today`` (included) the hall's calendar has confirmed data for.

    Days are confirmed by the chinese-calendar package (the years it covers) or by an admin's entry;
    the first day with neither ends the count. Zero when today itself is unconfirmed.
    """
    calendar = calendar_for(session)
    count = 0
    while calendar.day(today + timedelta(days=count)).confirmed:
        count += 1
    return count


# What a date is, as the year view shows it.
WORKING, REST, HOLIDAY, WORKDAY, UNCONFIRMED = "working", "rest", "holiday", "workday", "unconfirmed"


@dataclass(frozen=True)
class YearDay:
    """One date of the year view: ``kind`` is working (an ordinary working day), rest (a weekend),
    holiday (a statutory holiday), workday (an adjusted working weekend day, 调休上班) or unconfirmed
    (no data: ``working`` says what is assumed, Monday to Friday)."""

    day: date
    kind: str
    working: bool
    name: dict  # {"zh": …, "en": …}; empty when the day has no name
    source: str | None  # "admin", "package" or None


def _package_name(day: date) -> dict:
    try:
        _is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return {}
    holiday = next((h for h in chinese_calendar.Holiday if h.value == name), None) if name else None
    return {"zh": holiday.chinese, "en": holiday.value} if holiday else {}


def year_view(session: Session, year: int) -> list[list[YearDay]]:
    """Every date of ``year`` by month (twelve lists), as the hall's calendar counts it."""
    calendar = calendar_for(session)
    entered = {row.day: row for row in days_of_year(session, year)}
    months = []
    for month in range(1, 13):
        days = []
        for number in range(1, month_calendar.monthrange(year, month)[1] + 1):
            day = date(year, month, number)
            working, confirmed = calendar.day(day)
            weekend = day.weekday() >= 5
            row = entered.get(day)
            if row is not None:
                name, source = ({"zh": row.name, "en": row.name} if row.name else {}), "admin"
            else:
                name, source = (_package_name(day), "package") if confirmed else ({}, None)
            if not confirmed:
                kind = UNCONFIRMED
            elif working:
                kind = WORKDAY if weekend else WORKING
            else:
                # A weekend is a holiday only as part of one: entered as such, or named by the package.
                kind = HOLIDAY if not weekend or row is not None or name else REST
            if kind in (WORKING, REST) and source == "package":
                name = {}  # an ordinary day keeps no festival's name
            days.append(YearDay(day, kind, working, name, source))
        months.append(days)
    return months
