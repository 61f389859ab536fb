"""Reports: every figure the database computes, checked against a brute-force computation in Python.

Generated cases are inserted as rows (elapsed minutes, done and ready times, departments, holders)
so that hypothesis can try many shapes quickly; a few end-to-end tests let the real operations and
the timer sweep produce the data. The same tests run on SQLite and, in the second run, PostgreSQL.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from workflow import operations as ops, reports, timers, tracking
from workflow.actors import Role
from workflow.definitions import packaged, store
from workflow.errors import Invalid
from workflow.machines.case import CaseState
from workflow.machines.step import StepState
from workflow.db import make_sessionmaker
from workflow.models import Case, ElapsedRollup, Notification, RolledDay, Step, User

from ..factories import outputs_for

CST = ZoneInfo("Asia/Shanghai")
BASE = date(2026, 11, 20)
STEP_KEYS = ("registration", "seal", "tax", "invoice", "bank")
DEPARTMENTS = ("market_regulation", "public_security", "taxation", "bank")
CLERKS_PER_DEPARTMENT = 2
# Version 2 changes two targets, so the report's target must follow each case's own version.
V2_CHANGES = {"case_target_minutes": 200, "registration": 80}


def at(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


# --- the brute force ------------------------------------------------------------------------------


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: position fraction·(n−1) of the sorted values, interpolated."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lo, hi = math.floor(position), math.ceil(position)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)


def figures(grouped: dict[str, list[tuple[float, int | None]]]) -> list[reports.Figures]:
    rows = []
    for group, pairs in sorted(grouped.items()):
        values = [minutes for minutes, _ in pairs]
        targeted = [(m, t) for m, t in pairs if t is not None]
        within = sum(1 for m, t in targeted if m <= t)
        rows.append(reports.Figures(group=group, count=len(values), median_minutes=percentile_cont(values, 0.5),
                                    p90_minutes=percentile_cont(values, 0.9), max_minutes=max(values),
                                    within_target_pct=round(100 * within / len(targeted), 1) if targeted else None))
    return rows


def hall_day(moment: datetime) -> date:
    return moment.astimezone(CST).date()


class World:
    """What the generated rows are measured against: the published definitions and the clerks."""

    def __init__(self, session, versions):
        self.definitions = {1: store.current(session)}
        if 2 in versions:
            document = packaged()
            document["version"] = 2
            document["case_target_minutes"] = V2_CHANGES["case_target_minutes"]
            next(s for s in document["steps"] if s["key"] == "registration")["target_minutes"] = \
                V2_CHANGES["registration"]
            self.definitions[2] = store.publish(session, document, published_by="test")
        self.clerks: dict[str, list[tuple[int, str]]] = {}
        for department in DEPARTMENTS:
            for n in range(CLERKS_PER_DEPARTMENT):
                user = User(username=f"{department[:6]}_{n}", display_name=f"{department} {n}", role=Role.clerk,
                            department=department, password_hash="-")
                session.add(user)
                session.flush()
                self.clerks.setdefault(department, []).append((user.id, user.username))
        session.commit()

    def step_target(self, version: int, key: str) -> int:
        return self.definitions[version].step(key).target_minutes

    def department(self, key: str) -> str:
        return self.definitions[1].step(key).department


def insert_cases(session, world: World, generated: list[dict]) -> list[dict]:
    """Insert the generated cases and steps as rows; return the steps as flat records for the brute force."""
    cases, steps, flat = [], [], []
    for number, data in enumerate(generated, start=1):
        case_id = 10_000 + number
        ready_at, ready_minutes = data["ready"] if data["ready"] else (None, None)
        accepted = data["accepted_at"]
        created = min(m for m in (accepted, ready_at, at(2026, 11, 1)) if m is not None)
        cases.append(dict(
            id=case_id, case_no=f"KB20261120-{number:04d}", tracking_code="ABCDEFGHJK",
            state=CaseState.ready if ready_at else CaseState.in_progress, version=1,
            definition_name="company_opening", definition_version=data["version"], channel="window",
            company_name=f"示例{number}有限公司", company_kind="llc", application={}, missing_materials=[],
            created_at=created, updated_at=created, accepted_at=accepted, ready_at=ready_at,
            elapsed_minutes=ready_minutes))
        for position, (key, step) in enumerate(sorted(data["steps"].items())):
            department = world.department(key)
            user_id, username = world.clerks[department][step["clerk"]]
            done = step["done_at"] is not None
            steps.append(dict(case_id=case_id, key=key, position=position, department=department,
                              state=StepState.done if done else StepState.in_progress, assignee_id=user_id,
                              ready_at=created, claimed_at=created, done_at=step["done_at"],
                              elapsed_minutes=step["minutes"] if done else None))
            flat.append(dict(version=data["version"], key=key, department=department, clerk=username, done=done,
                             done_at=step["done_at"], minutes=step["minutes"] if done else None))
    if cases:
        session.execute(insert(Case), cases)
    if steps:
        session.execute(insert(Step), steps)
    session.flush()
    return flat


def expected_elapsed(world: World, generated, flat, start: date, end: date, group_by: str, department=None):
    grouped: dict[str, list] = defaultdict(list)
    if group_by == "day":
        for data in generated:
            if data["ready"] and data["ready"][1] is not None and start <= hall_day(data["ready"][0]) <= end:
                target = world.definitions[data["version"]].case_target_minutes
                grouped[hall_day(data["ready"][0]).isoformat()].append((data["ready"][1], target))
        return figures(grouped)
    for step in flat:
        if not step["done"] or step["minutes"] is None or not start <= hall_day(step["done_at"]) <= end:
            continue
        if department is not None and step["department"] != department:
            continue
        group = {"step": step["key"], "department": step["department"], "clerk": step["clerk"]}[group_by]
        grouped[group].append((step["minutes"], world.step_target(step["version"], step["key"])))
    return figures(grouped)


# --- generated data -------------------------------------------------------------------------------

# Instants around the period, with the hall-day boundaries (midnight in Shanghai is 16:00 UTC the day
# before) and the ones just inside them, where a wrong time zone or a rounded fraction shows.
EDGE_TIMES = (time(0, 0), time(7, 59, 59, 999_999), time(8, 0), time(23, 30), time(23, 59, 59, 999_999))
moments = st.builds(lambda day, clock: datetime.combine(BASE + timedelta(days=day), clock, CST),
                    st.integers(-1, 9), st.one_of(st.sampled_from(EDGE_TIMES), st.times()))
# Few distinct values, so ties are common, and values exactly at the targets (60, 80, 90, 200, 210); the
# rest as the clocks fix them, to the hundredth of a minute (workflow/sla.py rounds used_minutes).
minutes = st.one_of(st.sampled_from([0.0, 12.5, 59.5, 59.99, 60.0, 60.01, 80.0, 90.0, 200.0, 210.0, 211.0]),
                    st.integers(0, 150_000).map(lambda hundredths: hundredths / 100))
steps = st.fixed_dictionaries({
    "done_at": st.one_of(moments, moments, moments, st.none()),  # None: the step is still open
    # NULL minutes on a done step: rows finished before the column existed are left out.
    "minutes": st.one_of(minutes, minutes, minutes, st.none()),
    "clerk": st.integers(0, CLERKS_PER_DEPARTMENT - 1),
})


def generated_cases(versions):
    case = st.fixed_dictionaries({
        "version": st.sampled_from(versions),
        "accepted_at": st.one_of(moments, moments, st.none()),
        "ready": st.one_of(st.tuples(moments, st.one_of(minutes, minutes, minutes, st.none())), st.none()),
        "steps": st.dictionaries(st.sampled_from(STEP_KEYS), steps, min_size=1, max_size=5),
    })
    # Sizes drawn first: hypothesis's own list sizes stay small, and a report needs groups of many rows.
    return st.integers(0, 40).flatmap(lambda n: st.lists(case, min_size=n, max_size=n))


periods = st.tuples(st.integers(0, 3), st.integers(0, 7)).map(
    lambda p: (BASE + timedelta(days=p[0]), BASE + timedelta(days=p[0] + p[1])))

EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("versions", [(1,), (1, 2)], ids=["one-version", "two-versions"])
def test_every_figure_matches_a_brute_force_computation(session, versions):
    world = World(session, versions)

    @EXAMPLES
    @given(generated=generated_cases(versions), period=periods, department=st.sampled_from((None, *DEPARTMENTS)),
           width=st.sampled_from([1, 7, 30, 45]), rolled_until=st.one_of(st.none(), st.integers(-1, 11)))
    def check(generated, period, department, width, rolled_until):
        start, end = period
        try:
            flat = insert_cases(session, world, generated)
            if rolled_until is not None:  # the days before it read through the roll-up, the others not
                reports.roll_up(session, now=datetime.combine(BASE + timedelta(days=rolled_until), time(12), CST))
            for group_by in reports.GROUPS:
                limit = None if group_by == "day" else department
                got = reports.elapsed(session, start=start, end=end, group_by=group_by, department=limit)
                assert got == expected_elapsed(world, generated, flat, start, end, group_by, limit), group_by

            opened = defaultdict(int)
            completed = defaultdict(int)
            for data in generated:
                if data["accepted_at"]:
                    opened[hall_day(data["accepted_at"])] += 1
                if data["ready"]:
                    completed[hall_day(data["ready"][0])] += 1
            days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
            assert reports.daily_counts(session, start=start, end=end) == [
                reports.DayCount(day=d, opened=opened[d], completed=completed[d]) for d in days]

            ready = [data["ready"][1] for data in generated if data["ready"] and data["ready"][1] is not None
                     and start <= hall_day(data["ready"][0]) <= end]
            buckets = defaultdict(int)
            for value in ready:
                buckets[math.floor(value / width)] += 1
            expected = [reports.Bucket(lower=i * width, upper=(i + 1) * width, count=buckets[i])
                        for i in range(max(buckets) + 1)] if ready else []
            assert reports.distribution(session, start=start, end=end, width=width) == expected
        finally:
            session.rollback()

    check()


# --- chosen cases ---------------------------------------------------------------------------------


@pytest.fixture
def world(session):
    return World(session, (1,))


def case_with(version=1, ready=None, **steps):
    """One generated case: ``ready=(instant, minutes)``, steps as key=(done_at, minutes[, clerk index])."""
    return {"version": version, "accepted_at": None, "ready": ready,
            "steps": {key: {"done_at": spec[0], "minutes": spec[1], "clerk": spec[2] if len(spec) > 2 else 0}
                      for key, spec in steps.items()}}


def test_percentiles_interpolate_like_percentile_cont(session, world):
    # tax: 10, 20, 30, 40 — median 25 (between the 2nd and 3rd), p90 at position 2.7: 30 + 0.7 × 10 = 37.
    generated = [case_with(tax=(at(2026, 11, 23, 10), value)) for value in (40.0, 10.0, 30.0, 20.0)]
    insert_cases(session, world, generated)
    day = date(2026, 11, 23)
    [tax] = reports.elapsed(session, start=day, end=day, group_by="step")
    assert (tax.group, tax.count, tax.median_minutes, tax.max_minutes) == ("tax", 4, 25.0, 40.0)
    assert tax.p90_minutes == pytest.approx(37.0) and tax.p90_minutes == percentile_cont([10, 20, 30, 40], 0.9)
    assert tax.within_target_pct == 100.0


def test_a_single_row_ties_and_odd_counts(session, world):
    generated = [case_with(registration=(at(2026, 11, 23, 10), 95.0)),
                 *(case_with(seal=(at(2026, 11, 23, 11), 60.0)) for _ in range(3)),
                 case_with(seal=(at(2026, 11, 23, 11), 61.0))]
    insert_cases(session, world, generated)
    day = date(2026, 11, 23)
    by_step = {f.group: f for f in reports.elapsed(session, start=day, end=day, group_by="step")}
    assert by_step["registration"] == reports.Figures("registration", 1, 95.0, 95.0, 95.0, 0.0)
    # 60, 60, 60, 61: median 60, p90 at 2.7 → 60 + 0.7 × 1; 3 of 4 within the 60-minute target.
    seal = by_step["seal"]
    assert (seal.count, seal.median_minutes, seal.max_minutes, seal.within_target_pct) == (4, 60.0, 61.0, 75.0)
    assert seal.p90_minutes == percentile_cont([60.0, 60.0, 60.0, 61.0], 0.9)
    assert set(by_step) == {"registration", "seal"}  # steps with nothing in the period are not listed


def test_a_step_belongs_to_the_hall_date_it_was_done_on(session, world):
    generated = [
        case_with(tax=(at(2026, 11, 23, 23, 30), 10.0)),  # 15:30 UTC on the 23rd: the 23rd
        case_with(tax=(datetime(2026, 11, 23, 15, 59, 59, 999_999, tzinfo=timezone.utc), 20.0)),  # 23:59:59.999999
        case_with(tax=(datetime(2026, 11, 23, 16, 0, tzinfo=timezone.utc), 30.0)),  # midnight: the 24th
        case_with(tax=(at(2026, 11, 23, 0, 0), 40.0)),  # the first instant of the 23rd
        case_with(tax=(at(2026, 11, 22, 23, 59, 59, 999_999), 50.0)),  # the last of the 22nd
        case_with(ready=(at(2026, 11, 23, 23, 59, 59, 999_999), 100.0)),
        case_with(ready=(at(2026, 11, 24, 0, 0), 300.0)),
    ]
    insert_cases(session, world, generated)
    day = date(2026, 11, 23)
    [tax] = reports.elapsed(session, start=day, end=day, group_by="step")
    assert (tax.count, tax.median_minutes, tax.max_minutes) == (3, 20.0, 40.0)
    by_day = reports.elapsed(session, start=day, end=date(2026, 11, 24), group_by="day")
    assert [(f.group, f.count, f.max_minutes, f.within_target_pct) for f in by_day] == [
        ("2026-11-23", 1, 100.0, 100.0), ("2026-11-24", 1, 300.0, 0.0)]
    assert reports.daily_counts(session, start=day, end=day)[0].completed == 1


def test_a_department_sees_only_its_steps_and_clerks(session, world):
    generated = [case_with(tax=(at(2026, 11, 23, 10), 30.0, 1), invoice=(at(2026, 11, 23, 11), 70.0, 0),
                           bank=(at(2026, 11, 23, 10), 45.0, 1))]
    insert_cases(session, world, generated)
    day = date(2026, 11, 23)
    clerks = reports.elapsed(session, start=day, end=day, group_by="clerk", department="taxation")
    assert [(f.group, f.count) for f in clerks] == [("taxati_0", 1), ("taxati_1", 1)]
    departments = reports.elapsed(session, start=day, end=day, group_by="department", department="taxation")
    assert [(f.group, f.count, f.median_minutes, f.within_target_pct) for f in departments] == [
        ("taxation", 2, 50.0, 50.0)]
    assert [f.group for f in reports.elapsed(session, start=day, end=day, group_by="department")] == [
        "bank", "taxation"]


def test_an_empty_period_and_bad_arguments(session, world):
    day = date(2026, 11, 23)
    for group_by in reports.GROUPS:
        assert reports.elapsed(session, start=day, end=day, group_by=group_by) == []
    assert reports.daily_counts(session, start=day, end=day + timedelta(days=2)) == [
        reports.DayCount(day + timedelta(days=i), 0, 0) for i in range(3)]
    assert reports.distribution(session, start=day, end=day) == []
    with pytest.raises(Invalid) as raised:
        reports.elapsed(session, start=day, end=day, group_by="weekday")
    assert "group_by" in raised.value.errors
    with pytest.raises(Invalid) as raised:
        reports.elapsed(session, start=day, end=day - timedelta(days=1), group_by="step")
    assert "from" in raised.value.errors
    with pytest.raises(Invalid):
        reports.distribution(session, start=day, end=day, width=0)


def test_the_figures_come_from_one_grouped_query(session, world, engine):
    """Computed in SQL: one statement aggregates the rows; Python gets one row per group."""
    from sqlalchemy import event

    generated = [case_with(tax=(at(2026, 11, 23, 10), float(i % 97))) for i in range(300)]
    insert_cases(session, world, generated)
    fetched = []

    def count_rows(conn, cursor, statement, parameters, context, executemany):
        if "report_rows" in statement:
            fetched.append(statement)

    event.listen(engine, "after_cursor_execute", count_rows)
    try:
        day = date(2026, 11, 23)
        [tax] = reports.elapsed(session, start=day, end=day, group_by="step")
    finally:
        event.remove(engine, "after_cursor_execute", count_rows)
    assert tax.count == 300 and tax.median_minutes == percentile_cont([float(i % 97) for i in range(300)], 0.5)
    assert len(fetched) == 1 and "GROUP BY" in fetched[0]
    assert ("percentile_cont" in fetched[0]) == (session.get_bind().dialect.name == "postgresql")


# --- end to end: the real operations fix the minutes, the sweep records the breaches -------------


@pytest.fixture
def clock():
    travellers = []

    def move(*args):
        if travellers:
            travellers.pop().stop()
        traveller = time_machine.travel(at(*args), tick=False)
        traveller.start()
        travellers.append(traveller)
        return at(*args)

    yield move
    if travellers:
        travellers.pop().stop()


def sweep(session, now):
    while timers.fire_due(session, now):
        session.commit()
    session.commit()


def complete(session, factory, case, key):
    clerk = factory.clerk(case.step(key).department)
    ops.claim_step(session, case, key, clerk)
    ops.complete_step(session, case, key, clerk, outputs_for(key))
    session.commit()


def test_the_completion_path_fixes_the_minutes_the_report_uses(session, factory, clock):
    clock(2026, 11, 23, 9, 0)  # Monday
    fast = factory.case("in_progress", wants={"seal": False, "invoice": False, "bank": False})
    slow = factory.case("in_progress", wants={"seal": False, "invoice": False, "bank": False})
    clock(2026, 11, 23, 9, 40)
    complete(session, factory, fast, "registration")  # 40 minutes
    clock(2026, 11, 23, 10, 0)
    complete(session, factory, fast, "tax")  # 20 minutes; the case is ready after 60
    ops.suspend_case(session, slow, factory.window, reason="补正材料")
    session.commit()
    clock(2026, 11, 24, 9, 0)
    ops.resume_case(session, slow, factory.window)
    session.commit()
    clock(2026, 11, 24, 11, 0)  # 60 minutes on the 23rd and 120 on the 24th; the suspension does not count
    complete(session, factory, slow, "registration")
    clock(2026, 11, 24, 14, 30)  # 60 before noon, 60 after 13:30
    complete(session, factory, slow, "tax")
    assert fast.state is CaseState.ready and slow.state is CaseState.ready
    monday, tuesday = date(2026, 11, 23), date(2026, 11, 24)
    steps = reports.elapsed(session, start=monday, end=tuesday, group_by="step")
    assert [(f.group, f.count, f.median_minutes, f.max_minutes, f.within_target_pct) for f in steps] == [
        ("registration", 2, 110.0, 180.0, 50.0), ("tax", 2, 70.0, 120.0, 50.0)]
    days = reports.elapsed(session, start=monday, end=tuesday, group_by="day")
    assert [(f.group, f.median_minutes, f.within_target_pct) for f in days] == [
        ("2026-11-23", 60.0, 100.0), ("2026-11-24", 300.0, 0.0)]
    assert reports.daily_counts(session, start=monday, end=tuesday) == [
        reports.DayCount(monday, 2, 1), reports.DayCount(tuesday, 0, 1)]
    assert reports.distribution(session, start=monday, end=tuesday, width=120) == [
        reports.Bucket(0, 120, 1), reports.Bucket(120, 240, 0), reports.Bucket(240, 360, 1)]
    clerks = reports.elapsed(session, start=monday, end=tuesday, group_by="clerk", department="market_regulation")
    assert [(f.group, f.count) for f in clerks] == [(factory.clerk("market_regulation").username, 2)]


def test_breaches_carry_the_holder_and_the_supervisors_reason(session, factory, clock):
    clock(2026, 11, 23, 9, 0)
    case = factory.case("in_progress")
    holder = factory.clerk("market_regulation")
    ops.claim_step(session, case, "registration", holder)
    session.commit()
    sweep(session, at(2026, 11, 23, 10, 31))  # registration's 90 minutes are past
    supervisor = factory.actor("supervisor", "market_regulation")
    notice = session.scalar(select(Notification).where(Notification.kind == "sla_breach"))
    clock(2026, 11, 23, 10, 45)
    ops.mark_read(session, notice.id, supervisor, reason="  系统故障，营业执照打印机停机  ")
    session.commit()
    day = date(2026, 11, 23)
    [breach] = reports.breaches(session, start=day, end=day)
    assert breach == reports.Breach(at=at(2026, 11, 23, 10, 31), case_no=case.case_no, subject="registration",
                                    department="market_regulation", clerk=holder.username, target_minutes=90,
                                    used_minutes=91.0, reason="系统故障，营业执照打印机停机",
                                    acknowledged_by=supervisor.username)
    assert reports.breaches(session, start=day, end=day, department="taxation") == []
    assert reports.breaches(session, start=day + timedelta(days=1), end=day + timedelta(days=1)) == []
    assert [b.subject for b in reports.open_breaches(session)] == ["registration"]

    sweep(session, at(2026, 11, 23, 14, 1))  # the case's 210 minutes too
    assert [(b.subject, b.department, b.clerk, b.reason) for b in reports.breaches(session, start=day, end=day)] == [
        ("case", "service_window", None, None), ("registration", "market_regulation", holder.username,
                                                 "系统故障，营业执照打印机停机")]
    assert [b.subject for b in reports.open_breaches(session, department="service_window")] == ["case"]
    clock(2026, 11, 23, 14, 10)
    ops.complete_step(session, case, "registration", holder, outputs_for("registration"))
    session.commit()
    assert [b.subject for b in reports.open_breaches(session)] == ["case"]  # the step is done
    ops.withdraw_case(session, case, factory.window, reason="申请人撤回")
    session.commit()
    assert reports.open_breaches(session) == []  # the case no longer runs
    assert len(reports.breaches(session, start=day, end=day)) == 2  # history stays

    # A later reason replaces the first; who acknowledged it stays.
    admin = factory.actor("admin", None)
    ops.mark_read(session, notice.id, admin, reason="打印机故障，已报修")
    session.commit()
    later = [b for b in reports.breaches(session, start=day, end=day) if b.subject == "registration"][0]
    assert (later.reason, later.acknowledged_by) == ("打印机故障，已报修", supervisor.username)
    with pytest.raises(Invalid):
        ops.mark_read(session, notice.id, admin, reason="   ")
    with pytest.raises(Invalid):
        ops.mark_read(session, notice.id, admin, reason="x" * 501)


def test_ratings_are_summed_by_score_with_the_follow_ups_open_and_overdue(session, factory, clock):
    clock(2026, 11, 23, 9, 0)
    scores = [5, 5, 4, 2, 1]
    cases = [factory.case("delivered") for _ in scores]
    for case, score in zip(cases[:3], scores[:3]):
        tracking.rate(session, case, score)
    clock(2026, 11, 24, 9, 0)
    for case, score in zip(cases[3:], scores[3:]):
        tracking.rate(session, case, score)
    session.commit()
    first, second = date(2026, 11, 23), date(2026, 11, 24)
    summary = reports.ratings(session, start=first, end=second, now=at(2026, 11, 24, 10))
    assert summary == reports.RatingSummary(count=5, average=3.4, by_score={1: 1, 2: 1, 3: 0, 4: 1, 5: 2}, low=2,
                                            follow_ups_open=2, follow_ups_overdue=0)
    only_first = reports.ratings(session, start=first, end=first, now=at(2026, 11, 24, 10))
    assert (only_first.count, only_first.average, only_first.low) == (3, 4.67, 0)
    # Five working days later both follow-ups are overdue; one answered leaves one.
    later = at(2026, 12, 2, 9, 1)
    assert reports.ratings(session, start=first, end=second, now=later).follow_ups_overdue == 2
    follow_up = tracking.open_follow_ups(session)[0][0]
    tracking.close_follow_up(session, follow_up.id, factory.actor("supervisor", "taxation"), "已致电申请人，问题已解决")
    session.commit()
    closed = reports.ratings(session, start=first, end=second, now=later)
    assert (closed.follow_ups_open, closed.follow_ups_overdue) == (1, 1)
    nothing = reports.ratings(session, start=date(2026, 1, 1), end=date(2026, 1, 2), now=later)
    assert (nothing.count, nothing.average, nothing.by_score) == (0, None, dict.fromkeys(range(1, 6), 0))


# --- the daily roll-up ----------------------------------------------------------------------------


def test_roll_up_counts_each_finished_day_once_and_never_today(session, world):
    generated = [case_with(tax=(at(2026, 11, 20, 10), 30.0)), case_with(tax=(at(2026, 11, 23, 9, 30), 50.0)),
                 case_with(tax=(at(2026, 11, 23, 23, 59), 70.0)), case_with(tax=(at(2026, 11, 24, 0, 30), 40.0))]
    insert_cases(session, world, generated)
    # 00:30 on the 24th: the 23rd has been over for only half an hour, a late commit may still come.
    assert reports.roll_up(session, now=at(2026, 11, 24, 0, 30)) == 3  # the 20th, 21st and 22nd
    assert reports.roll_up(session, now=at(2026, 11, 24, 0, 59)) == 0
    assert reports.roll_up(session, now=at(2026, 11, 24, 1, 0)) == 1  # the 23rd, both of its steps
    rows = session.execute(select(ElapsedRollup.day, ElapsedRollup.minute, ElapsedRollup.count)
                           .order_by(ElapsedRollup.day, ElapsedRollup.minute)).all()
    assert rows == [(date(2026, 11, 20), 30, 1), (date(2026, 11, 23), 50, 1), (date(2026, 11, 23), 70, 1)]
    assert reports.roll_up(session, now=at(2026, 11, 30, 12)) == 6
    # The 24th's step now comes from the roll-up, today's from the steps: the report is the same.
    week = reports.elapsed(session, start=date(2026, 11, 20), end=date(2026, 11, 30), group_by="clerk")
    assert [(f.count, f.median_minutes, f.max_minutes) for f in week] == [(4, 45.0, 70.0)]


def test_two_workers_rolling_at_once_collide_instead_of_counting_twice(engine, session, world):
    insert_cases(session, world, [case_with(seal=(at(2026, 11, 20, 10), 30.0))])
    session.commit()
    with make_sessionmaker(engine)() as first, make_sessionmaker(engine)() as second:
        assert reports.roll_up(first, now=at(2026, 11, 23, 12)) == 3
        first.commit()
        # The second read "nothing rolled" before the first committed: its days collide.
        second.add(RolledDay(day=date(2026, 11, 20), rolled_at=at(2026, 11, 23, 12)))
        with pytest.raises(IntegrityError):
            second.flush()
    assert session.scalar(select(func.sum(ElapsedRollup.count))) == 1
