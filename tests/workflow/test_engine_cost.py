"""What a clerk's action and a timer sweep cost in SQL statements, so the count cannot creep back.

Each action is done as a request does it: a new session, ``get_case(…, lock=True)``, the operation,
a commit. Counted with SQLAlchemy's ``before_cursor_execute`` (psycopg's BEGIN and the COMMIT are
round trips too, but not statements SQLAlchemy sends). ``bench/engine.py`` measured, before this
file, 9 statements per claim and 17–19 per completion on PostgreSQL (the case, its steps and its
suspensions in three SELECTs, two flushes that each updated the case and the step, a query for the
chain's head, two for the calendar, one for the definition, and the timers read, updated and
inserted row by row), and the timer sweep 0.6 statements per timer.

The bounds below are what the engine now needs, statement by statement:

- claim: the lock (with the calendar's stamp), the case with its steps and suspensions, then one
  flush: UPDATE cases, UPDATE steps, INSERT events — 5;
- complete (registration, which opens three steps): the lock, the case, UPDATE cases, UPDATE steps
  for the step done, UPDATE steps for the steps it opens (one executemany), INSERT events (its four
  in one executemany), the timers' upsert — 7;
- SQLite adds ``BEGIN IMMEDIATE`` to each (its write lock stands in for the row lock).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import event, func, select

from workflow import audit, operations as ops, timers
from workflow.calendar_days import calendar_for
from workflow.db import make_sessionmaker
from workflow.models import Event, Notification, Timer
from workflow.operations.calendar import set_calendar_days

from ..factories import outputs_for

CST = ZoneInfo("Asia/Shanghai")


@contextmanager
def statements(engine):
    """The statements ``engine`` sends while the block runs (INSERT events apart: their count varies)."""
    sent: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        sent.append(" ".join(statement.split())[:120])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


def act(engine, case_no, key, actor, action):
    """One clerk's action as a request does it; the statements it sent."""
    maker = make_sessionmaker(engine)
    with statements(engine) as sent, maker() as session:
        case = ops.get_case(session, case_no, lock=True)
        if action == "claim":
            ops.claim_step(session, case, key, actor)
        else:
            ops.complete_step(session, case, key, actor, outputs_for(key))
        session.commit()
    return sent


def split(sent):
    events = [s for s in sent if s.startswith("INSERT INTO events")]
    return [s for s in sent if s not in events], events


def test_a_claim_and_a_completion_cost_a_fixed_handful_of_statements(engine, session, factory):
    case = factory.case("in_progress")
    clerk = factory.clerk("market_regulation")
    sqlite = engine.dialect.name == "sqlite"
    act(engine, factory.case("in_progress").case_no, "registration", clerk, "claim")  # warm the caches

    claim, claim_events = split(act(engine, case.case_no, "registration", clerk, "claim"))
    assert len(claim) == 4 + sqlite and len(claim_events) == 1, "\n".join(claim + claim_events)

    complete, complete_events = split(act(engine, case.case_no, "registration", clerk, "complete"))
    assert len(complete) == 6 + sqlite, "\n".join(complete)
    assert len(complete_events) == 1, "\n".join(complete_events)  # complete and three unblocks, one batch
    assert not any("FROM events" in s or "process_definitions" in s for s in claim + complete)

    session.expire_all()
    case = ops.get_case(session, case.case_no)
    assert case.step("registration").state.value == "done" and case.version == 4
    assert {s.key: s.state.value for s in case.steps[1:]} == {"seal": "ready", "tax": "ready", "invoice": "waiting", "bank": "ready"}
    assert audit.verify(session) == []


def test_the_last_completion_still_joins_and_fixes_the_elapsed_minutes(engine, session, factory):
    case = factory.case("in_progress", wants={"seal": False, "invoice": False, "bank": False})
    factory.finish_steps(case, "registration")
    session.commit()
    clerk = factory.clerk("taxation")
    act(engine, case.case_no, "tax", clerk, "claim")
    sent, _ = split(act(engine, case.case_no, "tax", clerk, "complete"))
    assert len(sent) <= 6 + (engine.dialect.name == "sqlite"), "\n".join(sent)
    session.expire_all()
    case = ops.get_case(session, case.case_no)
    assert case.state.value == "ready" and case.elapsed_minutes is not None
    assert case.step("tax").elapsed_minutes is not None
    assert session.scalar(select(func.count()).select_from(Timer).where(
        Timer.case_id == case.id, Timer.due_at.is_not(None))) == 0  # every clock stopped
    assert audit.verify(session) == []


def test_timers_are_kept_only_for_clocks_that_started_and_fired_ones_keep_their_time(session, factory):
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=CST), tick=False):
        case = factory.case("in_progress")
    rows = lambda: {(t.subject, t.kind): (t.due_at, t.fired_at) for t in session.scalars(  # noqa: E731
        select(Timer).where(Timer.case_id == case.id).execution_options(populate_existing=True))}
    assert set(rows()) == {("case", "warning"), ("case", "breach"),
                           ("registration", "warning"), ("registration", "breach")}
    while timers.fire_due(session, datetime(2026, 11, 23, 10, 8, tzinfo=CST)):
        session.commit()
    warned = rows()[("registration", "warning")]
    assert warned[1] is not None
    with time_machine.travel(datetime(2026, 11, 23, 10, 20, tzinfo=CST), tick=False):
        factory.finish_steps(case, "registration")
        session.commit()
    after = rows()
    assert after[("registration", "warning")] == warned  # fired: its time stays
    assert after[("registration", "breach")] == (None, None)  # the clock stopped
    assert {s for s, _ in after} == {"case", "registration", "seal", "tax", "bank"}  # invoice waits
    assert all(due is not None for (s, _), (due, _) in after.items() if s in ("seal", "tax", "bank"))


def test_a_sweep_costs_the_same_few_statements_for_one_timer_or_many(engine, session, factory):
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=CST), tick=False):
        cases = [factory.case("in_progress") for _ in range(6)]
    maker = make_sessionmaker(engine)
    now = datetime(2026, 11, 23, 14, 1, tzinfo=CST)  # every case and registration timer is due
    with statements(engine) as sent, maker() as worker:
        fired = timers.fire_due(worker, now)
        worker.commit()
    assert fired == 6 * 4
    # The lock, the claim, the steps, the suspensions, the events, the notifications, the cases'
    # heads and statuses, the steps' statuses; SQLite reads the chain heads again after the claim.
    assert len(sent) <= 8 + (engine.dialect.name == "sqlite"), "\n".join(sent)
    assert session.scalar(select(func.count()).select_from(Event).where(Event.action.like("sla_%"))) == 24
    assert session.scalar(select(func.count()).select_from(Notification)) == 24
    session.expire_all()
    for case in cases:
        case = ops.get_case(session, case.case_no)
        assert case.sla_status == "breached" and case.step("registration").sla_status == "breached"
        assert case.chain_seq == 7  # submit, accept, unblock, then the four timer events: heads written
    assert audit.verify(session) == []
    with maker() as worker:
        assert timers.fire_due(worker, now) == 0


def test_objects_the_session_holds_read_the_sweeps_statuses(session, factory):
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=CST), tick=False):
        case = factory.case("in_progress")
    assert case.sla_status == "on_track"
    assert timers.fire_due(session, datetime(2026, 11, 23, 14, 1, tzinfo=CST)) == 4
    assert case.sla_status == "breached" and case.step("registration").sla_status == "breached"
    assert case.chain_seq == session.scalar(select(func.max(Event.seq)).where(Event.case_id == case.id))
    session.commit()


def test_a_calendar_change_reaches_a_sessions_next_transaction(engine, session, factory):
    """The calendar is checked once per transaction (kept for the rest of it), not once per process."""
    admin = factory.actor("admin", None)
    maker = make_sessionmaker(engine)
    day = datetime(2026, 11, 30, tzinfo=CST).date()
    with maker() as reader:
        assert calendar_for(reader).day(day).value is True
        set_calendar_days(session, admin, [{"day": day, "kind": "holiday", "name": "台风停工"}])
        session.commit()
        assert calendar_for(reader).day(day).value is True  # the calendar this transaction checked
        reader.commit()
        assert calendar_for(reader).day(day).value is False  # the next transaction sees the change


def test_a_locked_case_holds_sqlites_write_lock_until_the_commit(engine, session, factory):
    """On SQLite ``lock=True`` is a real lock: another writer waits (here: gives up at once)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's row lock is covered by test_concurrency")
    case = factory.case("in_progress")
    maker = make_sessionmaker(engine)
    with maker() as holder:
        ops.get_case(holder, case.case_no, lock=True)
        outcome = []

        def other_writer():
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA busy_timeout = 0")
                try:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                    outcome.append("got it")
                    connection.exec_driver_sql("ROLLBACK")
                except Exception as error:  # noqa: BLE001 - sqlite3.OperationalError, wrapped
                    outcome.append(str(error))

        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join(timeout=10)
        assert outcome and "locked" in outcome[0]
        holder.rollback()
