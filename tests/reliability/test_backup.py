"""Data safety: `flask backup` while the hall works, and `flask restore` that proves every chain first.

On SQLite the backup is SQLite's online backup; on PostgreSQL, pg_dump (the tests run there when
TEST_DATABASE_URL is set, restoring into databases they make on the same server).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from workflow import accounts, audit, backup as backups, operations as ops, timers
from workflow.clock import utcnow
from workflow.db import make_engine, make_sessionmaker
from workflow.models import Case, Event, Notification, Timer

from ..conftest import ON_POSTGRES
from ..factories import application, bypass_append_only, outputs_for

STATES = ("submitted", "in_progress", "suspended", "ready", "delivered", "rejected")
# A case's whole life at the window and the agencies, one committed action at a time.
SCRIPT = (("accept",), ("claim", "registration"), ("complete", "registration"), ("suspend",), ("resume",),
          ("claim", "tax"), ("claim", "seal"), ("complete", "tax"), ("release", "seal"), ("claim", "seal"),
          ("complete", "seal"), ("claim", "invoice"), ("complete", "invoice"), ("claim", "bank"),
          ("complete", "bank"), ("deliver",))
BACKUPS = 6  # taken 10 of the hall's commits apart while it works, each restored and checked

needs_pg_tools = pytest.mark.skipif(ON_POSTGRES and not (shutil.which("pg_dump") and shutil.which("pg_restore")),
                                    reason="pg_dump and pg_restore are not on PATH")


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch):
    """These tests make staff to act on cases, not to sign in: argon2's test profile, not 64 MiB a user."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def backup_file(tmp_path, n: int = 1):
    folder = tmp_path / "backups"
    folder.mkdir(exist_ok=True)
    return folder / (f"onewindow-{n}.dump" if ON_POSTGRES else f"onewindow-{n}.sqlite3")


def cases_of(url: str) -> dict[str, tuple]:
    """Every case as (version, state, its steps' states), by case number."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return {case.case_no: _shape(case) for case in session.scalars(select(Case))}
    finally:
        engine.dispose()


def _shape(case) -> tuple:
    return case.version, case.state.value, tuple(sorted((s.key, s.state.value) for s in case.steps))


def timer_bookkeeping(url: str) -> dict[int, tuple[int, int, int]]:
    """Per case: fired timers, threshold events in its chain, threshold notifications (one each per firing)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = defaultdict(lambda: [0, 0, 0])
            for i, query in enumerate((
                select(Timer.case_id, func.count()).where(Timer.fired_at.is_not(None)).group_by(Timer.case_id),
                select(Event.case_id, func.count()).where(Event.action.like("sla_%")).group_by(Event.case_id),
                select(Notification.case_id, func.count()).where(Notification.kind.like("sla_%"))
                .group_by(Notification.case_id),
            )):
                for case_id, count in conn.execute(query):
                    rows[case_id][i] = count
            return {case_id: tuple(counts) for case_id, counts in rows.items()}
    finally:
        engine.dispose()


class Hall(threading.Thread):
    """A window clerk and the agencies taking cases through their lives, committing every action, and
    noting every committed shape of every case they touch."""

    def __init__(self, url, factory):
        super().__init__(daemon=True)
        self.url, self.stop, self.errors = url, threading.Event(), []
        self.window = factory.window
        self.clerks = {d: factory.clerk(d) for d in ("market_regulation", "public_security", "taxation", "bank")}
        self.shapes: dict[str, set] = defaultdict(set)
        self.commits = 0

    def run(self):
        engine = make_engine(self.url)
        try:
            with make_sessionmaker(engine)() as session:
                while not self.stop.is_set():
                    case = ops.submit_case(session, self.window, application())
                    self._commit(session, case)
                    for action in SCRIPT:
                        if self.stop.is_set():
                            break
                        case = ops.get_case(session, case.case_no, lock=True)
                        self._act(session, case, *action)
                        self._commit(session, case)
        except Exception as error:  # noqa: BLE001 - handed to the test, which fails on it
            self.errors.append(error)
        finally:
            engine.dispose()

    def _act(self, session, case, action, step=None):
        clerk = self.clerks.get(case.step(step).department) if step else None
        if action == "accept":
            ops.accept_case(session, case, self.window)
        elif action == "suspend":
            ops.suspend_case(session, case, self.window, reason="补正材料")
        elif action == "resume":
            ops.resume_case(session, case, self.window)
        elif action == "deliver":
            ops.deliver_case(session, case, self.window, method="counter")
        elif action == "claim":
            ops.claim_step(session, case, step, clerk)
        elif action == "release":
            ops.release_step(session, case, step, clerk)
        else:
            ops.complete_step(session, case, step, clerk, outputs_for(step))

    def _commit(self, session, case):
        session.commit()
        self.shapes[case.case_no].add(_shape(case))
        self.commits += 1


class TimerWorker(threading.Thread):
    """The timer worker, a month ahead: every threshold of every running clock is due, and fires."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stop, self.errors, self.fired = url, threading.Event(), [], 0

    def run(self):
        engine = make_engine(self.url)
        try:
            with make_sessionmaker(engine)() as session:
                while not self.stop.is_set():
                    self.fired += timers.fire_due(session, utcnow() + timedelta(days=30))
                    session.commit()
                    time.sleep(0.005)
        except Exception as error:  # noqa: BLE001 - handed to the test, which fails on it
            self.errors.append(error)
        finally:
            engine.dispose()


@pytest.mark.slow
@needs_pg_tools
def test_backups_taken_while_the_hall_works_restore_whole_and_verified(app, database_url, factory, tmp_path,
                                                                       blank_database, monkeypatch):
    before = {}
    for state in STATES * 4:
        case = factory.case(state)
        before[case.case_no] = _shape(case)
    # Count the commits made while each backup command ran, and while it read the database itself.
    during_commands, during_reads, copy_pages, dump = [], [], backups._copy_pages, backups._run

    def writes():
        return hall.commits + worker.fired

    def counted(step, reads_the_database=lambda *args: True):
        def wrapper(*args, **kwargs):
            start = writes()
            try:
                return step(*args, **kwargs)
            finally:
                if reads_the_database(*args):
                    during_reads.append(writes() - start)
        return wrapper

    def wait_for_work(commits=10):
        """Let the hall move on between backups, however loaded the machine."""
        goal, give_up = hall.commits + commits, time.monotonic() + 60
        while hall.commits < goal and hall.is_alive() and time.monotonic() < give_up:
            time.sleep(0.01)

    monkeypatch.setattr(backups, "_copy_pages", counted(copy_pages))
    monkeypatch.setattr(backups, "_run", counted(dump, lambda command, env, what: what == "pg_dump"))
    hall, worker = Hall(database_url, factory), TimerWorker(database_url)
    hall.start()
    worker.start()
    paths = []
    try:
        wait_for_work()
        for n in range(1, BACKUPS + 1):
            paths.append(backup_file(tmp_path, n))
            start = writes()
            result = run(app, "backup", str(paths[-1]))
            during_commands.append(writes() - start)
            assert result.exit_code == 0, result.output
            assert "backed up to" in result.output
            wait_for_work()
    finally:
        hall.stop.set()
        worker.stop.set()
        hall.join(60)
        worker.join(60)
    assert hall.errors == [] and worker.errors == []
    assert hall.commits >= 10 * (BACKUPS + 1) and worker.fired > 0, "the hall and the timer worker were writing"
    assert sum(during_commands) > 0, "the hall kept committing while backups were taken"
    reads = list(during_reads)  # the restores below copy pages too: not counted
    live = cases_of(database_url)

    restored_counts = []
    for path in paths:
        target = blank_database("restore")
        result = run(app, "restore", str(path), "--to", target)
        assert result.exit_code == 0, result.output
        restored = cases_of(target)
        restored_counts.append(len(restored))
        assert f"cases: {len(restored)}" in result.output
        assert f"chains verified: {len(restored)} of {len(restored)}" in result.output
        # The backup is one moment of the hall: every case as it was after one of its commits, with
        # its steps; the cases made before are exactly as they were; its chains and timers agree.
        assert set(before) <= set(restored) <= set(live)
        for case_no, shape in restored.items():
            assert shape == before[case_no] if case_no in before else shape in hall.shapes[case_no], case_no
        for case_id, (fired, events, notes) in timer_bookkeeping(target).items():
            assert fired == events == notes, case_id
        engine = make_engine(target)
        with make_sessionmaker(engine)() as session:
            assert audit.verify(session) == []
            assert session.scalar(select(func.count()).select_from(Event)) == \
                session.scalar(select(func.sum(Case.chain_seq)))
        engine.dispose()
    assert restored_counts == sorted(restored_counts) and restored_counts[0] < restored_counts[-1], \
        "later backups hold more of the hall's work"
    print(f"\nbackups: {len(paths)}; hall commits {hall.commits}, thresholds fired {worker.fired}, "
          f"commits while each backup ran: {during_commands}, while it read the database: {reads}; "
          f"cases restored {restored_counts}")


def _tamper_sqlite_backup(path, case_no: str, *, keep_triggers: bool) -> None:
    """Edit one event of a backup file as someone with the file would: around the triggers."""
    with sqlite3.connect(path) as conn:
        triggers = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'").fetchall()
        for (sql,) in triggers:
            conn.execute(f"DROP TRIGGER {sql.split()[2]}")
        conn.execute("UPDATE events SET actor = 'mallory' WHERE id = (SELECT min(e.id) FROM events e "
                     "JOIN cases c ON c.id = e.case_id WHERE c.case_no = ? AND e.seq = 2)", (case_no,))
        if keep_triggers:
            for (sql,) in triggers:
                conn.execute(sql)
    conn.close()


@needs_pg_tools
def test_a_tampered_backup_fails_verification_and_is_not_used(app, database_url, session, factory, tmp_path,
                                                              blank_database):
    cases = [factory.case(state) for state in STATES]
    victim = cases[3].case_no
    path = backup_file(tmp_path)
    if ON_POSTGRES:  # the dump is compressed: change the row before pg_dump reads it
        bypass_append_only(session)
        session.execute(text("UPDATE events SET actor = 'mallory' WHERE case_id = :id AND seq = 2"),
                        {"id": cases[3].id})
        session.commit()
        assert run(app, "backup", str(path)).exit_code == 0
    else:
        assert run(app, "backup", str(path)).exit_code == 0
        _tamper_sqlite_backup(path, victim, keep_triggers=True)
    target = blank_database("restore")
    result = run(app, "restore", str(path), "--to", target)
    assert result.exit_code == 1
    assert f"1 of {len(cases)} audit chains do not verify" in result.output
    assert f"{victim} at event #2: content does not match its hash" in result.output
    assert f"chains verified: {len(cases) - 1} of {len(cases)}" in result.output
    if ON_POSTGRES:
        assert "was restored but must not be used" in result.output
    else:
        assert "was not restored" in result.output
        assert not os.path.exists(make_url(target).database), "a failed restore leaves no database behind"


def test_a_backup_whose_audit_trail_lost_its_triggers_is_not_restored(app, factory, tmp_path, blank_database):
    if ON_POSTGRES:
        pytest.skip("pg_dump carries the triggers; a dump without them is the same check (SQLite shows it)")
    factory.case("ready")
    path = backup_file(tmp_path)
    assert run(app, "backup", str(path)).exit_code == 0
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
    conn.close()
    result = run(app, "restore", str(path), "--to", blank_database("restore"))
    assert result.exit_code == 1
    assert "accepts UPDATE (the append-only triggers are missing)" in result.output


@needs_pg_tools
def test_restore_replaces_a_database_with_data_only_when_forced(app, database_url, factory, tmp_path):
    kept = factory.case("ready")
    path = backup_file(tmp_path)
    assert run(app, "backup", str(path)).exit_code == 0
    later = factory.case("in_progress")  # work done after the backup
    result = run(app, "restore", str(path))
    assert result.exit_code == 1 and "pass --force" in result.output
    assert set(cases_of(database_url)) == {kept.case_no, later.case_no}, "refused: nothing changed"
    result = run(app, "restore", str(path), "--force")
    assert result.exit_code == 0, result.output
    assert "chains verified: 1 of 1" in result.output
    assert cases_of(database_url) == {kept.case_no: _shape(kept)}
    assert run(app, "audit", "verify").exit_code == 0


@needs_pg_tools
def test_backup_does_not_overwrite_a_file_unless_forced(app, factory, tmp_path):
    factory.case("submitted")
    path = backup_file(tmp_path)
    assert run(app, "backup", str(path)).exit_code == 0
    first = path.read_bytes()
    factory.case("submitted")
    result = run(app, "backup", str(path))
    assert result.exit_code == 1 and "pass --force" in result.output
    assert path.read_bytes() == first
    result = run(app, "backup", str(path), "--force")
    assert result.exit_code == 0 and "cases: 2 (submitted 2)" in result.output
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no partial files or -wal left beside it"


def test_a_backup_from_before_a_migration_is_brought_to_this_schema(app, database_url, factory, tmp_path,
                                                                    blank_database):
    if ON_POSTGRES:
        pytest.skip("downgrading the shared test database would disturb the other tests; SQLite shows it")
    case = factory.case("delivered")
    assert run(app, "db", "downgrade", "f3b9c2d41a07").exit_code == 0
    path = backup_file(tmp_path)
    result = run(app, "backup", str(path))
    assert result.exit_code == 0, result.output
    assert "schema f3b9c2d41a07" in result.output
    target = blank_database("restore")
    result = run(app, "restore", str(path), "--to", target)
    assert result.exit_code == 0, result.output
    assert "chains verified: 1 of 1" in result.output
    assert cases_of(target) == {case.case_no: _shape(case)}
    engine = make_engine(target)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "d7e1a0c4b9f2"
        assert conn.scalar(text("SELECT count(*) FROM elapsed_rollup")) == 0  # the table is back
    engine.dispose()


def test_without_pg_dump_the_commands_explain_how_to_do_it_by_hand(tmp_path, monkeypatch):
    from api import create_app

    monkeypatch.setattr(backups, "pg_tool", lambda name: None)
    app = create_app({"DATABASE_URL": "postgresql+psycopg://hall:s3cret@db.example:5432/onewindow",
                      "SECRET_KEY": "t", "TESTING": True})
    result = run(app, "backup", str(tmp_path / "hall.dump"))
    assert result.exit_code == 1
    for words in ("pg_dump --format=custom --file=", "hall.dump", "postgresql://hall:***@db.example:5432/onewindow",
                  "pg_restore --exit-on-error --single-transaction", "audit verify"):
        assert words in result.output
    assert "s3cret" not in result.output
    assert not (tmp_path / "hall.dump").exists()
    (tmp_path / "hall.dump").write_bytes(b"PGDMP" + bytes(100))
    result = run(app, "restore", str(tmp_path / "hall.dump"))
    assert result.exit_code == 1 and "pg_restore --exit-on-error" in result.output


def test_restore_refuses_what_is_not_a_backup(app, tmp_path, blank_database):
    junk = tmp_path / "notes.txt"
    junk.write_text("营业执照 not a database")
    result = run(app, "restore", str(junk), "--to", blank_database("restore"))
    assert result.exit_code == 1
    assert "neither an SQLite database nor a pg_dump archive" in result.output
