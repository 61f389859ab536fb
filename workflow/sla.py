"""Service levels: working time used against a target, with suspensions cut out of the clock.

A clock runs from its start (the case's acceptance, a step's becoming ready) to its end (the
case ready, the step done), on the hall's business calendar, and stands still during every
suspension of the case. Status: ``warning`` from 75 % of the target used, ``breached`` above 100 %.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .calendar import BusinessCalendar

WARNING_SHARE = 0.75
STATUSES = ("on_track", "warning", "breached")


@dataclass(frozen=True)
class Sla:
    target_minutes: int
    used_minutes: float
    deadline: datetime | None  # None while the clock is stopped by a suspension
    status: str
    confirmed: bool  # False when a day involved has no confirmed calendar data
    paused: bool

    @property
    def remaining_minutes(self) -> float:
        """Working minutes left before the deadline; negative once overdue."""
        return self.target_minutes - self.used_minutes


@dataclass(frozen=True)
class Clock:
    """What a service-level clock needs: when it started and ended, and the case's suspensions."""

    start: datetime | None
    end: datetime | None
    suspensions: tuple[tuple[datetime, datetime | None], ...]
    target_minutes: int

    def intervals(self) -> tuple[list[tuple[datetime, datetime | None]], bool]:
        """The running intervals of [start, end), suspensions cut out; the last may be open (None).

        Returns the intervals and whether the clock is stopped now (a suspension still open).
        """
        intervals, cursor = [], self.start
        for s_start, s_end in sorted(self.suspensions):
            if self.end is not None and s_start >= self.end:
                break
            if s_end is not None and s_end <= cursor:
                continue
            if s_start > cursor:
                intervals.append((cursor, s_start))
            if s_end is None:
                return intervals, True
            cursor = max(cursor, s_end)
        intervals.append((cursor, self.end))
        return intervals, False


def status_of(used: timedelta, target: timedelta) -> str:
    if used > target:
        return "breached"
    if used >= target * WARNING_SHARE:
        return "warning"
    return "on_track"


def reached_at(calendar: BusinessCalendar, clock: Clock, amount: timedelta) -> tuple[datetime | None, bool]:
    """The earliest instant at which ``amount`` of working time has run on the clock.

    None while the clock is stopped before getting there. A clock that ended short of ``amount`` is
    projected as if it had kept running (the deadline it had).
    """
    intervals, paused = clock.intervals()
    done, confirmed = timedelta(0), True
    for start, end in intervals:
        if end is not None:
            span = calendar.between(start, end)
            confirmed &= span.confirmed
            if done + span.value < amount:
                done += span.value
                continue
        result = calendar.add(start, amount - done)
        return result.value, confirmed and result.confirmed
    if paused:
        return None, confirmed
    result = calendar.add(intervals[-1][1], amount - done)  # ended short: project from its end
    return result.value, confirmed and result.confirmed


def _spent(calendar: BusinessCalendar, intervals, now: datetime) -> tuple[timedelta, bool]:
    spent, confirmed = timedelta(0), True
    for start, end in intervals:
        span = calendar.between(start, end if end is not None else max(now, start))
        spent += span.value
        confirmed &= span.confirmed
    return spent, confirmed


def used_minutes(calendar: BusinessCalendar, clock: Clock, now: datetime) -> float:
    """The working minutes the clock has run by ``now`` (what ``measure`` reports, without the deadline)."""
    return _minutes(_spent(calendar, clock.intervals()[0], now)[0])


def _minutes(spent: timedelta) -> float:
    return round(spent.total_seconds() / 60, 2)


def measure(calendar: BusinessCalendar, clock: Clock, now: datetime) -> Sla | None:
    """The clock's service level at ``now``; None if it has not started."""
    if clock.start is None:
        return None
    intervals, paused = clock.intervals()
    spent, confirmed = _spent(calendar, intervals, now)
    target = timedelta(minutes=clock.target_minutes)
    deadline, deadline_confirmed = reached_at(calendar, clock, target)
    return Sla(
        target_minutes=clock.target_minutes,
        used_minutes=_minutes(spent),
        deadline=deadline,
        status=status_of(spent, target),
        confirmed=confirmed and deadline_confirmed,
        paused=paused,
    )
