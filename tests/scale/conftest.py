"""Fixtures for running the app as deployed: a database migrated by the CLI, a redis, processes by PID."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from workflow.db import make_engine

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


@pytest.fixture
def fresh_database():
    """A new, empty PostgreSQL database beside the suite's (dropped afterwards, connections and all).

    The suite's own database is migrated in-process by tests/conftest.py; this one is left empty so
    that the test migrates it the way a release does, with ``flask db upgrade``.
    """
    base = os.environ["TEST_DATABASE_URL"]  # the postgres marker skips the test without it
    name = f"onewindow_scale_{os.getpid()}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def shared_redis():
    """A throwaway redis-server on a Unix socket, for the rate limits' shared store."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing (make install-test installs it)")
        pytest.skip("no redis-server on this machine")
    directory = tempfile.mkdtemp(prefix="onewindow-redis-")
    sock = os.path.join(directory, "redis.sock")
    process = subprocess.Popen([server, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
                                "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis+unix://{sock}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


class Processes:
    """Long-running processes this test started, each in a session of its own, with a log file each.

    They are stopped by their own PID (SIGTERM, which gunicorn and ``flask timers run`` both take as
    "finish and exit"), then anything left in their process group is killed: never by name, since
    other people's gunicorns and workers run on the same machine.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        with (self.directory / f"{name}.log").open("w") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.started[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {name} (pid {p.pid}, exit {p.poll()})\n{self.log(name)[-3000:]}"
                         for name, p in self.started.items())

    def stop_all(self, timeout: float = 30) -> dict[str, int]:
        """Stop them all at once and wait for each; return their exit statuses by name."""
        for process in self.started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.started.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            try:  # a gunicorn master waits for its workers, so normally nothing is left here
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return {name: process.returncode for name, process in self.started.items()}


@pytest.fixture
def processes(tmp_path):
    running = Processes(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def wait_until_serving(processes: Processes, name: str, port: int, timeout: float = 60) -> None:
    """Wait until the server answers a trivial request (a static file of the API docs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if processes.started[name].poll() is not None:
            pytest.fail(f"{name} exited:\n{processes.log(name)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(b"GET /api/v1/docs/static/index.css HTTP/1.0\r\n\r\n")
                if connection.recv(12).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{name} did not answer on port {port} within {timeout} s:\n{processes.log(name)}")
