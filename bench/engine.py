"""Engine actions: claim and complete through ``workflow.operations``, one transaction each.

What it measures: clerks' actions per second. Each action is what a request does around the
operation: a new session, ``get_case(…, lock=True)`` (the row lock), ``claim_step`` or
``complete_step``, ``commit``. A run takes ``--cases`` accepted cases (submitted and accepted
beforehand, untimed) and claims and completes all five of their steps (registration, tax, invoice,
seal, bank): ten actions a case.

Its ceiling: a plain SQLAlchemy ORM load-modify-commit loop on one row of a table of the bench's own
(new session, ``session.get``, change two columns, ``commit``), on the same database in the same
run — what this machine's database and SQLAlchemy do at best per transaction. Each case's ten
actions are followed by ten ceiling transactions, so a neighbour's load hits both alike. Target:
the engine at least 50 % of the ceiling on PostgreSQL. It also counts the SQL statements each kind of action sends
(SQLAlchemy's ``before_cursor_execute``; the COMMIT is one more round trip, not counted).

Run: ``bin/with-postgres .venv/bin/python bench/engine.py`` (SQLite, then PostgreSQL; about a
minute). Without ``bin/with-postgres`` only SQLite is measured. ``--profile`` prints cProfile's
top functions of one run per database.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime

from sqlalchemy import Integer, event as sa_event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from harness import RUNS, Figures, Result, databases, record
from workflow import accounts, operations as ops
from workflow.clock import utcnow
from workflow.db import UTCDateTime, make_engine, make_sessionmaker
from workflow.demo import STEP_OUTPUTS, application, registration_outputs

SCRIPT = "engine"
DEPARTMENT_OF = {"registration": "market_regulation", "seal": "public_security", "tax": "taxation",
                 "invoice": "taxation", "bank": "bank"}
ORDER = ("registration", "tax", "invoice", "seal", "bank")  # each step after the steps it needs
PASSWORD = "correct horse battery staple"


# --- the ceiling ------------------------------------------------------------------------------


class _CeilingBase(DeclarativeBase):
    pass


class CeilingRow(_CeilingBase):
    """The one row the ceiling loop loads, changes and commits (a table of the bench's own)."""

    __tablename__ = "bench_ceiling"

    id: Mapped[int] = mapped_column(primary_key=True)
    counter: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def ceiling_setup(engine) -> None:
    _CeilingBase.metadata.create_all(engine)
    with make_sessionmaker(engine)() as session:
        if session.get(CeilingRow, 1) is None:
            session.add(CeilingRow(id=1, counter=0, updated_at=utcnow()))
            session.commit()


def ceiling_txns(maker, n: int) -> float:
    """Load-modify-commit ``n`` times; return the seconds they took."""
    began = time.perf_counter()
    for _ in range(n):
        with maker() as session:
            row = session.get(CeilingRow, 1)
            row.counter += 1
            row.updated_at = utcnow()
            session.commit()
    return time.perf_counter() - began


# --- the engine -------------------------------------------------------------------------------


def make_staff(maker) -> dict:
    """One clerk per department (the window and the four agencies); Actors by department."""
    staff = {}
    with maker() as session:
        for department in ("service_window", *sorted(set(DEPARTMENT_OF.values()))):
            user = accounts.create_user(session, f"bench-{department}", PASSWORD, "clerk", department)
            session.flush()
            staff[department] = user.as_actor()
        session.commit()
    return staff


def prepare(maker, staff: dict, n: int, rng: random.Random) -> list[str]:
    """Submit and accept ``n`` cases (untimed), each in its own transaction; their numbers."""
    numbers = []
    window = staff["service_window"]
    for i in range(n):
        with maker() as session:
            case = ops.submit_case(session, window, application(rng, f"广州市基准{rng.randrange(10**6)}科技有限公司"))
            ops.accept_case(session, case, window)
            session.commit()
            numbers.append(case.case_no)
    return numbers


def outputs(key: str, rng: random.Random) -> dict:
    return registration_outputs(rng) if key == "registration" else STEP_OUTPUTS[key](rng)


def act(maker, case_no: str, key: str, action: str, actor, rng: random.Random) -> None:
    """One clerk's action as a request does it: lock the case, run the operation, commit."""
    with maker() as session:
        case = ops.get_case(session, case_no, lock=True)
        if action == "claim":
            ops.claim_step(session, case, key, actor)
        else:
            ops.complete_step(session, case, key, actor, outputs(key, rng))
        session.commit()


def plan(numbers: list[str]) -> list[tuple[str, str, str]]:
    """(case_no, step, action) in the order clerks would do them, case after case."""
    return [(no, key, action) for no in numbers for key in ORDER for action in ("claim", "complete")]


def paired_run(maker, staff: dict, numbers: list[str], rng: random.Random) -> tuple[float, float]:
    """Every action of ``numbers``' cases, each case's ten beside ten ceiling transactions; both per second.

    Pairing them case by case puts the engine and its ceiling under the same load from neighbours.
    """
    engine_seconds = ceiling_seconds = 0.0
    count = 0
    for case_no in numbers:
        actions = plan([case_no])
        began = time.perf_counter()
        for _no, key, action in actions:
            act(maker, case_no, key, action, staff[DEPARTMENT_OF[key]], rng)
        engine_seconds += time.perf_counter() - began
        ceiling_seconds += ceiling_txns(maker, len(actions))
        count += len(actions)
    return count / engine_seconds, count / ceiling_seconds


# --- statements -------------------------------------------------------------------------------


class StatementCounter:
    """Counts the statements an engine sends, by kind (``SELECT cases FOR UPDATE``, ``INSERT events``…)."""

    def __init__(self, engine):
        self.engine, self.kinds, self.on = engine, Counter(), False
        sa_event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, _params, _context, executemany):
        if self.on:
            self.kinds[statement_kind(statement) + (" (executemany)" if executemany else "")] += 1

    def count(self, fn) -> Counter:
        self.kinds, self.on = Counter(), True
        try:
            fn()
        finally:
            self.on = False
        return self.kinds

    def close(self) -> None:
        sa_event.remove(self.engine, "before_cursor_execute", self._seen)


def statement_kind(statement: str) -> str:
    """``SELECT cases FOR UPDATE``, ``INSERT events``…: the verb and the table, subqueries left out."""
    text = " ".join(statement.split())
    while (flat := re.sub(r"\([^()]*\)", "", text)) != text:
        text = flat
    verb = text.split(" ", 1)[0].upper()
    if verb == "SELECT":
        table = re.search(r"\bFROM (\w+)", text)
        kind = f"SELECT {table.group(1) if table else '?'}"
        return kind + (" FOR UPDATE" if "FOR UPDATE" in text else "")
    match = re.match(r"(INSERT INTO|UPDATE|DELETE FROM) (\w+)", text, re.IGNORECASE)
    return f"{match.group(1).split()[0].upper()} {match.group(2)}" if match else verb


def statements_per_action(maker, counter: StatementCounter, staff: dict, rng: random.Random) -> dict:
    """The statements of every action of one fresh case: {"claim": [n per step], "complete": [...], kinds}."""
    (case_no,) = prepare(maker, staff, 1, rng)
    per: dict[str, list[int]] = defaultdict(list)
    kinds: dict[str, Counter] = defaultdict(Counter)
    for _no, key, action in plan([case_no]):
        seen = counter.count(lambda: act(maker, case_no, key, action, staff[DEPARTMENT_OF[key]], rng))
        per[action].append(sum(seen.values()))
        kinds[action].update(seen)
    return {"per_step": dict(per), "kinds": {a: dict(sorted(k.items())) for a, k in kinds.items()}}


# --- main -------------------------------------------------------------------------------------


def measure(name: str, url: str, cases: int, runs: int, profile: bool) -> None:
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    rng = random.Random(2026)
    staff = make_staff(maker)
    ceiling_setup(engine)
    counter = StatementCounter(engine)
    statements = statements_per_action(maker, counter, staff, rng)
    counter.close()

    engine_values, ceiling_values = [], []
    for run in range(runs + 1):  # the first is a warm-up
        numbers = prepare(maker, staff, cases, rng)
        profiler = cProfile.Profile() if profile and run == 1 else None
        if profiler:
            profiler.enable()
        actions, ceiling = paired_run(maker, staff, numbers, rng)
        if profiler:
            profiler.disable()
            print(f"--- cProfile of one run on {name} ({cases * 10} actions and as many ceiling transactions)")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        if run:
            engine_values.append(actions)
            ceiling_values.append(ceiling)
    engine.dispose()

    measured, top = Figures(engine_values, "actions/s"), Figures(ceiling_values, "actions/s")
    ratio = measured.median / top.median
    per_step = statements["per_step"]
    mean = {a: sum(v) / len(v) for a, v in per_step.items()}
    print(f"{name}: engine {measured}; ceiling {top}; {ratio:.0%} of the ceiling")
    print(f"{name}: statements per claim {per_step['claim']} (mean {mean['claim']:.1f}), "
          f"per complete {per_step['complete']} (mean {mean['complete']:.1f}), each plus its COMMIT")
    for action, kinds in statements["kinds"].items():
        print(f"  {action} ({len(per_step[action])} steps): " + ", ".join(f"{k} ×{v}" for k, v in kinds.items()))
    record(SCRIPT, Result(
        benchmark="engine actions",
        figure="claim and complete, one transaction each",
        measured=measured.as_dict(),
        ceiling=top.as_dict(),
        target="≥ 50 % of the ORM ceiling on PostgreSQL",
        met=ratio >= 0.5 if name == "postgresql" else None,
        database=name,
        notes=(f"{cases} cases × 10 actions per run (lock, operation, commit); ceiling: ORM load-modify-commit "
               f"of one row, as many per run, ten after each case's ten actions; SQL statements per claim "
               f"{mean['claim']:.1f}, per complete {mean['complete']:.1f} (each plus its COMMIT)"),
        extra={"ratio": ratio, "statements_per_claim": per_step["claim"],
               "statements_per_complete": per_step["complete"], "statement_kinds": statements["kinds"]},
    ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=40, help="cases per run (ten actions each)")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs (at least 5), after one warm-up")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of one run")
    args = parser.parse_args()
    if args.runs < 5:
        sys.exit("at least 5 runs")
    for name, url in databases():
        measure(name, url, args.cases, args.runs, args.profile)


if __name__ == "__main__":
    main()
