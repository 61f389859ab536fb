"""Crash drill: the app and its timer workers under load, killed with SIGKILL and restarted, then checked.

    .venv/bin/python tests/reliability/crash_drill.py --database sqlite --kills 20
    bin/with-postgres .venv/bin/python tests/reliability/crash_drill.py --database postgres --kills 20

What runs is what ``make run`` and docs/deploy.md run: ``gunicorn wsgi:app`` (2 gthread workers × 4
threads) and two ``flask timers run --interval 0.5`` timer workers, every process with the same
environment (``FLASK_SECRET_KEY`` included), on one database: a PostgreSQL database made for the drill
beside ``TEST_DATABASE_URL`` (or ``DATABASE_URL``), or a SQLite file in WAL mode shared by every process.

Client threads drive cases through the REST API as window and agency clerks: submit, accept, claim,
release, complete, suspend, resume, withdraw, reject, refuse and deliver. Every POST carries an
``Idempotency-Key`` and ``If-Match`` with the version last seen; when the connection fails the client
sends the same request again, with the same key, until it gets an answer — as the provincial
platform's clients are told to.

Meanwhile the drill kills with SIGKILL, at random instants: the gunicorn master with its workers, the
master alone (its orphaned workers finish what they hold, then exit), one gunicorn worker (the master
forks another), one timer worker, or all of them at once; then restarts what it killed and waits for
the server to answer before the next kill. Each kind of kill happens at least once.

Time: the servers live a working Monday at least two weeks back (``tests/scale/clocked.py``), the timer
workers on the real clock, so every threshold the servers arm is already due for the workers: timers
fire throughout the run, racing the clerks' actions that disarm them.

Afterwards, with every process stopped and one final ``flask timers sweep``:

* every case's hash chain verifies (``workflow.audit.verify``, what ``flask audit verify`` runs);
* every case is in a legal state: its chain replays through the case and step machines' transitions
  (each event leaves the state the previous one reached; steps move only while the case runs; a step
  opens only when its needs are settled; the join only when all are), the rows hold the state the
  replay reaches, the steps are the definition's with the wanted ones open, and the timestamps,
  holders, outputs and suspensions agree with the states; its version counts its actions;
* every timer once: each started clock has its two timers, each running clock's have fired, a
  stopped clock's unfired timers have no due time; each fired timer has exactly one event (at the
  instant it fired) and one notification, an unfired one none; the recorded SLA statuses are the
  worst fired;
* nothing lost: every case the client was answered 201 for exists, once; its chain holds exactly the
  actions the client was answered 2xx for, in order; its state and version are the last answer's;
  each completed step holds the outputs sent; no ``Idempotency-Key`` record is left without its
  response;
* no answer was a 5xx or another unexpected status, and no process logged a traceback.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from tests.factories import clerk_tokens  # noqa: E402
from workflow import audit  # noqa: E402
from workflow.calendar import BusinessCalendar  # noqa: E402
from workflow.db import make_engine, make_sessionmaker  # noqa: E402
from workflow.demo import STEP_OUTPUTS, application, registration_outputs  # noqa: E402
from workflow.machines import case as case_machine, step as step_machine  # noqa: E402
from workflow.models import Case, Event, IdempotentResponse, Notification, Timer  # noqa: E402
from workflow.timers import CASE, clocks, definition_of  # noqa: E402

CST = ZoneInfo("Asia/Shanghai")
SECRET_KEY = "crash-drill-secret-key-not-for-production"
WORKERS, THREADS = 2, 4  # gunicorn, as bench/http_server.py and the scale test run it on 2 cores
TIMER_WORKERS = 2
SWEEP_INTERVAL = "0.5"
CLIENTS = 6
REQUEST_TIMEOUT = 30.0  # one attempt; an answer slower than this counts as lost and is sent again
RETRY_FOR = 90.0  # how long a client keeps sending one request before it reports it unanswered
KILL_PAUSE = (0.3, 1.5)  # seconds of load between the server answering again and the next kill
KINDS = ("server", "master", "worker", "timers", "all")
DESCRIBED = {
    "server": "gunicorn master and its workers",
    "master": "gunicorn master alone",
    "worker": "one gunicorn worker",
    "timers": "one timer worker",
    "all": "every process",
}
DEPARTMENT = {"registration": "market_regulation", "seal": "public_security", "tax": "taxation",
              "invoice": "taxation", "bank": "bank"}
OPTIONAL = ("seal", "invoice", "bank")
# Where a case is taken, and how often: most are delivered, the rest stop on the way.
OUTCOMES = {"delivered": 12, "open": 2, "held": 2, "suspended": 2, "withdrawn": 1, "rejected": 1,
            "refused": 1, "submitted": 1}
SETTLED = ("done", "skipped")
OPEN = ("ready", "in_progress")


class DrillError(RuntimeError):
    """The drill itself could not run (a process would not start, no PostgreSQL)."""


# --- the database ---------------------------------------------------------------------------------


@contextmanager
def database(kind: str, directory: Path):
    """A URL of an empty database for the drill: a SQLite file in ``directory``, or a new PostgreSQL
    database beside ``TEST_DATABASE_URL`` (or ``DATABASE_URL``), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'onewindow.sqlite3'}"
        return
    base = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    if not base.startswith("postgresql"):
        raise DrillError("--database postgres needs TEST_DATABASE_URL or DATABASE_URL naming a PostgreSQL "
                         "server; run it under bin/with-postgres")
    name = f"onewindow_crash_{os.getpid()}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(base).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def server_start(now: datetime) -> datetime:
    """The servers' "now" when the drill starts: 09:00 of a working Monday at least two weeks back.

    Every threshold armed from there (a case's whole target is 210 working minutes) is long due on
    the real clock, which the timer workers keep.
    """
    calendar = BusinessCalendar()
    day = (now.astimezone(CST) - timedelta(days=14)).date()
    day -= timedelta(days=day.weekday())
    while not calendar.is_working_time(datetime(day.year, day.month, day.day, 9, 1, tzinfo=CST)):
        day -= timedelta(days=7)
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=CST)


# --- the processes --------------------------------------------------------------------------------


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _in_group(pid: int, group: int) -> bool:
    """Whether ``pid`` is still a live process of process group ``group`` (not a recycled PID)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and int(fields[2]) == group


class Fleet:
    """The drill's processes: one gunicorn (each process in a session of its own) and the timer workers.

    Every process is signalled by its own PID, or its own process group while its leader is not yet
    reaped (so the group's ID cannot belong to anyone else): never by name, since other people's
    gunicorns and workers run on the same machine.
    """

    def __init__(self, env: dict[str, str], shift: float, logs: Path):
        self.env, self.shift, self.logs = env, shift, logs
        self.port = free_port()
        self.started: list[subprocess.Popen] = []
        self.server: subprocess.Popen | None = None
        self.timers: list[subprocess.Popen | None] = [None] * TIMER_WORKERS
        self.restarts = Counter()  # what came back: processes the drill started again, workers gunicorn forked
        self.down: list[float] = []  # seconds from each kill to the server answering with all its workers
        self.processes_killed = 0
        self._count = Counter()

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        self._count[name] += 1
        with (self.logs / f"{name}.{self._count[name]}.log").open("w") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.started.append(process)
        return process

    def start_server(self) -> None:
        self.server = self._start("server", [
            sys.executable, "-m", "tests.scale.clocked", str(self.shift), "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(WORKERS), "--worker-class", "gthread", "--threads", str(THREADS),
            "--graceful-timeout", "10", "--log-level", "warning", "wsgi:app"])

    def start_timers(self, number: int) -> None:
        self.timers[number] = self._start(f"timers{number}", flask_command("timers", "run", "--interval",
                                                                           SWEEP_INTERVAL))

    def start(self) -> None:
        self.start_server()
        for number in range(TIMER_WORKERS):
            self.start_timers(number)
        self.wait_serving()

    def workers(self) -> list[int]:
        return _children(self.server.pid) if self.server else []

    def wait_serving(self, timeout: float = 90, replacing: int | None = None) -> None:
        """Until the server answers ``/healthz`` with all its workers (and ``replacing`` is gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise DrillError(f"gunicorn exited with {self.server.returncode}:\n{self.tail('server')}")
            workers = self.workers()
            if len(workers) == WORKERS and replacing not in workers and _answers(self.port):
                return
            time.sleep(0.05)
        raise DrillError(f"gunicorn did not answer on port {self.port} within {timeout} s:\n{self.tail('server')}")

    def kill(self, kind: str, rng: random.Random) -> str:
        """SIGKILL what ``kind`` names and start it again; return what was killed."""
        killed_at = time.monotonic()
        if kind in ("server", "all"):
            workers = self.workers()
            os.killpg(self.server.pid, signal.SIGKILL)  # its leader is not reaped yet: only our processes
            self.server.wait(30)
            self.processes_killed += 1 + len(workers)
            what = f"gunicorn {self.server.pid} and workers {workers}"
        if kind in ("timers", "all"):
            numbers = range(TIMER_WORKERS) if kind == "all" else [rng.randrange(TIMER_WORKERS)]
            pids = []
            for number in numbers:
                self.timers[number].send_signal(signal.SIGKILL)
                self.timers[number].wait(30)
                pids.append(self.timers[number].pid)
                self.processes_killed += 1
            what = f"timer workers {pids}" if kind == "timers" else f"{what}, timer workers {pids}"
        if kind == "master":
            workers = self.workers()
            group = self.server.pid
            self.server.send_signal(signal.SIGKILL)
            self.server.wait(30)
            self.processes_killed += 1
            # The orphans notice their master is gone within a second, stop accepting and finish the
            # requests they hold (graceful timeout 10 s); the port is free once they have closed it.
            deadline = time.monotonic() + 15
            while any(_in_group(pid, group) for pid in workers) and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in workers:
                if _in_group(pid, group):
                    os.kill(pid, signal.SIGKILL)
            what = f"gunicorn master {group} (workers {workers} left to finish)"
        if kind == "worker":
            workers = self.workers()
            victim = rng.choice(workers)
            os.kill(victim, signal.SIGKILL)
            self.processes_killed += 1
            self.restarts["gunicorn worker (forked by the master)"] += 1
            self.wait_serving(replacing=victim)
            what = f"gunicorn worker {victim}"
        if kind in ("server", "master", "all"):
            self.start_server()
            self.restarts["gunicorn (with its workers)"] += 1
        if kind in ("timers", "all"):
            for number in range(TIMER_WORKERS):
                if self.timers[number].poll() is not None:
                    self.start_timers(number)
                    self.restarts["timer worker"] += 1
        self.wait_serving()
        self.down.append(time.monotonic() - killed_at)
        return what

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every process still running (gunicorn and the timer workers finish and exit), then
        SIGKILL the group of any that did not."""
        running = [p for p in self.started if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def tail(self, name: str, size: int = 3000) -> str:
        path = self.logs / f"{name}.{self._count[name]}.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def tracebacks(self) -> list[str]:
        """Every traceback any process logged (a SIGKILL leaves none: these are errors)."""
        found = []
        for path in sorted(self.logs.glob("*.log")):
            log = path.read_text(errors="replace")
            if "Traceback" in log:
                start = log.index("Traceback")
                found.append(f"{path.name}: {log[max(0, start - 300):start + 2500]}")
        return found


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except (OSError, http.client.HTTPException):
        return False


# --- the clients ----------------------------------------------------------------------------------


@dataclass
class Stats:
    tried: int = 0  # HTTP attempts, first sends and repeats
    answered_2xx: int = 0
    refused: int = 0  # could not connect: nothing was sent
    lost: int = 0  # sent, but the connection broke (or timed out) before the answer
    in_flight_409: int = 0  # the key's first request was still running somewhere: sent again
    repeats: int = 0  # attempts after the first, with the same Idempotency-Key
    replayed_after_loss: int = 0  # the lost request had committed: its first answer came back
    executed_after_loss: int = 0  # the lost request had not committed: the repeat did it
    unexpected: int = 0
    by_action: Counter = field(default_factory=Counter)

    def add(self, other: Stats) -> None:
        for name in self.__dataclass_fields__:
            if name == "by_action":
                self.by_action.update(other.by_action)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class CaseLog:
    """What the client was told about one case."""

    outcome: str
    wanted: tuple[str, ...]
    case_no: str | None = None
    actions: list[tuple[str, str | None]] = field(default_factory=list)  # answered 2xx, in order
    version: int = 0
    state: str | None = None
    outputs: dict[str, dict] = field(default_factory=dict)
    stopped: str | None = None  # why the client left it before its outcome


class Stopped(Exception):
    """The drill is over: leave the case where it is."""


class Unexpected(Exception):
    """An answer the client did not expect: reported, and the case is left."""


class Gauge:
    """How many requests are out right now (sampled at each kill)."""

    def __init__(self):
        self.value, self.lock = 0, threading.Lock()

    @contextmanager
    def counting(self):
        with self.lock:
            self.value += 1
        try:
            yield
        finally:
            with self.lock:
                self.value -= 1


class Clerks(threading.Thread):
    """One client thread: drives cases one after another as the window and the agencies' clerks."""

    def __init__(self, number: int, port: int, tokens: dict[str, str], stop: threading.Event,
                 abort: threading.Event, gauge: Gauge, seed: int):
        super().__init__(name=f"clerks-{number}", daemon=True)
        self.number, self.port, self.tokens, self.gauge = number, port, tokens, gauge
        self.stop, self.abort = stop, abort  # no new request; and no more repeats either (the drill failed)
        self.rng = random.Random(seed)
        self.stats = Stats()
        self.cases: list[CaseLog] = []
        self.problems: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            log = self._plan()
            self.cases.append(log)
            try:
                self.drive(log)
            except Stopped:
                log.stopped = "the drill ended"
            except Unexpected as error:
                log.stopped = str(error)
                self.problems.append(f"{log.case_no or 'a new case'}: {error}")
            except Exception as error:  # noqa: BLE001 - reported as a problem of the drill, never lost
                log.stopped = repr(error)
                self.problems.append(f"client {self.number} failed on {log.case_no}: {error!r}")
                return

    def _plan(self) -> CaseLog:
        outcome = self.rng.choices(list(OUTCOMES), weights=list(OUTCOMES.values()))[0]
        wanted = ("registration", "tax") + tuple(s for s in OPTIONAL if self.rng.random() < 0.7)
        return CaseLog(outcome, wanted)

    # one request, sent until answered

    def post(self, path: str, department: str, body: dict, version: int | None, action: str) -> tuple[int, dict]:
        """POST with a fresh Idempotency-Key; after a connection failure, the same again until answered."""
        if self.stop.is_set():
            raise Stopped
        headers = {"Authorization": f"Bearer {self.tokens[department]}", "Content-Type": "application/json",
                   "Idempotency-Key": f"drill-{uuid.uuid4().hex}", "Connection": "close"}
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        payload = json.dumps(body, ensure_ascii=False).encode()
        deadline, pause, lost = time.monotonic() + RETRY_FOR, 0.05, False
        self.stats.by_action[action] += 1
        while True:
            self.stats.tried += 1
            sent, answer = self._send(path, payload, headers)
            if answer is None:
                if sent:
                    self.stats.lost += 1
                    lost = True
                else:
                    self.stats.refused += 1
            else:
                status, replayed, raw = answer
                data = json.loads(raw) if raw else {}
                if 200 <= status < 300:
                    self.stats.answered_2xx += 1
                    if lost:
                        if replayed:
                            self.stats.replayed_after_loss += 1
                        else:
                            self.stats.executed_after_loss += 1
                    return status, data
                if status == 409 and "Idempotency-Key" in str(data.get("detail", "")):
                    self.stats.in_flight_409 += 1
                else:
                    self.stats.unexpected += 1
                    raise Unexpected(f"{action} {path} answered {status}: {raw[:400].decode(errors='replace')}")
            if self.abort.is_set():
                raise Stopped
            if time.monotonic() > deadline:
                self.stats.unexpected += 1
                raise Unexpected(f"{action} {path}: no answer in {RETRY_FOR:g} s")
            self.stats.repeats += 1
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _send(self, path: str, payload: bytes, headers: dict) -> tuple[bool, tuple[int, bool, bytes] | None]:
        """One attempt: whether it was sent, and the answer (status, replayed, body) if one came."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            try:
                connection.connect()
            except OSError:
                return False, None
            try:
                with self.gauge.counting():
                    connection.request("POST", f"/api/v1{path}", payload, headers)
                    response = connection.getresponse()
                    raw = response.read()
            except (OSError, http.client.HTTPException):
                return True, None
            return True, (response.status, response.getheader("Idempotent-Replayed") == "true", raw)
        finally:
            connection.close()

    # one case, driven to its outcome

    def act(self, log: CaseLog, action: str, department: str, body: dict | None = None,
            step: str | None = None) -> dict:
        """One action on the case, sent with the version last seen; the answer must be the next version."""
        path = f"/cases/{log.case_no}" + (f"/steps/{step}" if step else "") + f"/{action}"
        _, case = self.post(path, department, body or {}, log.version, action)
        if case.get("version") != log.version + 1:
            raise Unexpected(f"{action} {step or ''} answered version {case.get('version')} after {log.version}")
        log.actions.append((action, step))
        log.version, log.state = case["version"], case["state"]
        return case

    def work(self, log: CaseLog, step: str, refuse: bool = False) -> dict:
        """Claim the step (sometimes give it back and claim it again), then complete or refuse it."""
        department = DEPARTMENT[step]
        self.act(log, "claim", department, step=step)
        if self.rng.random() < 0.15:
            self.act(log, "release", department, step=step)
            self.act(log, "claim", department, step=step)
        if refuse:
            return self.act(log, "refuse", department, {"reason": "名称与已登记企业字号近似"}, step=step)
        outputs = registration_outputs(self.rng) if step == "registration" else STEP_OUTPUTS[step](self.rng)
        case = self.act(log, "complete", department, outputs, step=step)
        log.outputs[step] = outputs
        return case

    def drive(self, log: CaseLog) -> None:
        rng, window = self.rng, "service_window"
        body = application(rng, f"广州市白云区演练{self.number}{len(self.cases):04d}号科技有限公司",
                           {s: s in log.wanted for s in OPTIONAL})
        _, case = self.post("/cases", window, body, None, "submit")
        log.case_no, log.version, log.state = case["case_no"], case["version"], case["state"]
        log.actions.append(("submit", None))
        if (log.version, log.state) != (1, "submitted"):
            raise Unexpected(f"submitted as {log.state} version {log.version}")
        if log.outcome == "submitted":
            return
        if log.outcome == "rejected":
            self.act(log, "reject", window, {"reason": "经营范围表述不规范"})
            return
        self.act(log, "accept", window, {"missing_materials": ["股东会决议原件"] if rng.random() < 0.3 else []})
        if log.outcome == "withdrawn":
            self.act(log, "withdraw", window, {"reason": "申请人撤回申请"})
            return
        if log.outcome == "open":
            return
        if log.outcome == "refused":
            self.work(log, "registration", refuse=True)
            return
        self.work(log, "registration")
        if log.outcome == "suspended" or rng.random() < 0.3:
            self.act(log, "suspend", window, {"reason": "补正股东会决议原件"})
            if log.outcome == "suspended":
                return
            self.act(log, "resume", window)
        if log.outcome == "held":
            self.act(log, "claim", DEPARTMENT["tax"], step="tax")
            return
        rest = [s for s in ("seal", "tax", "bank") if s in log.wanted]
        rng.shuffle(rest)
        if "invoice" in log.wanted:
            rest.insert(rng.randint(rest.index("tax") + 1, len(rest)), "invoice")
        for step in rest:
            case = self.work(log, step)
        if case["state"] != "ready":
            raise Unexpected(f"every step done but the case is {case['state']}")
        mailed = {"method": "mail", "tracking_no": f"SF{rng.randrange(10**10):010d}"}
        self.act(log, "deliver", window, mailed if rng.random() < 0.3 else {"method": "counter"})


# --- the checks -----------------------------------------------------------------------------------


def _moves(transitions) -> dict[str, list[tuple[set[str], str]]]:
    table: dict[str, list[tuple[set[str], str]]] = {}
    for t in transitions:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        table.setdefault(t["trigger"], []).append(({s.value for s in sources}, t["dest"].value))
    return table


CASE_MOVES, STEP_MOVES = _moves(case_machine.TRANSITIONS), _moves(step_machine.TRANSITIONS)


def _legal(moves, action: str, before: str | None, after: str | None) -> bool:
    return any(before in sources and after == dest for sources, dest in moves.get(action, ()))


def replay(case: Case, events: list[Event], definition,
           problems: list[str]) -> tuple[str | None, dict[str, str], set[str]]:
    """Run the case's chain through the machines' transitions; return the case's state, its steps'
    and the wanted steps it reaches, noting every event that could not have happened where it is."""
    state, steps, wanted = None, {}, set()
    for e in events:
        def bad(message: str) -> None:
            problems.append(f"{case.case_no} event {e.seq} ({e.action}{' ' + e.step if e.step else ''}): {message}")

        if e.action == "submit":
            if e.seq != 1 or state is not None:
                bad("a submission that is not the first event")
            wanted = set(e.payload.get("steps", ()))
            state, steps = "submitted", {s.key: "waiting" if s.key in wanted else "skipped" for s in definition.steps}
        elif state is None:
            bad("before the submission")
        elif e.action.startswith("sla_"):
            if e.actor != "system" or (e.step or CASE) not in (CASE, *steps):
                bad("a timer event not by the system or of an unknown clock")
        elif e.step is None or e.action == "step_refused":
            if e.from_state != state or not _legal(CASE_MOVES, e.action, e.from_state, e.to_state):
                bad(f"case {e.from_state} → {e.to_state}, but the case was {state}")
            if e.action == "finish" and not all(v in SETTLED for v in steps.values()):
                bad("the join before every step was settled")
            if e.action == "step_refused" and steps.get(e.step) != "refused":
                bad("the case rejected for a step that was not refused")
            state = e.to_state
        elif e.step not in steps:
            bad("a step the definition does not have")
        else:
            if e.from_state != steps[e.step] or not _legal(STEP_MOVES, e.action, e.from_state, e.to_state):
                bad(f"step {e.from_state} → {e.to_state}, but the step was {steps[e.step]}")
            if state != "in_progress":
                bad(f"a step moved while the case was {state}")
            if e.action == "unblock" and not all(steps[n] in SETTLED for n in definition.step(e.step).needs):
                bad("a step opened before what it needs was settled")
            steps[e.step] = e.to_state
    return state, steps, wanted


def check_rows(case: Case, state: str | None, steps: dict[str, str], wanted: set[str], definition,
               problems: list[str]) -> None:
    """The rows hold what the chain reached, and every field agrees with the states."""
    def bad(message: str) -> None:
        problems.append(f"{case.case_no}: {message}")

    now = case.state.value
    if now != state:
        bad(f"the case is {now} but its chain leaves it {state}")
    if sorted(s.key for s in case.steps) != sorted(s.key for s in definition.steps):
        bad(f"steps {[s.key for s in case.steps]} are not the definition's")
    accepted = now in ("in_progress", "suspended", "ready", "delivered")
    if accepted != (case.accepted_at is not None) and now not in ("rejected", "withdrawn"):
        bad(f"{now} with accepted_at {case.accepted_at}")
    if (now in ("ready", "delivered")) != (case.ready_at is not None):
        bad(f"{now} with ready_at {case.ready_at}")
    if (now == "delivered") != (case.delivered_at is not None and case.delivery is not None):
        bad(f"{now} with delivered_at {case.delivered_at}")
    if (now in ("delivered", "rejected", "withdrawn")) != (case.closed_at is not None):
        bad(f"{now} with closed_at {case.closed_at}")
    if (now in ("rejected", "withdrawn")) != bool(case.closing_reason):
        bad(f"{now} with closing reason {case.closing_reason!r}")
    open_suspensions = [s for s in case.suspensions if s.ended_at is None]
    if len(open_suspensions) != (now == "suspended"):
        bad(f"{now} with {len(open_suspensions)} open suspensions")
    if any(s.ended_at is not None and s.ended_at < s.started_at for s in case.suspensions):
        bad("a suspension that ended before it started")
    states = {s.key: s.state.value for s in case.steps}
    settled = all(v in SETTLED for v in states.values())
    if now in ("in_progress", "suspended") and (settled or "refused" in states.values()):
        bad(f"{now} with steps {states}")
    if now in ("ready", "delivered") and not settled:
        bad(f"{now} with steps {states}")
    for step in case.steps:
        where = f"step {step.key} ({step.state.value})"
        spec = definition.step(step.key) if step.key in {s.key for s in definition.steps} else None
        if steps.get(step.key) != step.state.value:
            bad(f"{where}, but its chain leaves it {steps.get(step.key)}")
        if spec is not None and (step.department != spec.department or list(step.needs) != list(spec.needs)):
            bad(f"{where} belongs to {step.department} and needs {step.needs}, not as the definition says")
        if (step.state.value == "skipped") == (step.key in wanted):
            bad(f"{where}, but the application {'wants' if step.key in wanted else 'does not want'} it")
        if step.state.value in ("ready", "in_progress", "done", "refused") and step.ready_at is None:
            bad(f"{where} without ready_at")
        if step.state.value in ("waiting", "skipped") and (step.ready_at or step.assignee_id or step.done_at):
            bad(f"{where} with ready_at, an assignee or done_at")
        if step.state.value == "in_progress" and (step.assignee_id is None or step.claimed_at is None):
            bad(f"{where} without a holder")
        if step.state.value in ("waiting", "ready", "skipped") and (step.assignee_id or step.claimed_at):
            bad(f"{where} held by {step.assignee_id}")
        if (step.state.value == "done") != (step.done_at is not None and step.outputs is not None):
            bad(f"{where} with done_at {step.done_at}")
        if step.state.value == "done" and spec is not None:
            errors = spec.outputs_schema.validate(step.outputs)
            if errors:
                bad(f"{where} with outputs {step.outputs} that its definition refuses: {errors}")
        if step.state.value == "refused" and not step.refusal_reason:
            bad(f"{where} without a reason")


def check_timers(session, case: Case, definition, timers: dict, problems: list[str]) -> int:
    """Each started clock has its two timers; a running clock's have fired, a stopped one's unfired
    timers have no due time; no timer without a clock. Return how many timers were checked."""
    checked = 0
    subjects = set()
    for subject, clock in clocks(session, case, definition).items():
        if clock.start is None:
            continue
        subjects.add(subject)
        running = case.state.value == "in_progress" and (subject == CASE or case.step(subject).state.value in OPEN)
        for kind in ("warning", "breach"):
            timer = timers.get((case.id, subject, kind))
            where = f"{case.case_no}: the {kind} timer of {'the case' if subject == CASE else 'step ' + subject}"
            checked += 1
            if timer is None:
                problems.append(f"{where} is missing (its clock started at {clock.start})")
            elif running and timer.fired_at is None:
                problems.append(f"{where} runs past its due time {timer.due_at} and never fired")
            elif not running and timer.fired_at is None and timer.due_at is not None:
                problems.append(f"{where} is armed for {timer.due_at} on a stopped clock")
    strays = [key for key in timers if key[0] == case.id and key[1] not in subjects]
    if strays:
        problems.append(f"{case.case_no}: timers {strays} of clocks that never started")
    return checked


def check(url: str, logs: list[CaseLog], problems: list[str]) -> Counter:
    """Everything the module's docstring lists; return the figures."""
    figures = Counter()
    engine = make_engine(url, poolclass=NullPool)
    try:
        with make_sessionmaker(engine)() as session:
            cases = session.scalars(select(Case).order_by(Case.id)).all()
            events: dict[int, list[Event]] = {}
            for event in session.scalars(select(Event).order_by(Event.case_id, Event.seq)):
                events.setdefault(event.case_id, []).append(event)
            timers = {(t.case_id, t.subject, t.kind): t for t in session.scalars(select(Timer))}
            notes = Counter((n.case_id, n.subject, n.kind.removeprefix("sla_")) for n in session.execute(
                select(Notification.case_id, Notification.subject, Notification.kind)
                .where(Notification.kind.like("sla_%"))))
            sla_events = {}
            for case_events in events.values():
                for e in case_events:
                    if e.action.startswith("sla_"):
                        sla_events.setdefault((e.case_id, e.step or CASE, e.action.removeprefix("sla_")), []).append(e)

            # Every chain verifies (what `flask audit verify` runs).
            for link in audit.verify(session):
                problems.append(f"{link.case_no}: audit chain broken at event {link.seq}: {link.reason}")

            # Every case in a legal state.
            for case in cases:
                definition = definition_of(session, case)
                chain = events.get(case.id, [])
                state, steps, wanted = replay(case, chain, definition, problems)
                check_rows(case, state, steps, wanted, definition, problems)
                actions = [e for e in chain if e.actor != "system"]
                if case.version != len(actions):
                    problems.append(f"{case.case_no}: version {case.version} after {len(actions)} actions")
                figures["events replayed"] += len(chain)
                figures["timers checked"] += check_timers(session, case, definition, timers, problems)

            # Every timer once: one event at the instant it fired and one notification, or none of either.
            for key, timer in timers.items():
                fired = sla_events.get(key, [])
                expected = 1 if timer.fired_at is not None else 0
                if len(fired) != expected or notes[key] != expected:
                    problems.append(f"timer {key} fired at {timer.fired_at}: {len(fired)} events, "
                                    f"{notes[key]} notifications")
                elif fired and fired[0].at != timer.fired_at:
                    problems.append(f"timer {key} fired at {timer.fired_at}, its event is at {fired[0].at}")
            for key in set(sla_events) - set(timers):
                problems.append(f"timer events {key} without a timer")
            worst = {}
            for (case_id, subject, kind), timer in timers.items():
                if timer.fired_at is not None:
                    status = "breached" if kind == "breach" else "warning"
                    if worst.get((case_id, subject)) != "breached":
                        worst[(case_id, subject)] = status
            for case in cases:
                if case.sla_status != worst.get((case.id, CASE), "on_track"):
                    problems.append(f"{case.case_no}: SLA status {case.sla_status}, its timers fired say "
                                    f"{worst.get((case.id, CASE), 'on_track')}")
                for step in case.steps:
                    if step.sla_status != worst.get((case.id, step.key), "on_track"):
                        problems.append(f"{case.case_no} step {step.key}: SLA status {step.sla_status}, its timers "
                                        f"fired say {worst.get((case.id, step.key), 'on_track')}")

            # Nothing lost: what the clients were answered is what is stored.
            by_no = {case.case_no: case for case in cases}
            answered = [log for log in logs if log.case_no]
            if len({log.case_no for log in answered}) != len(answered):
                problems.append("two submissions were answered with the same case number")
            if len(cases) != len(answered):
                problems.append(f"{len(cases)} cases stored, the clients were answered 201 for {len(answered)}")
            for log in answered:
                case = by_no.get(log.case_no)
                if case is None:
                    problems.append(f"{log.case_no}: answered 201, not stored")
                    continue
                stored = [(e.action, e.step) for e in events.get(case.id, []) if e.actor != "system"]
                if stored != log.actions:
                    problems.append(f"{log.case_no}: the chain's actions {stored} are not the ones answered 2xx "
                                    f"{log.actions}")
                if (case.version, case.state.value) != (log.version, log.state):
                    problems.append(f"{log.case_no}: stored at version {case.version} {case.state.value}, last "
                                    f"answered {log.version} {log.state}")
                for key, outputs in log.outputs.items():
                    if case.step(key).outputs != json.loads(json.dumps(outputs)):
                        problems.append(f"{log.case_no} step {key}: outputs {case.step(key).outputs}, sent {outputs}")
                figures["answered actions found"] += len(log.actions)
            records = session.scalars(select(IdempotentResponse)).all()
            unfinished = [r for r in records if not 200 <= r.status < 300 or not r.body]
            if unfinished:
                problems.append(f"{len(unfinished)} Idempotency-Key records without their response, e.g. "
                                f"{unfinished[0].method} {unfinished[0].path} status {unfinished[0].status}")
            if len(records) != figures["answered actions found"]:
                problems.append(f"{len(records)} Idempotency-Key records for {figures['answered actions found']} "
                                "requests answered 2xx")
            figures.update({"cases": len(cases), "events": sum(map(len, events.values())), "timers": len(timers),
                            "timers fired": sum(1 for t in timers.values() if t.fired_at is not None),
                            "timers disarmed": sum(1 for t in timers.values() if t.fired_at is None),
                            "notifications": sum(notes.values()), "idempotency records": len(records)})
    finally:
        engine.dispose()
    return figures


# --- the drill ------------------------------------------------------------------------------------


@dataclass
class Kill:
    at: float  # seconds since the load started
    kind: str
    what: str
    in_flight: int  # requests out when it struck
    down: float  # seconds until the server answered again with all its workers


@dataclass
class Report:
    database: str
    seed: int
    kills: list[Kill] = field(default_factory=list)
    processes_killed: int = 0
    restarts: Counter = field(default_factory=Counter)
    stats: Stats = field(default_factory=Stats)
    outcomes: Counter = field(default_factory=Counter)
    fired_by_final_sweep: int = 0
    figures: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def kill_lines(self) -> str:
        return "\n".join(f"  {k.at:6.1f} s  {DESCRIBED[k.kind]:<32} {k.in_flight} in flight, "
                         f"back in {k.down:.1f} s: {k.what}" for k in self.kills)

    def summary(self) -> str:
        s, f = self.stats, self.figures
        kinds = Counter(k.kind for k in self.kills)
        downs = sorted(k.down for k in self.kills) or [0.0]
        lines = [
            f"crash drill on {self.database}, seed {self.seed}: {len(self.kills)} kills, "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items()),
            "kills: " + ", ".join(f"{kinds[k]} × {DESCRIBED[k]}" for k in KINDS if kinds[k])
            + f"; {self.processes_killed} processes SIGKILLed, "
            f"{sum(k.in_flight for k in self.kills)} requests in flight at the kills "
            f"(at most {max((k.in_flight for k in self.kills), default=0)})",
            "restarts: " + ", ".join(f"{n} × {name}" for name, n in self.restarts.items())
            + f"; back in {downs[0]:.1f}–{downs[-1]:.1f} s (median {downs[len(downs) // 2]:.1f} s)",
            f"requests: {s.tried} tried, {s.answered_2xx} answered 2xx ("
            + ", ".join(f"{n} {a}" for a, n in sorted(s.by_action.items())) + ")",
            f"  {s.repeats} repeated with the same Idempotency-Key: {s.refused} connections refused, "
            f"{s.lost} answers lost on {s.replayed_after_loss + s.executed_after_loss} requests "
            f"({s.replayed_after_loss} had committed: their first answer replayed; "
            f"{s.executed_after_loss} had not: done by the repeat), {s.in_flight_409} still running (409); "
            f"{s.unexpected} unexpected answers",
            f"cases: {f['cases']} (" + ", ".join(f"{n} {o}" for o, n in self.outcomes.most_common()) + f"), "
            f"{f['events']} events",
            f"timers: {f['timers']}, {f['timers fired']} fired ({f['timers fired'] - self.fired_by_final_sweep} "
            f"by the workers during the drill, {self.fired_by_final_sweep} by the final sweep), "
            f"{f['timers disarmed']} disarmed before they were due; {f['notifications']} notifications",
            f"checked: every chain verifies ({f['cases']} chains, workflow.audit.verify as `flask audit verify`); "
            f"{f['events replayed']} events replayed through the machines; {f['timers checked']} timers of "
            "started clocks; "
            f"{f['answered actions found']} actions answered 2xx found in the chains, "
            f"{f['idempotency records']} Idempotency-Key records",
            f"problems: {len(self.problems)}" + "".join(f"\n  {p}" for p in self.problems[:30]),
        ]
        return "\n".join(lines)


def run(database_kind: str, kills: int = 20, seed: int | None = None, directory: Path | None = None,
        clients: int = CLIENTS) -> Report:
    """Run the drill on a new database of ``database_kind`` (``sqlite`` or ``postgres``); logs go to
    ``directory`` (a temporary one, removed afterwards, when None)."""
    seed = random.randrange(10**6) if seed is None else seed
    report = Report("SQLite (WAL)" if database_kind == "sqlite" else "PostgreSQL", seed)
    with tempfile.TemporaryDirectory(prefix="onewindow-crash-") as temporary:
        work = Path(directory or temporary)
        (work / "logs").mkdir(parents=True, exist_ok=True)
        with database(database_kind, work) as url:
            _drill(url, kills, clients, random.Random(seed), work / "logs", report)
    return report


def _drill(url: str, kills: int, clients: int, rng: random.Random, logs: Path, report: Report) -> None:
    began = time.monotonic()
    env = {**os.environ, "DATABASE_URL": url, "FLASK_SECRET_KEY": SECRET_KEY, "PYTHONUNBUFFERED": "1"}
    migrated = subprocess.run(flask_command("db", "upgrade"), cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
    if migrated.returncode != 0:
        raise DrillError(f"flask db upgrade failed:\n{migrated.stdout}{migrated.stderr}")
    tokens = clerk_tokens(url, "drill", "crash drill")
    now = datetime.now(timezone.utc)
    fleet = Fleet(env, (server_start(now) - now).total_seconds(), logs)
    stop, abort, gauge = threading.Event(), threading.Event(), Gauge()
    crew: list[Clerks] = []
    try:
        fleet.start()
        report.seconds["start"] = time.monotonic() - began
        loaded = time.monotonic()
        crew = [Clerks(n, fleet.port, tokens, stop, abort, gauge, report.seed * 100 + n) for n in range(clients)]
        for clerks in crew:
            clerks.start()
        schedule = list(KINDS)[:kills] + rng.choices(KINDS, k=max(0, kills - len(KINDS)))
        rng.shuffle(schedule)
        for kind in schedule:
            time.sleep(rng.uniform(*KILL_PAUSE))
            at, in_flight = time.monotonic() - loaded, gauge.value
            what = fleet.kill(kind, rng)
            report.kills.append(Kill(at, kind, what, in_flight, fleet.down[-1]))
        time.sleep(KILL_PAUSE[1])
    except BaseException:
        abort.set()
        raise
    finally:
        stop.set()
        for clerks in crew:
            clerks.join(RETRY_FOR + REQUEST_TIMEOUT + 10)
        fleet.stop()
    report.seconds["load and kills"] = time.monotonic() - loaded
    checking = time.monotonic()
    report.processes_killed, report.restarts = fleet.processes_killed, fleet.restarts
    for clerks in crew:
        report.stats.add(clerks.stats)
        report.problems += clerks.problems
        if clerks.is_alive():
            report.problems.append(f"client {clerks.number} still running after the drill")
    logs_of_cases = [log for clerks in crew for log in clerks.cases]
    report.outcomes = Counter(log.outcome if log.stopped is None else "left on the way" for log in logs_of_cases
                              if log.case_no)
    report.problems += fleet.tracebacks()

    swept = subprocess.run(flask_command("timers", "sweep"), cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    if swept.returncode != 0:
        report.problems.append(f"flask timers sweep failed:\n{swept.stdout}{swept.stderr}")
    else:
        report.fired_by_final_sweep = int(swept.stdout.split()[-1])
    report.figures = check(url, logs_of_cases, report.problems)
    report.seconds["checks"] = time.monotonic() - checking
    report.seconds["total"] = time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="chooses the kills and the clients' cases")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--verbose", action="store_true", help="list every kill")
    parser.add_argument("--logs", type=Path, default=None, help="keep the processes' logs and the SQLite file here")
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so every process the drill started is stopped by its PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    report = run(args.database, args.kills, args.seed, args.logs, args.clients)
    print(report.summary())
    if args.verbose:
        print(report.kill_lines())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
