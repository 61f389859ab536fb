"""The hall's business calendar: working days, opening sessions and working-time arithmetic (contract §2).

A date is a working day by, in order of precedence: an admin's override (``holiday`` or
``workday``), the chinese-calendar package (2004–2026, State Council holidays and 调休上班), or,
where neither knows the date, Monday–Friday — the last marked unconfirmed. Every answer that
depends on days carries ``confirmed``.

All arithmetic is in integer microseconds of Asia/Shanghai wall-clock time, never floats, so that
``between(start, add(start, d).value).value == d`` holds exactly. Wall-clock arithmetic equals
elapsed time because Asia/Shanghai has kept UTC+8 without daylight saving since 1991.

Cost grows with the number of days spanned: each day is looked up once (and cached), and a whole
working day is counted in one step.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import chinese_calendar

Sessions = tuple[tuple[time, time], ...]

HALL_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_SESSIONS: Sessions = ((time(9, 0), time(12, 0)), (time(13, 30), time(17, 30)))
OVERRIDE_KINDS = ("holiday", "workday")

_US_PER_MINUTE = 60_000_000
_US_PER_DAY = 24 * 60 * _US_PER_MINUTE
_ONE_US = timedelta(microseconds=1)
_SESSION_TEXT = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
# Days a calendar remembers; beyond that it starts afresh, so an absurd duration cannot hoard memory.
_CACHED_DAYS = 1 << 16


class Timed(NamedTuple):
    """An answer of the calendar, and whether every day behind it had confirmed data."""

    value: Any
    confirmed: bool


def parse_sessions(text: str) -> Sessions:
    """Parse opening sessions written as ``09:00-12:00,13:30-17:30``."""
    sessions = []
    for part in text.split(","):
        match = _SESSION_TEXT.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"session {part.strip()!r} is not written HH:MM-HH:MM")
        h1, m1, h2, m2 = map(int, match.groups())
        try:
            sessions.append((time(h1, m1), time(h2, m2)))
        except ValueError as error:  # e.g. 24:00 or 12:60
            raise ValueError(f"session {part.strip()!r}: {error}") from None
    return _checked_sessions(sessions)


def _checked_sessions(sessions: Iterable[tuple[time, time]]) -> Sessions:
    """Return the sessions as a tuple; ValueError unless they are ordered, disjoint whole minutes."""
    sessions = tuple((start, end) for start, end in sessions)
    if not sessions:
        raise ValueError("the hall needs at least one session")
    previous_end = None
    for start, end in sessions:
        for moment in (start, end):
            # Whole minutes keep minutes_per_day an integer; a zone would make a local time ambiguous.
            if moment.tzinfo is not None or moment.second or moment.microsecond:
                raise ValueError(f"session time {moment} is not a whole minute of local time")
        if start >= end:
            raise ValueError(f"session {start:%H:%M}-{end:%H:%M} does not end after it starts")
        if previous_end is not None and start < previous_end:
            raise ValueError(f"session {start:%H:%M}-{end:%H:%M} overlaps or precedes the one before it")
        previous_end = end
    return sessions


def _local(moment: datetime) -> datetime:
    """Return the instant in the hall's zone; ValueError for a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} is naive; the calendar needs timezone-aware instants")
    return moment.astimezone(HALL_TZ)


def _of_day(moment: time) -> int:
    """Return the microseconds from midnight to a wall-clock time."""
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + moment.microsecond


def _split(moment: datetime) -> tuple[int, int]:
    """Return (date ordinal, microseconds since local midnight) of an instant."""
    local = _local(moment)
    return local.toordinal(), _of_day(local.time())


@functools.lru_cache(maxsize=_CACHED_DAYS)
def _package_status(ordinal: int) -> tuple[bool, bool]:
    """Return (is a working day, confirmed) for a date ordinal by the chinese-calendar package alone.

    Shared by every calendar (a new one is built whenever an admin changes a day), because the
    package's own lookup rescans its tables on each call.
    """
    day = date.fromordinal(ordinal)
    try:
        return chinese_calendar.is_workday(day), True
    except NotImplementedError:  # a year the package does not cover
        return day.weekday() < 5, False


def _instant(ordinal: int, offset: int) -> datetime:
    """Return the Asia/Shanghai instant at ``offset`` microseconds after the date's midnight."""
    return datetime.combine(date.fromordinal(ordinal), time(), HALL_TZ) + timedelta(microseconds=offset)


class BusinessCalendar:
    """The hall's working days and sessions, and working-time arithmetic over them."""

    def __init__(self, sessions: Iterable[tuple[time, time]] = DEFAULT_SESSIONS,
                 overrides: Mapping[date, str] | None = None, confirmed_years: Iterable[int] = ()) -> None:
        self.sessions = _checked_sessions(sessions)
        self._spans = tuple((_of_day(start), _of_day(end)) for start, end in self.sessions)
        self._day_us = sum(end - start for start, end in self._spans)
        self.minutes_per_day: int = self._day_us // _US_PER_MINUTE
        self._overrides: dict[int, bool] = {}
        for day, kind in (overrides or {}).items():
            if not isinstance(day, date):
                raise TypeError(f"override key {day!r} is not a date")
            if kind not in OVERRIDE_KINDS:
                raise ValueError(f"override for {day} is {kind!r}, not holiday or workday")
            self._overrides[day.toordinal()] = kind == "workday"
        # Years whose whole schedule an admin imported: their other days are plain Monday–Friday,
        # confirmed (the State Council's notice lists only the exceptions).
        self._confirmed_years = frozenset(confirmed_years)
        # (working, confirmed) per date ordinal: every computation walks days, most of them repeatedly.
        self._days: dict[int, tuple[bool, bool]] = {}

    def _status(self, ordinal: int) -> tuple[bool, bool]:
        """Return (is a working day, data confirmed) for a date ordinal."""
        status = self._days.get(ordinal)
        if status is None:
            working = self._overrides.get(ordinal)
            if working is not None:
                status = (working, True)
            else:
                status = _package_status(ordinal)
                if not status[1] and date.fromordinal(ordinal).year in self._confirmed_years:
                    status = (status[0], True)
            if len(self._days) >= _CACHED_DAYS:
                self._days.clear()
            self._days[ordinal] = status
        return status

    def day(self, d: date) -> Timed:
        """Tell whether a date is a working day: Timed(bool, confirmed)."""
        return Timed(*self._status(d.toordinal()))

    def is_working_time(self, t: datetime) -> bool:
        """Tell whether an instant is inside a session of a working day (start inclusive, end exclusive)."""
        ordinal, offset = _split(t)
        return self._status(ordinal)[0] and any(start <= offset < end for start, end in self._spans)

    def next_working_instant(self, t: datetime) -> datetime:
        """Return t (in Asia/Shanghai) if it is working time, else the next session opening."""
        ordinal, offset = _split(t)
        while True:
            if self._status(ordinal)[0]:
                for start, end in self._spans:
                    if offset < end:
                        return _instant(ordinal, max(start, offset))
            ordinal, offset = ordinal + 1, 0

    def add(self, start: datetime, duration: timedelta) -> Timed:
        """Return the earliest instant at which ``duration`` of working time from ``start`` has elapsed.

        Ending exactly at a session's end gives that end (12:00, 17:30), never the next opening;
        a start outside working time counts from the next opening; a zero duration gives ``start``
        itself. Timed(aware Asia/Shanghai datetime, confirmed for every day from start to result).
        """
        if duration < timedelta(0):
            raise ValueError(f"duration {duration} is negative")
        remaining = duration // _ONE_US
        if not remaining:
            return Timed(_local(start), True)
        ordinal, offset = _split(start)
        first_opening, confirmed = self._spans[0][0], True
        while True:
            working, known = self._status(ordinal)
            confirmed = confirmed and known
            if working:
                # Strictly more than a day left: the whole day goes at once and the end lies beyond it.
                if offset <= first_opening and remaining > self._day_us:
                    remaining -= self._day_us
                else:
                    for session_start, session_end in self._spans:
                        begin = max(session_start, offset)
                        if begin >= session_end:
                            continue
                        if remaining <= session_end - begin:
                            return Timed(_instant(ordinal, begin + remaining), confirmed)
                        remaining -= session_end - begin
            ordinal, offset = ordinal + 1, 0

    def between(self, a: datetime, b: datetime) -> Timed:
        """Measure the working time in [a, b): Timed(timedelta, confirmed); zero when b <= a.

        Additive: between(a, m) + between(m, b) == between(a, b) for a <= m <= b. The days looked
        at are those [a, b) touches, so a b at midnight does not involve (or unconfirm) its date.
        """
        a, b = _local(a), _local(b)
        if b <= a:
            return Timed(timedelta(0), True)
        first, low = _split(a)
        last, high = _split(b)
        if high == 0:
            last, high = last - 1, _US_PER_DAY
        total, confirmed = 0, True
        for ordinal in range(first, last + 1):
            working, known = self._status(ordinal)
            confirmed = confirmed and known
            if not working:
                continue
            if first < ordinal < last:
                total += self._day_us
                continue
            lo = low if ordinal == first else 0
            hi = high if ordinal == last else _US_PER_DAY
            total += sum(max(0, min(end, hi) - max(start, lo)) for start, end in self._spans)
        return Timed(timedelta(microseconds=total), confirmed)

    def add_minutes(self, start: datetime, minutes: float) -> Timed:
        """Return ``add`` for a number of working minutes (rounded to the microsecond)."""
        return self.add(start, timedelta(minutes=minutes))

    def between_minutes(self, a: datetime, b: datetime) -> Timed:
        """Measure the working time in [a, b) in minutes: Timed(float, confirmed)."""
        span = self.between(a, b)
        return Timed(span.value // _ONE_US / _US_PER_MINUTE, span.confirmed)
