"""Province scale: what a timer sweep costs, and whether it grows with the open cases or only with the due timers.

What it measures: the wall time of one full sweep of D due timers (default 1 000) among N open cases
(default 10 000 and 1 000 000) on PostgreSQL — ``fire_due(session, now)`` and a commit per batch
until it returns 0, as ``flask timers sweep`` (``api.cli.sweep_once``) does — median and min–max of
``--runs`` sweeps (at least five) after one warm-up. It records each size through the harness
(``bench/results/sweep.json``: benchmark "province scale", figure "timer sweep, D due among N open")
with the SQL statements per timer.

Beside each larger size it records the first size's figure (as the ceiling column: a ratio, not a
limit of the machine): the target is under 1 s at each size and the largest at most twice the first,
i.e. the cost follows the due timers, not the open cases (the selection reads the partial index
``ix_timers_open_due``, whose plan the script prints).

How: for each size the script fills a fresh database, migrated with the project's real migrations,
in plain SQL (one ``INSERT … SELECT`` per table): N ``in_progress`` cases of ``company_opening`` v1,
their five steps (``registration`` ready, the others waiting) and four timers each (case and
registration, warning and breach). All timers are due in the future except D, due before the fixed
``now``: by default one timer on each of D cases spread evenly over the id range (``--layout
spread``; the due one cycles through the four subject/kind pairs), or all four timers of D/4 cases
(``--layout grouped``). It then runs ``VACUUM ANALYZE``, prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the
sweep's selection query exactly as ``workflow.timers.fire_due`` sends it (and whether it uses the
index, also as a generic plan, which a prepared statement may switch to), and times the sweeps.
After each sweep it puts the due timers back (``fired_at`` NULL; the sweep's events, notifications,
SLA statuses and chain heads removed) and vacuums, so every run starts from the same state.

Run: ``bin/with-postgres .venv/bin/python bench/sweep.py`` (five to ten minutes on 2 cores, most of
it generating the million cases); a quick run: ``bin/with-postgres .venv/bin/python bench/sweep.py
--cases 10000``. ``BENCH_CASES`` changes the large size's default.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy
from alembic import command as alembic_command
from sqlalchemy import event as sa_event, func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import NullPool

import api
import api.cli
from harness import RUNS, Figures, Result, postgres_url, record
from workflow import audit, timers
from workflow.db import Base, make_engine
from workflow.definitions import packaged, parse
from workflow.identifiers import make_id_number
from workflow.models import ProcessDefinition, Timer

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 16, 0, tzinfo=CST)  # a Tuesday afternoon, a working day
CREATED = datetime(2026, 12, 1, 8, 30, tzinfo=CST)  # cases created from here, one a second (mod 30 min)
TIMER_PAIRS = (("case", "warning"), ("case", "breach"), ("registration", "warning"), ("registration", "breach"))
INDEX = "ix_timers_open_due"
TARGET_S, TARGET_RATIO = 1.0, 2.0
SCRIPT = "sweep"


def fail(message: str) -> None:
    print(f"sweep bench: {message}", file=sys.stderr)
    sys.exit(2)


# --- the data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    n: int
    due: int
    grouped: bool

    @property
    def stride(self) -> int:
        return self.n // (self.due // 4 if self.grouped else self.due)

    def due_case_ids(self) -> list[int]:
        return list(range(self.stride, self.n + 1, self.stride))

    def due_condition(self) -> str:
        """SQL over ``i`` (case id) and ``t.k`` (0–3, the timer pair): is this timer due?"""
        if self.grouped:
            return f"i % {self.stride} = 0"
        return f"i % {self.stride} = 0 AND t.k = (i / {self.stride}) % 4"


def _id_numbers() -> list[str]:
    """Checksum-valid, fictitious resident ID numbers (the API masks them in responses)."""
    base = datetime(1970, 1, 1).date()
    return [make_id_number("440111", base + timedelta(days=97 * k), k + 1) for k in range(64)]


CASES_SQL = """
INSERT INTO cases (id, case_no, tracking_code, state, version, definition_name, definition_version,
                   channel, company_name, company_kind, application, missing_materials,
                   created_at, updated_at, accepted_at, sla_status)
SELECT i,
       'KB20261201-' || lpad(i::text, 7, '0'),
       translate(upper(substr(md5(i::text), 1, 10)), '01', 'YZ'),
       'in_progress', 1, :name, :version, 'window',
       '广州市示例' || i || '科技有限公司', 'llc',
       jsonb_build_object(
           'company', jsonb_build_object('name', '广州市示例' || i || '科技有限公司', 'kind', 'llc',
                                         'registered_capital', '1000000.00',
                                         'address', '广州市白云区云城西路' || (i % 999 + 1) || '号',
                                         'business_scope', '软件开发；信息技术咨询服务'),
           'legal_representative', jsonb_build_object('name', '张三', 'id_number', (CAST(:ids AS text[]))[i % 64 + 1],
                                                      'phone', '138' || lpad((i % 100000000)::text, 8, '0')),
           'shareholders', jsonb_build_array(
               jsonb_build_object('name', '张三', 'id_number', (CAST(:ids AS text[]))[i % 64 + 1], 'contribution', '600000.00'),
               jsonb_build_object('name', '李四', 'id_number', (CAST(:ids AS text[]))[(i + 7) % 64 + 1],
                                  'contribution', '400000.00')),
           'wants', jsonb_build_object('seal', true, 'invoice', true, 'bank', true)),
       '[]'::jsonb,
       CAST(:created AS timestamptz) + (i % 1800) * interval '1 second',
       CAST(:created AS timestamptz) + (i % 1800) * interval '1 second' + interval '10 minutes',
       CAST(:created AS timestamptz) + (i % 1800) * interval '1 second' + interval '10 minutes',
       'on_track'
FROM generate_series(1, CAST(:n AS integer)) AS i
"""

# One row per case and step of the definition; the first step is ready since the case's acceptance.
STEPS_SQL = """
INSERT INTO steps (case_id, key, position, department, needs, state, ready_at, sla_status)
SELECT i, s.key, s.position, s.department, s.needs::jsonb,
       CASE WHEN s.position = 0 THEN 'ready' ELSE 'waiting' END,
       CASE WHEN s.position = 0 THEN CAST(:created AS timestamptz) + (i % 1800) * interval '1 second' + interval '10 minutes' END,
       'on_track'
FROM generate_series(1, CAST(:n AS integer)) AS i CROSS JOIN (VALUES {steps}) AS s(key, position, department, needs)
"""

TIMERS_SQL = """
INSERT INTO timers (case_id, subject, kind, due_at)
SELECT i, t.subject, t.kind,
       CASE WHEN {due}
            THEN CAST(:now AS timestamptz) - (i * 4 + t.k + 1) * interval '1 millisecond'
            ELSE CAST(:now AS timestamptz) + interval '1 day' + (i * 4 + t.k) * interval '1 millisecond' END
FROM generate_series(1, CAST(:n AS integer)) AS i CROSS JOIN (VALUES {pairs}) AS t(k, subject, kind)
"""


def _literal(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def generate(setup_engine, layout: Layout) -> dict[str, float]:
    """Empty every table and fill them for ``layout``; return the seconds each statement took."""
    document = packaged()
    definition = parse(document)
    steps = ", ".join(
        f"({_literal(s.key)}, {position}, {_literal(s.department)}, {_literal(json.dumps(list(s.needs)))})"
        for position, s in enumerate(definition.steps)
    )
    pairs = ", ".join(f"({k}, {_literal(subject)}, {_literal(kind)})" for k, (subject, kind) in enumerate(TIMER_PAIRS))
    params = {"n": layout.n, "created": CREATED, "now": NOW}
    seconds: dict[str, float] = {}
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with setup_engine.connect() as conn:
        conn.execute(text("SET synchronous_commit = off"))
        conn.execute(text("SET work_mem = '64MB'"))
        conn.execute(text("SET maintenance_work_mem = '512MB'"))
        # The audit trail refuses TRUNCATE too (a statement trigger): off for this throwaway database.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(insert(ProcessDefinition).values(
            name=document["name"], version=document["version"], document=document,
            published_at=CREATED - timedelta(days=30), published_by="bench"))
        conn.commit()
        for table, sql, extra in (
            ("cases", CASES_SQL, {"name": document["name"], "version": document["version"], "ids": _id_numbers()}),
            ("steps", STEPS_SQL.format(steps=steps), {}),
            ("timers", TIMERS_SQL.format(due=layout.due_condition(), pairs=pairs), {}),
        ):
            began = time.perf_counter()
            conn.execute(text(sql), {**params, **extra})
            conn.commit()
            seconds[table] = time.perf_counter() - began
        conn.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), :n)"), {"n": layout.n})
        conn.commit()
    began = time.perf_counter()
    with setup_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text("CHECKPOINT"))
    seconds["vacuum analyze"] = time.perf_counter() - began
    return seconds


# --- measuring --------------------------------------------------------------------------------


class SqlCounter:
    """Counts the statements the application's engine sends and the time spent executing them,
    in total and per kind of statement (``SELECT timers``, ``INSERT events``, …)."""

    def __init__(self, engine):
        self.count, self.seconds, self._began = 0, 0.0, 0.0
        self.kinds: dict[str, list] = {}
        sa_event.listen(engine, "before_cursor_execute", self._before)
        sa_event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_):
        self._began = time.perf_counter()

    def _after(self, _conn, _cursor, statement, *_):
        spent = time.perf_counter() - self._began
        self.count += 1
        self.seconds += spent
        entry = self.kinds.setdefault(statement_kind(statement), [0, 0.0])
        entry[0] += 1
        entry[1] += spent

    def snapshot(self) -> tuple[int, float, dict[str, tuple[int, float]]]:
        return self.count, self.seconds, {k: tuple(v) for k, v in self.kinds.items()}


def statement_kind(statement: str) -> str:
    """``SELECT cases FOR UPDATE``, ``INSERT events``…: the verb and the table, subqueries left out."""
    text = " ".join(statement.split())
    while (flat := re.sub(r"\([^()]*\)", "", text)) != text:
        text = flat
    match = re.match(r"(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s", text)
    if not match:
        return text.split(None, 1)[0] if text.strip() else "?"
    verb = match.group(1).split()[0]
    table = re.search(r"\bFROM\s+(\w+)", text) if verb == "SELECT" else re.match(r"\w+(?: INTO| FROM)?\s+(\w+)", text)
    return f"{verb} {table.group(1) if table else '?'}" + (" FOR UPDATE" if "FOR UPDATE" in text else "")


@dataclass
class Sweep:
    seconds: float
    fired: int
    statements: int
    sql_seconds: float
    kinds: dict[str, tuple[int, float]]
    batches: list[tuple[int, float, float]] = field(default_factory=list)  # fired, fire_due s, commit s


def selection_seconds(result: Sweep) -> float:
    """Time spent in fire_due's batch-locking statement(s) during the sweep."""
    return sum(t for kind, (_, t) in result.kinds.items() if kind.endswith("FOR UPDATE"))


def sweep(maker, counter: SqlCounter) -> Sweep:
    """One full sweep, as ``api.cli.sweep_once``: fire_due and commit until nothing fires."""
    count0, sql0, kinds0 = counter.snapshot()
    began = time.perf_counter()
    db, batches, total = maker(), [], 0
    try:
        while True:
            t0 = time.perf_counter()
            fired = timers.fire_due(db, NOW)
            t1 = time.perf_counter()
            db.commit()
            batches.append((fired, t1 - t0, time.perf_counter() - t1))
            if not fired:
                break
            total += fired
    finally:
        db.close()
    seconds = time.perf_counter() - began
    count1, sql1, kinds1 = counter.snapshot()
    kinds = {k: (n - kinds0.get(k, (0, 0.0))[0], t - kinds0.get(k, (0, 0.0))[1]) for k, (n, t) in kinds1.items()}
    return Sweep(seconds, total, count1 - count0, sql1 - sql0, {k: v for k, v in kinds.items() if v[0]}, batches)


RESET_SQL = (
    "SET LOCAL session_replication_role = replica",  # lets the throwaway bench delete audit events
    "DELETE FROM events WHERE case_id = ANY(:ids) AND action IN ('sla_warning', 'sla_breach')",
    "DELETE FROM notifications WHERE case_id = ANY(:ids)",
    "UPDATE timers SET fired_at = NULL WHERE case_id = ANY(:ids) AND fired_at IS NOT NULL",
    "UPDATE cases SET sla_status = 'on_track', chain_seq = 0, chain_hash = repeat('0', 64) "
    "WHERE id = ANY(:ids) AND (sla_status <> 'on_track' OR chain_seq <> 0)",
    "UPDATE steps SET sla_status = 'on_track' WHERE case_id = ANY(:ids) AND sla_status <> 'on_track'",
)


def open_due(conn) -> int:
    return conn.scalar(select(func.count()).select_from(Timer).where(*timers._open_due(NOW)))


def reset(setup_engine, layout: Layout) -> None:
    """Put the fired timers back as due and remove what the sweep recorded; vacuum the tables."""
    ids = layout.due_case_ids()
    with setup_engine.begin() as conn:
        for sql in RESET_SQL:
            conn.execute(text(sql), {"ids": ids})
    with setup_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM timers, cases, steps, events, notifications"))
        due = open_due(conn)
    if due != layout.due:
        fail(f"after the reset {due} timers are due, not {layout.due}")


# --- plans ------------------------------------------------------------------------------------


class _Captured(Exception):
    pass


def captured_selection(app) -> tuple[str, dict]:
    """The statement ``fire_due`` locks its batch with, exactly as it sends it, and its parameters.

    ``fire_due`` is called and stopped at that statement (then rolled back), so the plan shown is the
    engine's own query whatever its current shape, not a copy of it.
    """
    engine, seen = api.database.Database.engine(app), {}

    def grab(_conn, _cursor, statement, parameters, _context, _executemany):
        if "FOR UPDATE" in statement and not seen:
            seen.update(sql=statement, params=dict(parameters))
            raise _Captured

    sa_event.listen(engine, "before_cursor_execute", grab)
    db = app.extensions["onewindow.db"]()
    try:
        timers.fire_due(db, NOW)
    except Exception:  # noqa: BLE001 - _Captured, possibly wrapped by SQLAlchemy
        if not seen:
            raise
    finally:
        sa_event.remove(engine, "before_cursor_execute", grab)
        db.rollback()
        db.close()
    if not seen:
        fail("fire_due sent no SELECT … FOR UPDATE: cannot show its plan")
    return seen["sql"], seen["params"]


def explain(setup_engine, sql: str, params: dict, analyze: bool = True) -> str:
    options = "ANALYZE, BUFFERS" if analyze else "COSTS"
    with setup_engine.connect() as conn:  # rolled back: EXPLAIN ANALYZE really takes the row locks
        rows = conn.exec_driver_sql(f"EXPLAIN ({options}) {sql}", params).scalars().all()
        conn.rollback()
    return "\n".join(rows)


def explain_statement(setup_engine, statement, analyze: bool = False) -> str:
    literal = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    return explain(setup_engine, literal.replace("%", "%%"), {}, analyze)


def generic_plan(setup_engine, sql: str, params: dict) -> str:
    """The plan of the statement prepared with parameters, forced generic: what PostgreSQL may
    switch to once a prepared statement ran five times (psycopg prepares a query run five times)."""
    names = []

    def placeholder(match):
        names.append(match.group(1))
        return f"${len(names)}"

    prepared = re.sub(r"%\((\w+)\)s", placeholder, sql)
    values = ", ".join(str(params[name]) if isinstance(params[name], int) else _literal(params[name])
                       for name in names)
    with setup_engine.connect() as conn:
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql(f"PREPARE bench_sweep AS {prepared}")
        rows = conn.exec_driver_sql(f"EXPLAIN EXECUTE bench_sweep({values})").scalars().all()
        conn.exec_driver_sql("DEALLOCATE bench_sweep")
        conn.rollback()
    return "\n".join(rows)


def indexes_in(plan: str) -> str:
    found = re.findall(r"(Seq Scan on \w+|Index (?:Only )?Scan(?: Backward)? using \w+)", plan)
    return "; ".join(dict.fromkeys(found)) or "?"


# --- one size ---------------------------------------------------------------------------------


@dataclass
class SizeResult:
    layout: Layout
    generation: dict[str, float]
    uses_index: bool
    generic_uses_index: bool
    warmup: Sweep
    runs: list[Sweep]

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def run_size(app, setup_engine, counter: SqlCounter, layout: Layout, runs: int) -> SizeResult:
    print(f"\n=== N = {layout.n:,} open cases, D = {layout.due:,} due timers "
          f"({'all four timers of ' + format(layout.due // 4, ',') + ' cases' if layout.grouped else 'one timer on each of ' + format(layout.due, ',') + ' cases'}) ===",
          flush=True)
    print(load())
    began = time.perf_counter()
    generation = generate(setup_engine, layout)
    generation["total"] = time.perf_counter() - began
    print("generation: " + ", ".join(f"{k} {v:.1f} s" for k, v in generation.items()), flush=True)

    with setup_engine.connect() as conn:
        counts = {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in ("cases", "steps", "timers")}
        due = open_due(conn)
        size = conn.scalar(text("SELECT pg_size_pretty(pg_database_size(current_database()))"))
    print(f"rows: {counts['cases']:,} cases, {counts['steps']:,} steps, {counts['timers']:,} timers "
          f"({due:,} due at {NOW.isoformat()}); database {size}")
    if counts["cases"] != layout.n or due != layout.due:
        fail(f"generated {counts['cases']} cases and {due} due timers, expected {layout.n} and {layout.due}")

    sql, params = captured_selection(app)
    plan = explain(setup_engine, sql, params)
    uses_index = INDEX in plan
    shown = re.sub(r"SELECT cases\.id, .*? FROM", "SELECT cases.* FROM", " ".join(sql.split()))
    print(f"\nfire_due's selection query, as it sent it: {shown}\n  with {params}")
    print(f"EXPLAIN (ANALYZE, BUFFERS):\n{plan}")
    print(f"-> uses {INDEX}: {'yes' if uses_index else 'NO'}")
    walked = re.search(r"Index Scan using pk_cases on cases .*?actual time=\S+ rows=(\d+) loops=(\d+)", plan)
    if walked:  # a plan that walks cases in id order reads cases until it has found enough due ones
        print(f"-> cases rows read through pk_cases: {int(walked.group(1)) * int(walked.group(2)):,} "
              f"(for {params.get('param_1', '?')} locked; the due timers are {layout.due:,})")
    generic = generic_plan(setup_engine, sql, params)
    generic_uses_index = INDEX in generic
    print(f"-> as a generic prepared plan: {indexes_in(generic)} (uses {INDEX}: {'yes' if generic_uses_index else 'NO'})")
    case_id = layout.due_case_ids()[0]
    per_case = select(Timer).where(Timer.case_id == case_id, *timers._open_due(NOW)).order_by(Timer.due_at)
    print(f"-> fire_due's per-case timers query: {indexes_in(explain_statement(setup_engine, per_case))}")

    maker = app.extensions["onewindow.db"]
    warmup = sweep(maker, counter)
    check(setup_engine, layout, warmup, verify_chains=True)
    reset(setup_engine, layout)
    results = []
    for number in range(1, runs + 1):
        result = sweep(maker, counter)
        check(setup_engine, layout, result)
        results.append(result)
        batches = " ".join(f"{f}:{a * 1e3:.0f}+{c * 1e3:.0f}" for f, a, c in result.batches)
        print(f"run {number}: {fmt_ms(result.seconds)} for {result.fired} timers, {result.statements} statements "
              f"({fmt_ms(result.sql_seconds)} executing SQL; {load()}); batches fired:fire_due ms+commit ms: {batches}",
              flush=True)
        if number == 1:
            kinds = sorted(result.kinds.items(), key=lambda kv: -kv[1][1])
            print("  SQL by kind: " + "; ".join(f"{k} {n}× {t * 1e3:.0f} ms" for k, (n, t) in kinds))
        reset(setup_engine, layout)
    out = SizeResult(layout, generation, uses_index, generic_uses_index, warmup, results)
    times = [r.seconds for r in results]
    print(f"warm-up {fmt_ms(warmup.seconds)}; median {fmt_ms(out.median)} (min {fmt_ms(min(times))}, "
          f"max {fmt_ms(max(times))}; {runs} runs); {out.median / layout.due * 1e3:.2f} ms per timer")
    return out


def check(setup_engine, layout: Layout, result: Sweep, verify_chains: bool = False) -> None:
    if result.fired != layout.due:
        fail(f"the sweep fired {result.fired} timers, not {layout.due}")
    with setup_engine.connect() as conn:
        left = open_due(conn)
        events = conn.scalar(text("SELECT count(*) FROM events WHERE action LIKE 'sla_%'"))
        notes = conn.scalar(text("SELECT count(*) FROM notifications"))
    if left or events != layout.due or notes != layout.due:
        fail(f"after the sweep: {left} due timers left, {events} events, {notes} notifications")
    if verify_chains:
        from sqlalchemy.orm import Session

        with Session(setup_engine) as session:
            broken = audit.verify(session)
        if broken:
            fail(f"audit chains broken after the sweep: {broken[:3]}")


# --- main -------------------------------------------------------------------------------------


def machine(setup_engine) -> list[str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    with setup_engine.connect() as conn:
        version = conn.scalar(text("SHOW server_version"))
        settings = {name: conn.scalar(text(f"SHOW {name}"))
                    for name in ("shared_buffers", "fsync", "synchronous_commit", "work_mem")}
    import psycopg

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:  # read-only: which engine was measured
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "workflow", "migrations"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        dirty = [line[3:] for line in dirty if line.strip()]
        engine = f"commit {head}" + (f", uncommitted changes in {', '.join(dirty)}" if dirty else ", clean")
    except (OSError, subprocess.SubprocessError):
        engine = "?"
    return [
        f"date      : {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine   : {os.cpu_count()} CPUs ({cpu}), {platform.platform()}",
        f"PostgreSQL: {version} ({', '.join(f'{k}={v}' for k, v in settings.items())})",
        f"Python    : {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, psycopg {psycopg.__version__}",
        f"engine    : {engine}",
        f"now       : {NOW.isoformat()} (fixed)",
    ]


def batch_size() -> str:
    limit = inspect.signature(timers.fire_due).parameters.get("limit")
    return f"fire_due limit {limit.default} (its default)" if limit is not None else "fire_due's own batch size"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", "--sizes", dest="sizes", default=f"10000,{os.environ.get('BENCH_CASES', '1000000')}",
                        help="open cases per size, comma-separated (default 10000 and $BENCH_CASES or 1000000; "
                             "--cases 10000 is a quick run)")
    parser.add_argument("--due", type=int, default=1000, help="due timers per size")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed sweeps per size (at least 5, after one warm-up)")
    parser.add_argument("--layout", choices=("spread", "grouped"), default="spread",
                        help="spread: one due timer on each of D cases; grouped: all four timers of D/4 cases")
    args = parser.parse_args()
    if args.runs < 5:
        fail("at least 5 runs per size")
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    grouped = args.layout == "grouped"
    for n in sizes:
        per = args.due // 4 if grouped else args.due
        if args.due <= 0 or (grouped and args.due % 4) or n % per or n < per:
            fail(f"N = {n} must be a multiple of {per} (and D = {args.due} a multiple of 4 when grouped)")

    # A fresh database of its own on bin/with-postgres's server; or, without one, DATABASE_URL (emptied).
    url = postgres_url() or os.environ.get("DATABASE_URL")
    if not url:
        fail("set TEST_DATABASE_URL or DATABASE_URL (run it as `bin/with-postgres .venv/bin/python bench/sweep.py`)")
    if url.startswith("sqlite"):
        fail("this benchmark needs PostgreSQL (FOR UPDATE SKIP LOCKED, the partial index, EXPLAIN); "
             "SQLite was given: run it as `bin/with-postgres .venv/bin/python bench/sweep.py`")

    app = api.create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    setup_engine = make_engine(url, poolclass=NullPool)  # its session settings never reach the sweep
    with app.app_context():
        began = time.perf_counter()
        alembic_command.upgrade(api.cli.alembic_config(), "head")
        print(f"migrated to head in {time.perf_counter() - began:.1f} s")
        with setup_engine.connect() as conn:
            existing = conn.scalar(text("SELECT count(*) FROM cases"))
        if existing:
            fail(f"the database already holds {existing} cases; this benchmark empties every table, "
                 "so it only runs on an empty database (use bin/with-postgres)")
        header = machine(setup_engine)
        print("\n".join(header))
        counter = SqlCounter(api.database.Database.engine(app))
        results = [run_size(app, setup_engine, counter, Layout(n, args.due, grouped), args.runs) for n in sizes]

    print("\n=== summary ===")
    print("\n".join(header))
    print(f"layout    : {'all four timers of D/4 cases due' if grouped else 'one due timer on each of D cases'}; "
          f"{batch_size()}; one warm-up, then {args.runs} timed sweeps per size")
    print(f"{'open cases':>11} {'due':>5} {'generation':>10} {'index':>5} {'median':>8} {'min–max':>15} "
          f"{'per timer':>9} {'SQL/timer':>9} {'SQL time':>8} {'selection':>9} {'batches':>7}")
    for r in results:
        times = [x.seconds for x in r.runs]
        median_run = min(r.runs, key=lambda x: abs(x.seconds - r.median))
        print(f"{r.layout.n:>11,} {r.layout.due:>5,} {r.generation['total']:>9.1f}s "
              f"{'yes' if r.uses_index else 'NO':>5} {fmt_ms(r.median):>8} "
              f"{fmt_ms(min(times)) + '–' + fmt_ms(max(times)):>15} {r.median / r.layout.due * 1e3:>6.2f} ms "
              f"{median_run.statements / r.layout.due:>9.1f} {median_run.sql_seconds / median_run.seconds:>8.0%} "
              f"{fmt_ms(selection_seconds(median_run)):>9} {len(median_run.batches):>7}")
    verdicts = [f"{r.layout.n:,}: {'met' if r.median < TARGET_S else 'MISSED'}" for r in results]
    print(f"target sweep of {args.due:,} due < {TARGET_S:g} s: " + "; ".join(verdicts))
    if len(results) >= 2:
        ratio = results[-1].median / results[0].median
        print(f"ratio {results[-1].layout.n:,} / {results[0].layout.n:,} open cases: {ratio:.2f}× "
              f"(target ≤ {TARGET_RATIO:g}×: {'met' if ratio <= TARGET_RATIO else 'MISSED'})")
    if len(results) >= 2:
        small, big = (selection_seconds(min(r.runs, key=lambda x: abs(x.seconds - r.median))) for r in (results[0], results[-1]))
        print(f"selection query (SELECT … FOR UPDATE SKIP LOCKED, all batches of the median run): "
              f"{fmt_ms(small)} → {fmt_ms(big)} ({big / small:.1f}×)")
    if not all(r.uses_index for r in results):
        print(f"the selection query did NOT use {INDEX} at every size")
    record_results(results, grouped)


def spaced(number: int) -> str:
    return f"{number:,}".replace(",", " ")


def record_results(results: list[SizeResult], grouped: bool) -> None:
    """One harness record per size: ``province scale`` / ``timer sweep, D due among N open``."""
    first = results[0]
    for r in results:
        figures = Figures([x.seconds for x in r.runs], "s")
        median_run = min(r.runs, key=lambda x: abs(x.seconds - r.median))
        ratio = r.median / first.median if r is not first else None
        met = r.median < TARGET_S and (ratio is None or ratio <= TARGET_RATIO)
        notes = (f"{'all four timers of D/4 cases' if grouped else 'one due timer on each of D cases'}; "
                 f"{r.median / r.layout.due * 1e3:.2f} ms and {median_run.statements / r.layout.due:.2f} SQL "
                 f"statements per timer; selection through {INDEX}: {'yes' if r.uses_index else 'NO'}")
        if ratio is not None:
            notes += f"; {ratio:.2f}× the {spaced(first.layout.n)} figure"
        record(SCRIPT, Result(
            benchmark="province scale",
            figure=f"timer sweep, {spaced(r.layout.due)} due among {spaced(r.layout.n)} open",
            measured=figures.as_dict(),
            # Beside the larger sizes, the first size's figure: the target is at most twice it.
            ceiling=None if r is first else Figures([x.seconds for x in first.runs], "s").as_dict(),
            target=f"< {TARGET_S:g} s, and ≤ {TARGET_RATIO:g}× the {spaced(first.layout.n)} figure",
            met=met,
            database="postgresql",
            notes=notes,
            extra={"statements_per_timer": median_run.statements / r.layout.due,
                   "sql_share": median_run.sql_seconds / median_run.seconds,
                   "selection_seconds": selection_seconds(median_run), "uses_index": r.uses_index,
                   "generic_plan_uses_index": r.generic_uses_index, "batches": len(median_run.batches),
                   "generation_seconds": r.generation["total"], "ratio_to_first": ratio, "ratio_as": "times",
                   "sql_by_kind": {k: {"count": n, "seconds": t} for k, (n, t) in median_run.kinds.items()}},
        ))


if __name__ == "__main__":
    main()
