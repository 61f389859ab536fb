"""Reports for supervisors and admins: elapsed working time, daily counts, breaches and ratings.

Every figure is computed by the database (GROUP BY, percentiles, histograms): a year of a busy hall
is millions of step rows, and none of them is loaded into Python. What comes back is a few rows per
group.

- **Elapsed minutes** are the working minutes fixed on a step when it is done and on a case when it
  becomes ready (``elapsed_minutes``, suspensions cut out); rows finished before that column existed
  have NULL and are left out.
- **Percentiles** are PostgreSQL's ``percentile_cont``: the value at position p·(n−1) of the sorted
  values, interpolated linearly between its two neighbours. PostgreSQL computes it itself; on SQLite
  the same interpolation is done in SQL with window functions (each row's rank and its group's size,
  then the two neighbours picked out in an aggregate), with the same floating-point operations, so
  both databases give the same figures.
- **Targets** come from the published process definitions: a case keeps the version it was accepted
  under, so the target is a SQL ``CASE`` over (definition, version, step) with bound parameters.
  When every published version agrees on a step's target (the usual case) the ``CASE`` needs only
  the step's key and the report does not join the cases at all.
- **Days** are the hall's dates (Asia/Shanghai). Periods are turned into UTC bounds, so the filters
  use the indexes on the stored UTC times; the grouping by hall date adds 8 hours (Asia/Shanghai has
  kept UTC+8 without daylight saving since 1991, as ``calendar.py`` relies on too).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import (Date, Float, Integer, String, and_, bindparam, case, cast, func, insert, literal, null,
                        or_, select, union_all)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from .actors import SERVICE_WINDOW, Actor, Role
from .calendar import HALL_TZ
from .clock import utcnow
from .definitions import Definition, store
from .errors import Forbidden, Invalid
from .machines.case import CaseState
from .machines.step import OPEN_STATES, StepState
from .models import Case, ElapsedRollup, Event, FollowUp, Notification, Rating, RolledDay, Step, User

GROUPS = ("step", "department", "clerk", "day")
RUNNING_STATES = (CaseState.in_progress, CaseState.suspended)
CASE_SUBJECT = "case"  # a timer's and notification's subject for the whole case


def scope(actor: Actor) -> str | None:
    """Whose steps and breaches ``actor``'s figures cover: every department (None) for an admin, their
    own for a supervisor. Clerks get no reports. (Case figures are the whole hall's for both.)"""
    if actor.role is Role.admin:
        return None
    if actor.role is Role.supervisor:
        return actor.department
    raise Forbidden("reports are for supervisors and admins")
SCORES = (1, 2, 3, 4, 5)
LOW_SCORE = 2  # 1 and 2 are poor ratings (差评); each opens a follow-up

# SQLite's date() reads fractional seconds as milliseconds and rounds: 15:59:59.999999 UTC would land
# on the next hall day. The stored text is cut to whole seconds first ("YYYY-MM-DD HH:MM:SS").
_SQLITE_HALL_OFFSET = "+8 hours"


@dataclass(frozen=True)
class Figures:
    """One row of the elapsed report."""

    group: str  # step key, department key, clerk's username, or the hall date "2026-11-23"
    count: int
    median_minutes: float | None
    p90_minutes: float | None
    max_minutes: float | None
    within_target_pct: float | None  # 0–100, one decimal; None when no target is known


@dataclass(frozen=True)
class DayCount:
    day: date
    opened: int  # cases accepted that hall day
    completed: int  # cases that became ready that hall day


@dataclass(frozen=True)
class Bucket:
    lower: int  # minutes, inclusive
    upper: int  # minutes, exclusive
    count: int


@dataclass(frozen=True)
class Breach:
    at: datetime
    case_no: str
    subject: str  # "case" or a step key
    department: str  # the step's department; the service window for the whole case
    clerk: str | None  # the step's assignee (username)
    target_minutes: int | None
    used_minutes: float | None  # when the breach was recorded
    reason: str | None  # why, as a supervisor recorded it when acknowledging the notification
    acknowledged_by: str | None


@dataclass(frozen=True)
class RatingSummary:
    count: int
    average: float | None  # two decimals
    by_score: dict[int, int]  # every score 1–5, zero when none
    low: int  # scores 1 and 2
    follow_ups_open: int  # open now, whenever they were opened
    follow_ups_overdue: int  # open and past their due time at ``now``


# --- periods and hall dates ---------------------------------------------------------------------


def _utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The UTC instants [from, to) covering the hall dates ``start`` to ``end`` inclusive."""
    if start > end:
        raise Invalid({"from": ["must not be after to"]})
    lower = datetime.combine(start, time.min, HALL_TZ).astimezone(timezone.utc)
    upper = datetime.combine(end + timedelta(days=1), time.min, HALL_TZ).astimezone(timezone.utc)
    return lower, upper


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _hall_date(session: Session, column) -> ColumnElement:
    """The hall date of a UTC timestamp column, as SQL (a DATE on PostgreSQL, ISO text on SQLite)."""
    if _is_postgres(session):
        return cast(func.timezone(HALL_TZ.key, column), Date)
    return func.date(func.substr(column, 1, 19), _SQLITE_HALL_OFFSET)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# --- targets from the published definitions -----------------------------------------------------


def _published(session: Session) -> list[Definition]:
    return [store.get(session, row.name, row.version) for row in store.published(session)]


# Typed, so PostgreSQL can compare it with the minutes when nothing is published yet.
_NO_TARGET = cast(null(), Integer)


def _step_target(definitions: list[Definition]) -> tuple[ColumnElement, bool]:
    """A step's target in SQL, and whether the expression reads the case's definition columns."""
    by_key: dict[str, dict[tuple[str, int], int]] = defaultdict(dict)
    for definition in definitions:
        for step in definition.steps:
            by_key[step.key][(definition.name, definition.version)] = step.target_minutes
    whens, needs_case = [], False
    for key, targets in sorted(by_key.items()):
        if len(set(targets.values())) == 1:
            whens.append((Step.key == key, next(iter(targets.values()))))
            continue
        needs_case = True
        for (name, version), minutes in sorted(targets.items()):
            whens.append((and_(Step.key == key, Case.definition_name == name, Case.definition_version == version),
                          minutes))
    return (case(*whens) if whens else _NO_TARGET), needs_case


def _case_target(definitions: list[Definition]) -> ColumnElement:
    targets = {(d.name, d.version): d.case_target_minutes for d in definitions}
    if not targets:
        return _NO_TARGET
    if len(set(targets.values())) == 1:
        return literal(next(iter(targets.values())), Integer)
    return case(*((and_(Case.definition_name == name, Case.definition_version == version), minutes)
                  for (name, version), minutes in sorted(targets.items())))


# --- the elapsed report ---------------------------------------------------------------------------


def elapsed(session: Session, *, start: date, end: date, group_by: str,
            department: str | None = None) -> list[Figures]:
    """Count, median, 90th percentile, maximum and share within target of elapsed working minutes.

    ``start`` and ``end`` are inclusive hall dates. Grouped by ``step``, ``department`` or ``clerk``
    (who held the step when it was done): the steps done in the period, each against its own target;
    ``department`` limits these to that department's steps. Grouped by ``day``: the cases that became
    ready in the period, by the hall date they did, against the case target. Only groups with at
    least one row are listed, sorted by group.

    Step groupings over days already rolled up (:func:`roll_up`) read the roll-up and a few index
    entries instead of every step (:func:`_elapsed_rolled`); the figures are the same.
    """
    if group_by not in GROUPS:
        raise Invalid({"group_by": [f"must be one of {', '.join(GROUPS)}"]})
    lower, upper = _utc_bounds(start, end)
    definitions = _published(session)
    if group_by == "day":
        rows = (select(_hall_date(session, Case.ready_at).label("grp"), Case.elapsed_minutes.label("minutes"),
                       _case_target(definitions).label("target"))
                .where(Case.ready_at >= lower, Case.ready_at < upper, Case.elapsed_minutes.is_not(None)))
    else:
        rolled = session.execute(select(func.min(RolledDay.day), func.max(RolledDay.day))).one()
        if rolled[0] is not None and _as_date(rolled[0]) <= end and _as_date(rolled[1]) >= start:
            return _elapsed_rolled(session, start, end, group_by, department, definitions,
                                   (_as_date(rolled[0]), _as_date(rolled[1])))
        target, needs_case = _step_target(definitions)
        group = {"step": Step.key, "department": Step.department, "clerk": User.username}[group_by]
        rows = (select(group.label("grp"), Step.elapsed_minutes.label("minutes"), target.label("target"))
                .select_from(Step))
        if needs_case:
            rows = rows.join(Case, Case.id == Step.case_id)
        if group_by == "clerk":
            rows = rows.join(User, User.id == Step.assignee_id)
        rows = rows.where(Step.done_at >= lower, Step.done_at < upper, Step.state == StepState.done,
                          Step.elapsed_minutes.is_not(None))
        if department is not None:
            rows = rows.where(Step.department == department)
    rows = rows.subquery("report_rows")
    summary = (_percentiles_postgres if _is_postgres(session) else _percentiles_window)(rows)
    figures = [
        Figures(group=(_as_date(row.grp).isoformat() if group_by == "day" else row.grp), count=row.count,
                median_minutes=row.median, p90_minutes=row.p90, max_minutes=row.max,
                within_target_pct=_share(row.within, row.targeted))
        for row in session.execute(summary)
    ]
    return sorted(figures, key=lambda f: f.group)


def _share(within: int, targeted: int) -> float | None:
    return round(100 * within / targeted, 1) if targeted else None


def _within_columns(rows):
    return (func.sum(case((rows.c.minutes <= rows.c.target, 1), else_=0)).label("within"),
            func.count(rows.c.target).label("targeted"))


def _percentiles_postgres(rows):
    return select(rows.c.grp, func.count().label("count"),
                  func.percentile_cont(0.5).within_group(rows.c.minutes).label("median"),
                  func.percentile_cont(0.9).within_group(rows.c.minutes).label("p90"),
                  func.max(rows.c.minutes).label("max"), *_within_columns(rows)).group_by(rows.c.grp)


def _percentiles_window(rows):
    """``percentile_cont`` in portable SQL: rank rows per group, pick the neighbours, interpolate.

    For a fraction p of n sorted values the position is p·(n−1); the result is
    ``lo + (hi − lo) · (position − floor(position))`` with lo and hi the values at the floor and the
    ceiling of the position — PostgreSQL's own formula (``float8_lerp``), so the results agree.
    """
    ranked = select(rows.c.grp, rows.c.minutes, rows.c.target,
                    (func.row_number().over(partition_by=rows.c.grp, order_by=rows.c.minutes) - 1).label("rank"),
                    func.count().over(partition_by=rows.c.grp).label("n")).subquery("ranked")
    columns = []
    for name, fraction in (("median", 0.5), ("p90", 0.9)):
        position = literal(fraction) * (ranked.c.n - 1)
        floor = cast(position, Integer)  # positions are never negative: truncation is the floor
        ceiling = floor + case((position > floor, 1), else_=0)
        columns += [func.max(case((ranked.c.rank == floor, ranked.c.minutes))).label(f"{name}_lo"),
                    func.max(case((ranked.c.rank == ceiling, ranked.c.minutes))).label(f"{name}_hi"),
                    func.max(position - floor).label(f"{name}_fraction")]
    grouped = select(ranked.c.grp, func.count().label("count"), func.max(ranked.c.minutes).label("max"),
                     *_within_columns(ranked), *columns).group_by(ranked.c.grp).subquery("grouped")

    def interpolated(name):
        lo, hi, fraction = (grouped.c[f"{name}_{part}"] for part in ("lo", "hi", "fraction"))
        return (lo + (hi - lo) * fraction).label(name)

    return select(grouped.c.grp, grouped.c.count, interpolated("median"), interpolated("p90"), grouped.c.max,
                  grouped.c.within, grouped.c.targeted)


# --- the daily roll-up and the exact percentiles read through it ----------------------------------

# A hall day is rolled up once it has been over this long: no transaction that finishes a step runs
# for an hour, so every step done that day is committed by then.
ROLL_AFTER = timedelta(hours=1)
# Steps finished, as a literal in the SQL: the partial indexes' predicate must be provable from the
# query's text, which a bound parameter (in a generic plan) is not.
_DONE = bindparam("done_state", StepState.done.value, type_=String, literal_execute=True)
# Terms per UNION ALL of lookups (SQLite allows at most 500).
_LOOKUPS_PER_STATEMENT = 200


def _minute(session: Session, minutes) -> ColumnElement:
    """The whole minute holding ``minutes``: CAST truncates on SQLite (the floor, minutes are never
    negative) but rounds on PostgreSQL."""
    return cast(func.floor(minutes), Integer) if _is_postgres(session) else cast(minutes, Integer)


def _finished(lower: datetime, upper: datetime) -> list[ColumnElement]:
    return [Step.done_at >= lower, Step.done_at < upper, Step.state == _DONE, Step.elapsed_minutes.is_not(None)]


def roll_up(session: Session, now: datetime | None = None) -> int:
    """Count every finished hall day's steps into ``elapsed_rollup``; the number of days rolled.

    Days are rolled in order, from the day after the last rolled one (or the first day with a
    finished step) to the last day over for :data:`ROLL_AFTER`, in one INSERT … SELECT. The caller
    commits. Two workers rolling at once collide on the days' primary key: the second one's
    ``IntegrityError`` means the work is done (roll back and go on). A hand-edited finished step
    needs its day's rows deleted (both tables) to be rolled again.
    """
    now = now or utcnow()
    last = (now - ROLL_AFTER).astimezone(HALL_TZ).date() - timedelta(days=1)
    latest = session.scalar(select(func.max(RolledDay.day)))
    if latest is not None:
        first = _as_date(latest) + timedelta(days=1)
    else:
        done = session.scalar(select(func.min(Step.done_at)).where(Step.elapsed_minutes.is_not(None)))
        if done is None:
            return 0
        first = done.astimezone(HALL_TZ).date()
    if first > last:
        return 0
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    session.execute(insert(RolledDay), [{"day": day, "rolled_at": now} for day in days])
    lower, upper = _utc_bounds(first, last)
    target, needs_case = _step_target(_published(session))
    minute = _minute(session, Step.elapsed_minutes)
    day = _hall_date(session, Step.done_at)
    counted = (select(day, Step.key, Step.department, Step.assignee_id, minute, func.count(),
                      func.coalesce(func.sum(case((Step.elapsed_minutes <= target, 1), else_=0)), 0),
                      func.count(target), func.max(Step.elapsed_minutes))
               .select_from(Step).where(*_finished(lower, upper))
               .group_by(day, Step.key, Step.department, Step.assignee_id, minute))
    if needs_case:
        counted = counted.join(Case, Case.id == Step.case_id)
    session.execute(insert(ElapsedRollup).from_select(
        ["day", "step_key", "department", "assignee_id", "minute", "count", "within", "targeted", "max_minutes"],
        counted))
    return len(days)


def _outside(start: date, end: date, rolled: tuple[date, date]) -> list[tuple[date, date]]:
    """The parts of [start, end] outside the rolled days (which are one unbroken range)."""
    spans = []
    if start < rolled[0]:
        spans.append((start, min(end, rolled[0] - timedelta(days=1))))
    if end > rolled[1]:
        spans.append((max(start, rolled[1] + timedelta(days=1)), end))
    return spans


def _elapsed_rolled(session: Session, start: date, end: date, group_by: str, department: str | None,
                    definitions: list[Definition], rolled: tuple[date, date]) -> list[Figures]:
    """The step groupings of :func:`elapsed`, exact, in two short steps.

    1. How many steps each group has in each whole minute (with the maximum and the within-target
       counts): the roll-up for the rolled days, the steps themselves for the others (today).
    2. For each percentile, the ranks p·(n−1) rounded down and up are located in a minute and at an
       offset within it; one index lookup per value (``ix_steps_*_minutes``: the group's steps in that
       minute, in order, the period's bounds read from the index) reads it. The interpolation is
       PostgreSQL's own (``lo + (hi − lo) · fraction``), so the figures equal the one-query path's.
    """
    lower, upper = _utc_bounds(start, end)
    rollup_group = {"step": ElapsedRollup.step_key, "department": ElapsedRollup.department,
                    "clerk": ElapsedRollup.assignee_id}[group_by]
    step_group = {"step": Step.key, "department": Step.department, "clerk": Step.assignee_id}[group_by]
    parts = [select(rollup_group.label("grp"), ElapsedRollup.minute.label("minute"), ElapsedRollup.count.label("n"),
                    ElapsedRollup.within.label("within"), ElapsedRollup.targeted.label("targeted"),
                    ElapsedRollup.max_minutes.label("top"))
             .where(ElapsedRollup.day >= max(start, rolled[0]), ElapsedRollup.day <= min(end, rolled[1]),
                    *([ElapsedRollup.department == department] if department is not None else []),
                    *([ElapsedRollup.assignee_id.is_not(None)] if group_by == "clerk" else []))]
    target, needs_case = _step_target(definitions)
    minute = _minute(session, Step.elapsed_minutes)
    for first, last in _outside(start, end, rolled):
        span_lower, span_upper = _utc_bounds(first, last)
        raw = (select(step_group.label("grp"), minute.label("minute"), func.count().label("n"),
                      func.coalesce(func.sum(case((Step.elapsed_minutes <= target, 1), else_=0)), 0).label("within"),
                      func.count(target).label("targeted"), func.max(Step.elapsed_minutes).label("top"))
               .select_from(Step).where(*_finished(span_lower, span_upper),
                                        *([Step.department == department] if department is not None else []),
                                        *([Step.assignee_id.is_not(None)] if group_by == "clerk" else []))
               .group_by(step_group, minute))
        if needs_case:
            raw = raw.join(Case, Case.id == Step.case_id)
        parts.append(raw)
    counts = union_all(*parts).subquery("minute_counts") if len(parts) > 1 else parts[0].subquery("minute_counts")
    histogram = defaultdict(list)  # group -> [(minute, count)] in order
    totals: dict = defaultdict(lambda: [0, 0, 0, None])  # group -> [count, within, targeted, max]
    for grp, minute_, n, within, targeted, top in session.execute(
            select(counts.c.grp, counts.c.minute, func.sum(counts.c.n), func.sum(counts.c.within),
                   func.sum(counts.c.targeted), func.max(counts.c.top))
            .group_by(counts.c.grp, counts.c.minute).order_by(counts.c.grp, counts.c.minute)):
        histogram[grp].append((minute_, int(n)))
        total = totals[grp]
        total[0] += int(n)
        total[1] += int(within)
        total[2] += int(targeted)
        total[3] = top if total[3] is None else max(total[3], top)

    wanted: dict[tuple, int] = {}  # (group, minute, offset) -> lookup number
    positions: dict = {}  # (group, fraction) -> (lo lookup, hi lookup, fraction of the way)
    for grp, minutes in histogram.items():
        n = totals[grp][0]
        for fraction in (0.5, 0.9):
            position = fraction * (n - 1)
            floor = int(position)
            ceiling = floor + (1 if position > floor else 0)
            ends = [wanted.setdefault((grp, *_locate(minutes, rank)), len(wanted)) for rank in (floor, ceiling)]
            positions[grp, fraction] = (*ends, position - floor)
    values = _lookups(session, step_group, department, lower, upper, list(wanted))

    names = {}
    if group_by == "clerk" and histogram:
        names = dict(session.execute(select(User.id, User.username).where(User.id.in_(list(histogram)))).all())
    figures = []
    for grp, (count, within, targeted, top) in totals.items():
        percentiles = []
        for fraction in (0.5, 0.9):
            lo_index, hi_index, part = positions[grp, fraction]
            lo, hi = values[lo_index], values[hi_index]
            percentiles.append(lo + (hi - lo) * part)
        figures.append(Figures(group=names.get(grp, grp) if group_by == "clerk" else grp, count=count,
                               median_minutes=percentiles[0], p90_minutes=percentiles[1], max_minutes=top,
                               within_target_pct=_share(within, targeted)))
    return sorted(figures, key=lambda f: f.group)


def _locate(minutes: list[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The minute holding the value of 0-based ``rank`` in sorted order, and its offset in that minute."""
    before = 0
    for minute, count in minutes:
        if rank < before + count:
            return minute, rank - before
        before += count
    raise ValueError(f"rank {rank} beyond {before} values")


def _lookups(session: Session, group, department: str | None, lower: datetime, upper: datetime,
             wanted: list[tuple]) -> list[float]:
    """The value at each (group, minute, offset): the offset-th of the group's steps in that minute."""
    values: list[float] = [0.0] * len(wanted)
    for chunk in range(0, len(wanted), _LOOKUPS_PER_STATEMENT):
        terms = []
        for number, (grp, minute, offset) in enumerate(wanted[chunk:chunk + _LOOKUPS_PER_STATEMENT], chunk):
            one = (select(Step.elapsed_minutes.label("value"))
                   .where(group == grp, Step.elapsed_minutes >= minute, Step.elapsed_minutes < minute + 1,
                          *_finished(lower, upper),
                          *([Step.department == department] if department is not None else []))
                   .order_by(Step.elapsed_minutes).offset(offset).limit(1).subquery(f"v{number}"))
            terms.append(select(literal(number).label("number"), one.c.value))
        for number, value in session.execute(union_all(*terms) if len(terms) > 1 else terms[0]):
            values[number] = value
    return values


# --- daily counts and the distribution ------------------------------------------------------------


def daily_counts(session: Session, *, start: date, end: date) -> list[DayCount]:
    """Cases accepted and cases become ready per hall day; one row per day of the range, zeros included."""
    lower, upper = _utc_bounds(start, end)
    counted = {}
    for name, column in (("opened", Case.accepted_at), ("completed", Case.ready_at)):
        day = _hall_date(session, column).label("day")
        query = select(day, func.count()).where(column >= lower, column < upper).group_by(day)
        counted[name] = {_as_date(value): count for value, count in session.execute(query)}
    days = (start + timedelta(days=i) for i in range((end - start).days + 1))
    return [DayCount(day=d, opened=counted["opened"].get(d, 0), completed=counted["completed"].get(d, 0))
            for d in days]


def distribution(session: Session, *, start: date, end: date, width: int = 30) -> list[Bucket]:
    """A histogram of the elapsed working minutes of the cases become ready in the period.

    Buckets are ``[lower, upper)`` of ``width`` minutes from 0 to the one holding the maximum, empty
    ones included; none at all when no case became ready.
    """
    if not isinstance(width, int) or width < 1:
        raise Invalid({"width": ["must be a whole number of minutes, at least 1"]})
    lower, upper = _utc_bounds(start, end)
    # Divided as doubles on both databases: an integer width would make PostgreSQL divide in NUMERIC.
    ratio = Case.elapsed_minutes / literal(float(width), Float)
    # CAST truncates on SQLite (the floor, as minutes are never negative) but rounds on PostgreSQL.
    index = (func.floor(ratio) if _is_postgres(session) else cast(ratio, Integer)).label("bucket")
    counts = {int(bucket): count for bucket, count in session.execute(
        select(index, func.count()).where(Case.ready_at >= lower, Case.ready_at < upper,
                                          Case.elapsed_minutes.is_not(None)).group_by(index))}
    if not counts:
        return []
    return [Bucket(lower=i * width, upper=(i + 1) * width, count=counts.get(i, 0)) for i in range(max(counts) + 1)]


# --- breaches -------------------------------------------------------------------------------------


def _breach_query():
    """sla_breach events with their case, step, holder and acknowledging notification."""
    department = case((Event.step.is_(None), literal(SERVICE_WINDOW)), else_=Step.department)
    notice = aliased(Notification)
    query = (select(Event.at, Event.payload, Event.step, Case.case_no, department.label("department"),
                    User.username, notice.reason, notice.read_by)
             .join(Case, Case.id == Event.case_id)
             .outerjoin(Step, and_(Step.case_id == Event.case_id, Step.key == Event.step))
             .outerjoin(User, User.id == Step.assignee_id)
             .outerjoin(notice, and_(notice.case_id == Event.case_id, notice.kind == "sla_breach",
                                     notice.subject == func.coalesce(Event.step, CASE_SUBJECT)))
             .where(Event.action == "sla_breach"))
    return query, department


def _breach(row) -> Breach:
    payload = row.payload or {}
    used = payload.get("used_minutes")
    return Breach(at=row.at, case_no=row.case_no, subject=row.step or CASE_SUBJECT, department=row.department,
                  clerk=row.username, target_minutes=payload.get("target_minutes"),
                  used_minutes=float(used) if used is not None else None, reason=row.reason,
                  acknowledged_by=row.read_by)


def breaches(session: Session, *, start: date, end: date, department: str | None = None) -> list[Breach]:
    """The breaches recorded in the period (hall dates, inclusive), newest first, with their reasons."""
    lower, upper = _utc_bounds(start, end)
    query, owner = _breach_query()
    query = query.where(Event.at >= lower, Event.at < upper).order_by(Event.at.desc(), Event.id.desc())
    if department is not None:
        query = query.where(owner == department)
    return [_breach(row) for row in session.execute(query)]


def open_breaches(session: Session, *, department: str | None = None, limit: int = 100) -> list[Breach]:
    """Breaches still open: of running cases, on a step not yet done (or the case itself).

    Longest-breached first (what needs attention most); ``used_minutes`` is what the timer saw when it
    fired, not now.
    """
    query, owner = _breach_query()
    query = (query.where(Case.state.in_(RUNNING_STATES),
                         or_(Event.step.is_(None), Step.state.in_(OPEN_STATES)))
             .order_by(Event.at, Event.id).limit(limit))
    if department is not None:
        query = query.where(owner == department)
    return [_breach(row) for row in session.execute(query)]


# --- ratings --------------------------------------------------------------------------------------


def ratings(session: Session, *, start: date, end: date, now: datetime | None = None) -> RatingSummary:
    """The applicants' ratings given in the period, and the follow-ups open (and overdue) at ``now``."""
    lower, upper = _utc_bounds(start, end)
    now = now or utcnow()
    by_score = dict.fromkeys(SCORES, 0)
    by_score.update(session.execute(
        select(Rating.score, func.count()).where(Rating.created_at >= lower, Rating.created_at < upper)
        .group_by(Rating.score)).all())
    count = sum(by_score.values())
    total = sum(score * n for score, n in by_score.items())
    open_, overdue = session.execute(
        select(func.count(), func.coalesce(func.sum(case((FollowUp.due_at < now, 1), else_=0)), 0))
        .where(FollowUp.closed_at.is_(None))).one()
    return RatingSummary(count=count, average=round(total / count, 2) if count else None, by_score=by_score,
                         low=sum(n for score, n in by_score.items() if score <= LOW_SCORE),
                         follow_ups_open=open_, follow_ups_overdue=overdue)
