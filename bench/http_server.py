"""What the HTTP benchmarks share: gunicorn serving an app on a free port, seeded staff and cases,
and a keep-alive client that times each request.

The server runs as the project would on this 2-core machine: ``gthread`` workers, one per core,
each with a few threads so that one request waiting on PostgreSQL does not idle its core, and
keep-alive on (wrk and the clerks' clients reuse their connections, as browsers and the provincial
platform's HTTP clients do). :class:`Server` starts it with the environment given, waits until it
answers, and stops exactly the process it started (by PID; never by name: other people's gunicorns
run on this machine too).

Seeding goes through the engine's own operations (``workflow.accounts``, ``workflow.operations``)
on the database the server uses, so the data is what clerks' actions would have made.
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import ROOT  # noqa: E402

GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
# One worker process per core (Python runs one request at a time per process), four threads each to
# overlap the time a request waits on PostgreSQL, keep-alive longer than any client's pause.
WORKERS = 2
THREADS = 4
KEEP_ALIVE = 30
# A trivial route of the same app, through the same hooks: the health check (one SELECT 1).
TRIVIAL_PATH = "/healthz"
DEPARTMENTS = ("service_window", "market_regulation", "public_security", "taxation", "bank")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def app_env(database_url: str, **config: str) -> dict[str, str]:
    """The environment for the real app: its database, a fixed secret key, ``FLASK_<NAME>`` settings."""
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, FLASK_SECRET_KEY="bench-secret-key")
    env.update({f"FLASK_{name}": str(value) for name, value in config.items()})
    return env


class Server:
    """gunicorn serving ``app`` (``module:variable``) on a free port until :meth:`stop`.

    Use as a context manager. ``worker_pids`` lists the workers (for their memory).
    """

    def __init__(self, app: str = "wsgi:app", env: dict[str, str] | None = None, *, workers: int = WORKERS,
                 threads: int = THREADS, ready_path: str = TRIVIAL_PATH, extra_args: tuple[str, ...] = ()):
        self.app, self.env, self.workers, self.threads = app, env or dict(os.environ), workers, threads
        self.ready_path, self.extra_args = ready_path, extra_args
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)

    @property
    def settings(self) -> str:
        return f"gunicorn gthread, {self.workers} workers × {self.threads} threads, keep-alive {KEEP_ALIVE} s"

    def start(self, timeout: float = 60) -> Server:
        _exit_on_sigterm()
        command = [str(GUNICORN), "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                   "--worker-class", "gthread", "--threads", str(self.threads), "--keep-alive", str(KEEP_ALIVE),
                   "--backlog", "2048", "--log-level", "warning", *self.extra_args, self.app]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.output()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", self.ready_path)
                status = connection.getresponse().status
                connection.close()
                if status < 500 and len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer on port {self.port} within {timeout} s:\n{self.output()}")

    def worker_pids(self) -> list[int]:
        """The PIDs of the master's children (the workers)."""
        if self.process is None:
            return []
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Stop the master we started (SIGTERM, then SIGKILL to its own process group after 20 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only what it started
            self.process.wait(5)
        self.log.close()
        os.unlink(self.log.name)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that ``with Server(...)`` stops its gunicorn on the way out."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def rss_kib(pid: int) -> tuple[int, int]:
    """A process's resident set now and its peak (``VmRSS``, ``VmHWM``), in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


# --- a keep-alive client ------------------------------------------------------------------------


class Client:
    """One keep-alive connection; :meth:`call` returns the status, the decoded JSON (or bytes) and
    the seconds from sending to the last byte of the body. Keeps the cookies it is given (pages)."""

    def __init__(self, port: int, token: str | None = None):
        self.port, self.token = port, token
        self.cookies: dict[str, str] = {}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None, *,
             form: dict | None = None) -> tuple[int, object, float]:
        sent = dict(headers or {})
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        payload = None
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode()
            sent["Content-Type"] = "application/json"
        elif form is not None:
            payload = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        start = time.perf_counter()
        self.connection.request(method, path, body=payload, headers=sent)
        response = self.connection.getresponse()
        data = response.read()
        seconds = time.perf_counter() - start
        for cookie in response.headers.get_all("Set-Cookie") or ():
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        if response.getheader("Content-Type", "").endswith("json"):
            return response.status, json.loads(data), seconds
        return response.status, data, seconds

    def sign_in(self, username: str, password: str) -> None:
        """Sign in on the staff page (its CSRF token, then the form) and keep the session cookie."""
        status, page, _ = self.call("GET", "/")
        token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page)
        if status != 200 or token is None:
            raise RuntimeError(f"no sign-in form: {status}")
        status, _, _ = self.call("POST", "/", form={"username": username, "password": password,
                                                     "csrf_token": token.group(1).decode()})
        if status != 302:
            raise RuntimeError(f"sign-in of {username} answered {status}")

    def close(self) -> None:
        self.connection.close()


# --- seeding ------------------------------------------------------------------------------------


def _sessionmaker(database_url: str):
    from workflow.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(database_url))


PASSWORD = "bench-password"


@dataclass
class Staff:
    username: str
    token: str


def seed_staff(database_url: str, people: dict[str | None, int], role: str = "clerk") -> dict[str | None, list[Staff]]:
    """``people`` per department (None for admins) → new users of ``role`` with a bearer token each.

    Their password is :data:`PASSWORD`.
    """
    from workflow import accounts

    maker = _sessionmaker(database_url)
    made: dict[str | None, list[Staff]] = {}
    with maker() as session:
        for department, count in people.items():
            for number in range(count):
                username = f"bench-{role}-{department or 'hall'}-{number}-{random.randrange(10**6)}"
                accounts.create_user(session, username, PASSWORD, role, department)
                token = accounts.create_token(session, username, "bench")
                made.setdefault(department, []).append(Staff(username, token))
        session.commit()
    maker.kw["bind"].dispose()
    return made


@dataclass
class SeededCase:
    case_no: str
    code: str
    state: str


# How the seeded cases are spread: a hall's open cases at every stage, and a history of finished ones
# (whose elapsed minutes the tracking estimate's medians read).
STAGES = ("submitted", "registration", "parallel", "invoice", "ready", "delivered", "delivered", "delivered")


def seed_cases(database_url: str, count: int, seed: int = 8) -> list[SeededCase]:
    """``count`` cases brought through the real operations to stages spread as :data:`STAGES`."""
    from workflow import accounts, operations as ops
    from workflow.demo import STEP_OUTPUTS, application, registration_outputs

    rng = random.Random(seed)
    maker = _sessionmaker(database_url)
    made: list[SeededCase] = []
    with maker() as session:
        staff = {}
        for department in DEPARTMENTS:
            username = f"seed-{department}-{rng.randrange(10**9)}"
            staff[department] = accounts.create_user(session, username, PASSWORD, "clerk",
                                                     department).as_actor()
        window = staff["service_window"]

        def finish(case, *keys):
            for key in keys:
                clerk = staff[case.step(key).department]
                ops.claim_step(session, case, key, clerk)
                outputs = registration_outputs(rng) if key == "registration" else STEP_OUTPUTS[key](rng)
                ops.complete_step(session, case, key, clerk, outputs)

        stages = itertools.cycle(STAGES)
        for number in range(count):
            stage = next(stages)
            case = ops.submit_case(session, window, application(rng, f"广州市压测科技有限公司{number:06d}"))
            if stage != "submitted":
                ops.accept_case(session, case, window)
            if stage in ("parallel", "invoice", "ready", "delivered"):
                finish(case, "registration")
            if stage in ("invoice", "ready", "delivered"):
                finish(case, "seal", "tax", "bank")
            if stage in ("ready", "delivered"):
                finish(case, "invoice")
            if stage == "delivered":
                ops.deliver_case(session, case, window, method="counter")
            session.commit()
            made.append(SeededCase(case.case_no, case.tracking_code, case.state.value))
    maker.kw["bind"].dispose()
    return made


def analyze(database_url: str) -> None:
    """Refresh the planner's statistics after seeding (PostgreSQL), as autovacuum soon would."""
    if not database_url.startswith("postgresql"):
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("VACUUM ANALYZE"))
    engine.dispose()


def process_cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used, all its threads together."""
    usage = os.times()
    return usage.user + usage.system
