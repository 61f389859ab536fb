"""Timer workers as separate processes: several at once, and one killed mid-sweep."""
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select, text

from workflow import audit
from workflow.models import Event, Timer

ROOT = Path(__file__).resolve().parents[2]
CST = ZoneInfo("Asia/Shanghai")
LATER = "2026-12-31T09:00:00+08:00"  # every timer of the cases below is due by then


def flask(database_url, *args, **popen):
    env = dict(os.environ, DATABASE_URL=database_url, FLASK_SECRET_KEY="test")
    command = [sys.executable, "-m", "flask", "--app", "wsgi", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def open_cases(factory, count):
    """``count`` accepted cases whose clocks started on a Monday morning (4 timers each)."""
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=CST), tick=False):
        return [factory.case("in_progress") for _ in range(count)]


def assert_each_threshold_recorded_once(session, expected):
    session.expire_all()
    rows = session.execute(
        select(Event.case_id, Event.step, Event.action, func.count()).where(Event.action.like("sla_%"))
        .group_by(Event.case_id, Event.step, Event.action)
    ).all()
    assert len(rows) == expected and all(count == 1 for *_, count in rows)
    assert session.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None))) == 0
    assert audit.verify(session) == []


@pytest.mark.postgres
def test_four_workers_record_a_thousand_thresholds_exactly_once(database_url, engine, session, factory):
    open_cases(factory, 250)
    due = session.scalar(select(func.count()).select_from(Timer))
    assert due == 1000
    session.rollback()  # end this test's own read, which would hold the table too
    # Hold the timers table until all four workers wait on it, so that they really run together.
    with engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE timers IN ACCESS EXCLUSIVE MODE"))
        workers = [flask(database_url, "timers", "sweep", "--now", LATER) for _ in range(4)]
        waiting = 0
        for _ in range(600):
            blocker.execute(text("SELECT pg_stat_clear_snapshot()"))  # stats are a snapshot per transaction
            waiting = blocker.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )).scalar()
            if waiting == 4:
                break
            time.sleep(0.05)
        assert waiting == 4
        blocker.rollback()
    counts = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        counts.append(int(out.strip().splitlines()[-1]))
    assert sum(counts) == 1000
    assert sum(1 for c in counts if c) >= 2  # the work was really shared
    assert_each_threshold_recorded_once(session, 1000)


def test_a_worker_killed_mid_sweep_loses_and_doubles_nothing(database_url, session, factory):
    open_cases(factory, 150)
    total = session.scalar(select(func.count()).select_from(Timer))
    # `timers run` sweeps with the real clock: every threshold of a 2026-11-23 case is long due.
    worker = flask(database_url, "timers", "run", "--interval", "0.2")
    deadline = time.monotonic() + 120
    fired = 0
    while time.monotonic() < deadline:
        session.expire_all()
        fired = session.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_not(None)))
        if fired:
            break
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)  # reap it and close its pipes
    assert 0 < fired  # it had committed at least one batch before it died
    session.expire_all()
    after_kill = session.scalar(select(func.count()).select_from(Event).where(Event.action.like("sla_%")))
    assert after_kill == session.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_not(None)))
    survivor = flask(database_url, "timers", "sweep", "--now", LATER)
    out, err = survivor.communicate(timeout=300)
    assert survivor.returncode == 0, err
    assert after_kill + int(out.strip().splitlines()[-1]) == total
    assert_each_threshold_recorded_once(session, total)
