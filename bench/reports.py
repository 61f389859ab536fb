"""How long the elapsed report takes over a large PostgreSQL database (``bench/generate.py`` fills one).

For each grouping (step, department, clerk, day, and step limited to one department as a supervisor
sees it) over the last 30 and 365 hall days before ``--end`` (default: the last day with a finished
step), it calls ``workflow.reports.elapsed`` once to warm up and ``--runs`` times more, and prints
the median and min–max wall time, the groups returned and the rows behind them. It also prints the
machine (cores, PostgreSQL version and settings that matter) and the table sizes, and with
``--explain`` the plan of the 365-day queries (``EXPLAIN (ANALYZE, BUFFERS)`` of the statement the
report really sends).

Run: ``bin/with-postgres sh -c '.venv/bin/python bench/generate.py --migrate && .venv/bin/python bench/reports.py'``
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflow import reports  # noqa: E402
from workflow.calendar import HALL_TZ  # noqa: E402
from workflow.db import make_engine, make_sessionmaker  # noqa: E402

CASES = (("step", None), ("department", None), ("clerk", None), ("day", None), ("step", "taxation"))
PERIODS = (30, 365)


def database_url(given: str | None) -> str:
    url = given or os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        sys.exit("reports bench: give a PostgreSQL URL (--database-url, DATABASE_URL or TEST_DATABASE_URL)")
    return url


def machine(conn) -> list[str]:
    settings = {name: conn.execute(text(f"SHOW {name}")).scalar() for name in
                ("server_version", "shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit")}
    sizes = conn.execute(text(
        "SELECT relname, reltuples::bigint, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
        "WHERE relname IN ('cases', 'steps') ORDER BY relname")).all()
    return [
        f"machine: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"PostgreSQL {settings['server_version']}",
        "settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "server_version"),
        "tables: " + ", ".join(f"{name} ~{rows:,} rows {size}" for name, rows, size in sizes),
    ]


class Captured:
    """The statements a call sends, with their parameters (to EXPLAIN exactly what the report runs)."""

    def __init__(self, engine):
        self.engine, self.statements = engine, []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._grab)
        return self

    def __exit__(self, *_):
        event.remove(self.engine, "before_cursor_execute", self._grab)

    def _grab(self, _conn, _cursor, statement, parameters, _context, _executemany):
        if "report_rows" in statement:
            self.statements.append((statement, parameters))


def timed(maker, runs: int, call) -> tuple[list[float], list]:
    """Call once to warm up, then ``runs`` times; the seconds of the timed calls and the last result."""
    times = []
    with maker() as session:
        for run in range(runs + 1):
            began = time.perf_counter()
            rows = call(session)
            spent = time.perf_counter() - began
            session.rollback()
            if run:
                times.append(spent)
    return times, rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--end", type=date.fromisoformat, help="last hall date of the periods")
    parser.add_argument("--explain", action="store_true", help="print the plans of the 365-day queries")
    args = parser.parse_args(argv)
    engine = make_engine(database_url(args.database_url))
    maker = make_sessionmaker(engine)
    with engine.connect() as conn:
        for line in machine(conn):
            print(line)
        last = conn.execute(text("SELECT max(done_at) FROM steps")).scalar()
    if last is None and args.end is None:
        sys.exit("reports bench: no finished step; run bench/generate.py first")
    end = args.end or last.astimezone(HALL_TZ).date()
    print(f"periods end {end}; {args.runs} timed runs after one warm-up; seconds per call to reports.elapsed")
    print(f"{'group_by':<10} {'department':<11} {'days':>4} {'groups':>6} {'rows':>10} {'median':>8}  min–max")
    for days in PERIODS:
        start = end - timedelta(days=days - 1)
        for group_by, department in CASES:
            times, rows = timed(maker, args.runs, lambda session: reports.elapsed(
                session, start=start, end=end, group_by=group_by, department=department))
            print(f"{group_by:<10} {department or 'all':<11} {days:>4} {len(rows):>6} "
                  f"{sum(r.count for r in rows):>10,} {statistics.median(times):>8.3f}  "
                  f"{min(times):.3f}–{max(times):.3f}")
    # What the dashboard draws beside the report: cases opened and completed per day, the histogram.
    print(f"\n{'function':<21} {'days':>4} {'rows':>6} {'cases':>10} {'median':>8}  min–max")
    for days in PERIODS:
        start = end - timedelta(days=days - 1)
        for name, call, size in (
                ("daily_counts", reports.daily_counts, lambda rows: sum(r.opened + r.completed for r in rows)),
                ("distribution", reports.distribution, lambda rows: sum(r.count for r in rows))):
            times, rows = timed(maker, args.runs, lambda session: call(session, start=start, end=end))
            print(f"{name:<21} {days:>4} {len(rows):>6} {size(rows):>10,} {statistics.median(times):>8.3f}  "
                  f"{min(times):.3f}–{max(times):.3f}")
    if args.explain:
        start = end - timedelta(days=364)
        for group_by, department in CASES:
            with maker() as session, Captured(engine) as captured:
                reports.elapsed(session, start=start, end=end, group_by=group_by, department=department)
            statement, parameters = captured.statements[-1]
            with engine.connect() as conn:
                plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).scalars().all()
            print(f"\n--- 365 days, group_by={group_by}, department={department or 'all'}")
            print("\n".join(plan))
    engine.dispose()


if __name__ == "__main__":
    main()
