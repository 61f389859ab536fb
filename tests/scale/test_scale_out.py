"""Scale-out, shown: two gunicorn servers and two timer workers on one PostgreSQL database.

As docs/deploy.md describes a release: a new database migrated with ``flask db upgrade``, two app
servers (2 gthread workers × 4 threads each) sharing it and one redis for the rate limits, and two
``flask timers run`` workers. Eight client threads drive 200 cases through the REST API with bearer
tokens, every request to the other server than the one before: submit, accept, claim and complete
each wanted step, deliver — or stop early, so that some cases stay open, suspended or rejected.
Every action sends ``If-Match`` with the version the previous answer gave; deliveries carry an
``Idempotency-Key``, repeated on the other server for every fourth case.

The servers' clock is set a week back, to a Monday's opening (the app takes the time only from
Python's clock, contract section 2); the timer workers run on the real clock. So for the workers
every clock still running is past both its thresholds: each sweep fires whatever is running while
the clerks work the same cases, and a case left open has all its running clocks' timers fired.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.pool import NullPool

from tests.factories import application, clerk_tokens
from workflow import audit
from workflow.db import make_engine, make_sessionmaker
from workflow.demo import STEP_OUTPUTS, registration_outputs
from workflow.models import Case, Event, Notification, Timer

from .conftest import ROOT, flask_command, free_port, wait_until_serving

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CST = ZoneInfo("Asia/Shanghai")
# The servers' "now" when they start: a Monday's opening, more than a week before the real now.
SERVER_START = datetime(2026, 11, 16, 9, 0, tzinfo=CST)
CASES = 200
CLIENTS = 8
THREADS_PER_WORKER = 4  # each server: 2 gthread workers with this many threads
SWEEP_INTERVAL = "0.5"
# What each step needs (contract section 1), to count the engine's own events independently of it.
NEEDS = {"registration": (), "seal": ("registration",), "tax": ("registration",), "invoice": ("tax",),
         "bank": ("registration",)}
OPTIONAL = ("seal", "invoice", "bank")
DEPARTMENT = {"registration": "market_regulation", "seal": "public_security", "tax": "taxation",
              "invoice": "taxation", "bank": "bank"}
WANTS = ({"seal": True, "invoice": True, "bank": True}, {}, {"seal": True, "bank": True}, {"invoice": True})
FINAL_STATE = {"delivered": "delivered", "open": "in_progress", "working": "in_progress",
               "suspended": "suspended", "rejected": "rejected"}


@dataclass
class Plan:
    """Where one case is taken, and what was done to it on the way."""

    index: int
    outcome: str  # delivered, open (accepted only), working (a step held), suspended, rejected
    wanted: tuple[str, ...]
    case_no: str = ""
    version: int = 0
    actions: int = 0  # successful state-changing requests, the submission included
    done: list[str] = field(default_factory=list)
    accepted: bool = False

    def expected_events(self) -> int:
        """One event per action, one per step unblocked, one for the join (timers come on top)."""
        if not self.accepted:
            return self.actions
        unblocked = [s for s in self.wanted if all(n in self.done or n not in self.wanted for n in NEEDS[s])]
        return self.actions + len(unblocked) + (set(self.done) == set(self.wanted))

    def running(self) -> list[str | None]:
        """The clocks still running at the end (None: the case's own)."""
        if self.outcome == "open":
            return [None, "registration"]
        if self.outcome == "working":
            return [None, "tax", *[s for s in ("seal", "bank") if s in self.wanted]]
        return []


def plan(index: int) -> Plan:
    if index % 50 == 7:
        outcome = "rejected"
    elif index % 10 == 0:
        outcome = "open"
    elif index % 20 == 5:
        outcome = "working"
    elif index % 20 == 15:
        outcome = "suspended"
    else:
        outcome = "delivered"
    wants = WANTS[index % len(WANTS)]
    return Plan(index, outcome, ("registration", "tax") + tuple(s for s in OPTIONAL if wants.get(s)))


class Api:
    """One client thread's calls: each goes to the other server than the one before."""

    def __init__(self, ports: list[int], answers: list, turn: int = 0):
        self.ports, self.answers, self.turn = ports, answers, turn

    def call(self, method: str, path: str, token: str | None = None, body=None, headers=None, expect=200):
        port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        sent = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request(method, f"/api/v1{path}", json.dumps(body) if body is not None else None, sent)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        self.answers.append((port, response.status))
        assert response.status == expect, f"{method} {path} on :{port} -> {response.status} {raw[:500]!r}"
        return response, json.loads(raw) if raw else None


def act(api: Api, p: Plan, token: str, path: str, body=None, headers=None) -> dict:
    """One action on the case, sent with the version last seen; the version must move on by one."""
    response, case = api.call("POST", f"/cases/{p.case_no}{path}", token, body if body is not None else {},
                              {"If-Match": f'"{p.version}"', **(headers or {})})
    assert case["version"] == p.version + 1 and response.headers["ETag"] == f'"{p.version + 1}"', (path, case)
    p.version, p.actions = case["version"], p.actions + 1
    return case


def drive(p: Plan, api: Api, tokens: dict[str, str]) -> Plan:
    rng = random.Random(p.index)
    window = tokens["service_window"]
    body = application(wants={step: True for step in p.wanted if step in OPTIONAL})
    body["company"] = {**body["company"], "name": f"广州市白云区扩容{p.index:03d}号科技有限公司"}
    _, case = api.call("POST", "/cases", window, body, expect=201)
    p.case_no, p.version, p.actions = case["case_no"], case["version"], 1
    assert (case["state"], p.version) == ("submitted", 1)
    if p.outcome == "rejected":
        assert act(api, p, window, "/reject", {"reason": "名称与已登记企业重复"})["state"] == "rejected"
        return p
    assert act(api, p, window, "/accept", {"missing_materials": []})["state"] == "in_progress"
    p.accepted = True
    if p.outcome == "open":
        return p

    def work(step: str, complete: bool = True) -> dict:
        clerk = tokens[DEPARTMENT[step]]
        case = act(api, p, clerk, f"/steps/{step}/claim")
        if complete:
            outputs = registration_outputs(rng) if step == "registration" else STEP_OUTPUTS[step](rng)
            case = act(api, p, clerk, f"/steps/{step}/complete", outputs)
            p.done.append(step)
        return case

    work("registration")
    if p.outcome == "working":
        work("tax", complete=False)
        return p
    if p.outcome == "suspended":
        assert act(api, p, window, "/suspend", {"reason": "补正股东会决议原件"})["state"] == "suspended"
        return p
    rest = [s for s in ("seal", "tax", "bank") if s in p.wanted]
    rng.shuffle(rest)
    if "invoice" in p.wanted:
        rest.insert(rng.randint(rest.index("tax") + 1, len(rest)), "invoice")
    for step in rest:
        case = work(step)
    assert case["state"] == "ready", case
    delivery = {"method": "counter"} if p.index % 3 else {"method": "mail", "tracking_no": f"SF{p.index:010d}"}
    key = {"Idempotency-Key": f"deliver-{p.case_no}"}
    delivered = act(api, p, window, "/deliver", delivery, key)
    assert delivered["state"] == "delivered"
    if p.index % 4 == 0:  # the same key on the other server: the first answer again, nothing done twice
        again, replayed = api.call("POST", f"/cases/{p.case_no}/deliver", window, delivery, key)
        assert again.headers["Idempotent-Replayed"] == "true" and replayed == delivered
    return p


class ConnectionPeak(threading.Thread):
    """Samples how many connections the servers and workers hold on the database, until stopped.

    ``peak`` counts what stayed open from one sample to the next, 0.2 s later: the pools keep
    their connections for reuse, while a backend whose client has just gone (a worker gunicorn
    replaced on a loaded machine) can still show for an instant. ``instant_peak`` is the raw
    maximum of single samples, reported beside it.
    """

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.engine = make_engine(url, poolclass=NullPool)
        self.peak, self.instant_peak, self.done = 0, 0, threading.Event()

    def run(self) -> None:
        previous = 0
        with self.engine.connect() as connection:
            while not self.done.wait(0.2):
                connection.rollback()  # pg_stat_activity is a snapshot per transaction
                now = connection.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"))
                self.peak = max(self.peak, min(previous, now))
                self.instant_peak, previous = max(self.instant_peak, now), now

    def stop(self) -> int:
        self.done.set()
        self.join(10)
        self.engine.dispose()
        return self.peak


def deploy(database_url: str, redis_url: str, processes) -> tuple[list[int], dict[str, str]]:
    """Migrate, start two servers and two timer workers, and make the clerks; return ports and tokens."""
    shift = (SERVER_START - datetime.now(timezone.utc)).total_seconds()
    assert shift < -7 * 24 * 3600, "the servers' clock must be more than a week behind the workers'"
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_SECRET_KEY": "scale-out-shared-secret",
           "FLASK_RATELIMIT_STORAGE_URI": redis_url, "PYTHONUNBUFFERED": "1"}
    migrated = subprocess.run(flask_command("db", "upgrade"), cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    ports = [free_port(), free_port()]
    for n, port in enumerate(ports, 1):
        processes.start(f"server{n}", [
            sys.executable, "-m", "tests.scale.clocked", str(shift), "--workers", "2", "--worker-class", "gthread",
            "--threads", str(THREADS_PER_WORKER), "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app",
        ], env)
    for n in (1, 2):
        processes.start(f"timers{n}", flask_command("timers", "run", "--interval", SWEEP_INTERVAL), env)
    tokens = clerk_tokens(database_url, "1", "scale")  # while they start
    for n, port in enumerate(ports, 1):
        wait_until_serving(processes, f"server{n}", port)
    return ports, tokens


def wait_for_due_timers(session, seconds: float = 30) -> None:
    """Give the workers time to fire what the last actions left due."""
    deadline = time.monotonic() + seconds
    while session.scalar(select(func.count()).select_from(Timer)
                         .where(Timer.fired_at.is_(None), Timer.due_at.is_not(None))):
        assert time.monotonic() < deadline, "due timers left unfired"
        session.rollback()
        time.sleep(0.2)


def test_two_servers_and_two_timer_workers_share_one_database(fresh_database, shared_redis, processes):
    started = time.monotonic()
    ports, tokens = deploy(fresh_database, shared_redis, processes)
    ready = time.monotonic()

    answers: list = []
    connections = ConnectionPeak(fresh_database)
    connections.start()
    apis, local = [Api(ports, answers, turn=i) for i in range(CLIENTS)], threading.local()

    def run(p: Plan) -> Plan:
        if not hasattr(local, "api"):
            local.api = apis.pop()
        return drive(p, local.api, tokens)

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            plans = list(pool.map(run, [plan(i) for i in range(CASES)]))
    finally:
        peak_connections = connections.stop()
    driven, drive_ended = time.monotonic(), datetime.now(timezone.utc)

    engine = make_engine(fresh_database)
    try:
        with make_sessionmaker(engine)() as session:
            wait_for_due_timers(session)
            drained = time.monotonic()
            # An applicant guessing codes is counted in redis, by both servers together.
            tracker = Api(ports, answers)
            guesses = [404] * 10 + [429] * 2
            misses = [tracker.call("GET", f"/track?case_no={plans[0].case_no}&code=W{n:09d}", expect=status)[0]
                      for n, status in enumerate(guesses)]
            assert [response.status for response in misses] == guesses
            # Both servers give the trail the database holds (every fourth case, read in parallel).
            sample = plans[::4]
            readers = [Api(ports, answers, turn=i) for i in range(len(sample))]
            with ThreadPoolExecutor(CLIENTS) as pool:
                read = pool.map(lambda n: readers[n].call("GET", f"/cases/{sample[n].case_no}/events",
                                                          tokens["service_window"])[1], range(len(sample)))
                trails = dict(zip((p.case_no for p in sample), read))
            session.rollback()
            cases = {c.case_no: c for c in session.scalars(select(Case))}
            events = session.execute(select(Event.case_id, Event.seq, Event.step, Event.action)).all()
            timers = session.scalars(select(Timer)).all()
            notes = session.execute(select(Notification.case_id, Notification.subject, Notification.kind)
                                    .where(Notification.kind.like("sla_%"))).all()
            broken = audit.verify(session)
    finally:
        engine.dispose()
    stopped = processes.stop_all()
    finished = time.monotonic()

    # No 5xx (every call also asserted the status it expected), and both servers served half.
    assert not [status for _, status in answers if status >= 500]
    per_server = Counter(port for port, _ in answers)
    assert set(per_server) == set(ports) and min(per_server.values()) > 0.45 * len(answers)
    # Each gthread worker holds at most a connection per thread, each timer worker one.
    assert peak_connections <= 2 * 2 * THREADS_PER_WORKER + 2
    # Every case is where its plan left it, at the version its actions imply.
    assert len(cases) == CASES
    for p in plans:
        assert (cases[p.case_no].state.value, cases[p.case_no].version) == (FINAL_STATE[p.outcome], p.actions), p
    # Every event once: no (case, seq) twice, every chain verifies, and each case has the events
    # its actions imply plus one per timer fired on it.
    assert len({(e.case_id, e.seq) for e in events}) == len(events)
    assert broken == []
    fired = [t for t in timers if t.fired_at is not None]
    fired_per_case, events_per_case = Counter(t.case_id for t in fired), Counter(e.case_id for e in events)
    for p in plans:
        case_id = cases[p.case_no].id
        assert events_per_case[case_id] == p.expected_events() + fired_per_case[case_id], p
        if p.case_no in trails:
            assert [e["seq"] for e in trails[p.case_no]] == list(range(1, events_per_case[case_id] + 1))
    # Every timer that came due fired, once: one event and one notification each, none without a timer.
    assert all(t.due_at is None for t in timers if t.fired_at is None)
    fired_keys = Counter((t.case_id, None if t.subject == "case" else t.subject, f"sla_{t.kind}") for t in fired)
    sla_events = Counter((e.case_id, e.step, e.action) for e in events if e.action.startswith("sla_"))
    assert sla_events == fired_keys and set(sla_events.values()) == {1}
    assert Counter((n.case_id, None if n.subject == "case" else n.subject, n.kind) for n in notes) == fired_keys
    # A case left open has every running clock past both thresholds: all of those fired.
    for p in plans:
        for subject in p.running():
            for kind in ("sla_warning", "sla_breach"):
                assert (cases[p.case_no].id, subject, kind) in fired_keys, (p, subject, kind)
    # Both workers fired some (each prints what it fired per sweep), and no sweep failed.
    by_worker = []
    for n in (1, 2):
        log = processes.log(f"timers{n}")
        assert "sweep failed" not in log and "Traceback" not in log, log[-3000:]
        by_worker.append(sum(int(x) for x in re.findall(r" fired (\d+)$", log, re.MULTILINE)))
    assert sum(by_worker) == len(fired) and min(by_worker) > 0, by_worker
    # Everything stopped cleanly on SIGTERM.
    assert set(stopped.values()) == {0}, processes.logs()

    while_working = sum(1 for t in fired if t.fired_at <= drive_ended)
    print(f"\n{CASES} cases {dict(Counter(p.outcome for p in plans))}; {len(answers)} requests "
          f"{dict(Counter(status for _, status in answers))}, {sorted(per_server.values())} per server; "
          f"{len(events)} events; {len(fired)} timers fired ({while_working} while the clerks worked; "
          f"{' + '.join(map(str, by_worker))} by worker), {len(timers) - len(fired)} disarmed before a sweep; "
          f"peak {peak_connections} database connections held ({connections.instant_peak} in one sample). Start {ready - started:.1f} s, "
          f"drive {driven - ready:.1f} s, drain {drained - driven:.1f} s, "
          f"checks and stop {finished - drained:.1f} s, total {finished - started:.1f} s")
