"""Province scale: the elapsed report and the filtered case list over 1 000 000 cases on PostgreSQL.

Makes a fresh database on the PostgreSQL of ``TEST_DATABASE_URL`` (or takes ``--database-url``,
already filled), fills it with ``bench/generate.py`` (``--cases``, default 1 000 000: a year of
histories written with COPY), then measures, each at least five times after one warm-up:

- ``workflow.reports.elapsed`` grouped by step, department, clerk and day over the last 365 hall
  days (the longest period the dashboard offers) and over 30 days (what it opens with). Target:
  under 2 s.
- ``GET /api/v1/cases`` with the filters clerks use — the open work of one agency, cases in a state,
  a case-number prefix, a fragment of a company name, breached cases — through the real app in this
  process (Flask test client: authentication, query, timing, serialization; no network), one page
  of 20 with its total. Target: under 100 ms. The ceiling beside it is the same page's two SQL
  statements (count and rows) sent by the plain psycopg driver: what the database alone costs.

The timer sweep at this scale is ``bench/sweep.py``.
Run: ``bin/with-postgres .venv/bin/python bench/province.py`` (about 5 minutes for the data on 2
cores, then 2–3 minutes of measuring); ``--cases 100000`` for a quick look.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import generate  # noqa: E402
from harness import Result, migrate, postgres_url, record, repeat, timed  # noqa: E402

from api import create_app  # noqa: E402
from workflow import accounts, reports  # noqa: E402
from workflow.calendar import HALL_TZ  # noqa: E402
from workflow.db import make_engine, make_sessionmaker  # noqa: E402

SCRIPT = "province"
REPORT_TARGET_S, LIST_TARGET_MS = 2.0, 100.0
GROUPINGS = ("step", "department", "clerk", "day")


def fill(cases: int) -> str:
    url = postgres_url()
    if url is None:
        sys.exit("province bench: needs PostgreSQL (run under bin/with-postgres, or give --database-url)")
    began = time.perf_counter()
    generate.main(["--database-url", url, "--cases", str(cases)])
    print(f"province: {cases:,} cases generated in {time.perf_counter() - began:.0f} s", flush=True)
    return url


def roll_up(url: str) -> None:
    """What the timer worker does once a day, here for the whole generated year at once."""
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        began = time.perf_counter()
        days = reports.roll_up(session, now=generate_now())
        session.commit()
        spent = time.perf_counter() - began
        rows = session.scalar(text("SELECT count(*) FROM elapsed_rollup"))
    engine.dispose()
    if days:
        print(f"province: rolled up {days} days into {rows:,} rows in {spent:.1f} s (once; the worker then "
              f"rolls one day a night)", flush=True)


def generate_now():
    from datetime import datetime
    return datetime.fromisoformat(generate.DEFAULT_NOW) + timedelta(days=1)


def measure_reports(url: str) -> None:
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    with engine.connect() as conn:
        last = conn.execute(text("SELECT max(done_at) FROM steps")).scalar()
        total = conn.execute(text("SELECT count(*) FROM cases")).scalar()
    end = last.astimezone(HALL_TZ).date()
    for days in (365, 30):
        start = end - timedelta(days=days - 1)
        for group_by in GROUPINGS:
            rows = []

            def call() -> float:
                with maker() as session:
                    spent = timed(lambda: rows.append(reports.elapsed(session, start=start, end=end,
                                                                      group_by=group_by)))
                return spent

            figures = repeat(call, "s")
            counted = sum(r.count for r in rows[-1])
            record(SCRIPT, Result(
                "province scale", f"elapsed report, {days} days, by {group_by}", figures.as_dict(),
                target=f"< {REPORT_TARGET_S:g} s", met=figures.median < REPORT_TARGET_S, database="postgresql",
                extra={"cases": total, "rows": counted, "groups": len(rows[-1]), "end": end.isoformat()}))
    engine.dispose()


def filters(url: str) -> list[tuple[str, dict]]:
    """The searches clerks make, with values taken from the generated data."""
    engine = make_engine(url)
    with engine.connect() as conn:
        middle = conn.execute(text("SELECT case_no, company_name, created_at FROM cases ORDER BY id "
                                   "OFFSET (SELECT count(*) / 2 FROM cases) LIMIT 1")).one()
    engine.dispose()
    day = middle.case_no.split("-")[0]
    fragment = middle.company_name[3:-6]  # "示例512345" of "广州市示例512345科技有限公司"
    return [
        ("open work of one agency", {"department": "taxation"}),
        ("cases in a state", {"state": "in_progress"}),
        ("breached cases", {"sla_status": "breached"}),
        ("one case number", {"q": middle.case_no}),
        ("one day's case numbers", {"q": day}),
        ("a company's name", {"q": fragment}),
        ("a word in every name", {"q": "科技"}),
    ]


def measure_list(url: str) -> None:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": False,
                      "RATELIMIT_ENABLED": False})
    engine = app.extensions["onewindow.db"].kw["bind"]
    with make_sessionmaker(engine)() as session:
        username = session.execute(text("SELECT username FROM users WHERE role = 'clerk' LIMIT 1")).scalar()
        token = accounts.create_token(session, username, "province bench")
        session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    raw = url.replace("postgresql+psycopg://", "postgresql://", 1)
    for name, params in filters(url):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        path = f"/api/v1/cases?{query}&per_page=20"
        sent: list[tuple[str, object]] = []

        def grab(_conn, _cursor, statement, parameters, _context, _executemany):
            if "FROM cases" in statement:
                sent.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", grab)
        response = client.get(path, headers=headers)
        event.remove(engine, "before_cursor_execute", grab)
        if response.status_code != 200:
            sys.exit(f"province bench: {path} answered {response.status_code}: {response.get_data(as_text=True)}")
        pagination = json.loads(response.headers["X-Pagination"])
        total = f"{pagination['total']:,}" + ("" if pagination["total_is_exact"] else "+")

        def page() -> float:
            return timed(lambda: client.get(path, headers=headers)) * 1000

        figures = repeat(page, "ms", runs=max(9, 5))
        with psycopg.connect(raw) as conn:
            statements = list(sent)

            def bare() -> float:
                began = time.perf_counter()
                for statement, parameters in statements:
                    conn.execute(statement, parameters).fetchall()
                conn.rollback()
                return (time.perf_counter() - began) * 1000

            ceiling = repeat(bare, "ms", runs=max(9, 5))
        record(SCRIPT, Result(
            "province scale", f"case list, {name} ({query}), 20 of {total}", figures.as_dict(),
            ceiling=ceiling.as_dict(), target=f"< {LIST_TARGET_MS:g} ms", met=figures.median < LIST_TARGET_MS,
            database="postgresql", extra={"ratio_as": "times", "total": total},
            notes="" if figures.median < LIST_TARGET_MS else "the ceiling is the database's own time for "
                  "the page's statements"))
    engine.dispose()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="a database generate.py already filled (nothing is generated)")
    parser.add_argument("--only", choices=("reports", "list"))
    args = parser.parse_args(argv)
    url = args.database_url or fill(args.cases)
    migrate(url)  # a database filled by an earlier revision gets the newest indexes and tables
    roll_up(url)
    if args.only in (None, "reports"):
        measure_reports(url)
    if args.only in (None, "list"):
        measure_list(url)


if __name__ == "__main__":
    main()
