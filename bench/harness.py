"""What every benchmark shares: repeated runs, medians, databases, and the results file.

A benchmark script measures a figure and its *ceiling* (what this machine's database or web stack
does at best, in the same run) and calls :func:`record` for each; ``bench/results.py`` turns the
recorded JSON (``bench/results/<script>.json``) into ``bench/RESULTS.md``. Figures are medians with
their min–max over at least :data:`RUNS` runs (``BENCH_RUNS`` raises it, never below five).

Databases: :func:`sqlite_url` makes a fresh migrated SQLite file; :func:`postgres_url` makes a fresh
migrated database on the PostgreSQL that ``bin/with-postgres`` started (``TEST_DATABASE_URL``), or
returns None when there is none, so a script can skip its PostgreSQL half with a message.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RUNS = max(5, int(os.environ.get("BENCH_RUNS", "5")))


@dataclass
class Figures:
    """Repeated measurements of one quantity."""

    values: list[float]
    unit: str

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def as_dict(self) -> dict:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": len(self.values),
                "unit": self.unit, "values": self.values}

    def __str__(self) -> str:
        return f"{fmt(self.median)} {self.unit} ({fmt(self.low)}–{fmt(self.high)}, {len(self.values)} runs)"


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def repeat(measure: Callable[[], float], unit: str, *, runs: int = RUNS, warmup: int = 1) -> Figures:
    """Call ``measure`` (which returns one figure) ``warmup`` times unrecorded, then ``runs`` times."""
    for _ in range(warmup):
        measure()
    return Figures([measure() for _ in range(runs)], unit)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes on the wall clock."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation, as numpy's default."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q / 100
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


@dataclass
class Result:
    """One line of RESULTS.md: a figure, its ceiling, and its target."""

    benchmark: str
    figure: str
    measured: dict
    ceiling: dict | None = None
    target: str = ""
    met: bool | None = None
    database: str | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)


def record(script: str, result: Result) -> None:
    """Add ``result`` to ``bench/results/<script>.json`` (replacing an earlier one of the same figure)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{script}.json"
    data = json.loads(path.read_text()) if path.exists() else {"script": script, "results": []}
    key = (result.benchmark, result.figure, result.database)
    data["results"] = [r for r in data["results"] if (r["benchmark"], r["figure"], r.get("database")) != key]
    data["results"].append(asdict(result))
    data["recorded_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data["machine"] = machine()
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1))
    met = "" if result.met is None else (" — target met" if result.met else " — TARGET MISSED")
    print(f"[{script}] {result.benchmark} / {result.figure}{' on ' + result.database if result.database else ''}: "
          f"{Figures(result.measured['values'], result.measured['unit'])}{met}", flush=True)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": memory, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "postgresql": postgres_version(),
            # What else the machine was doing: the 1, 5 and 15-minute load averages when recorded.
            "load": [round(x, 2) for x in os.getloadavg()]}


def postgres_version() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return None
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(sqlalchemy.text("SHOW server_version")).scalar()
    finally:
        engine.dispose()


# --- databases ----------------------------------------------------------------------------------


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest migration, as ``flask db upgrade`` does."""
    from alembic import command

    from api import create_app
    from api.cli import alembic_config

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True})
    with app.app_context():
        command.upgrade(alembic_config(), "head")
    app.extensions["onewindow.db"].kw["bind"].dispose()


def sqlite_url(directory: str | None = None) -> str:
    """A fresh, migrated SQLite database file (in a temporary directory unless given one)."""
    directory = directory or tempfile.mkdtemp(prefix="onewindow-bench-")
    url = f"sqlite:///{directory}/bench-{uuid.uuid4().hex[:8]}.sqlite"
    migrate(url)
    return url


def postgres_url() -> str | None:
    """A fresh, migrated database on the PostgreSQL server of ``TEST_DATABASE_URL``, or None."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return None
    import sqlalchemy
    from sqlalchemy.engine import make_url

    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    return url


def databases() -> list[tuple[str, str]]:
    """``[("sqlite", url), ("postgresql", url)]``, the second only when PostgreSQL is there."""
    found = [("sqlite", sqlite_url())]
    pg = postgres_url()
    if pg:
        found.append(("postgresql", pg))
    else:
        print("no TEST_DATABASE_URL: skipping PostgreSQL (run under bin/with-postgres)", file=sys.stderr)
    return found


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
