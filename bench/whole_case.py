"""A whole case: application to delivery through the engine, beside SpiffWorkflow running the same process.

What it measures: milliseconds per case and cases per second for one company opening done as clerks
do it, every action its own transaction (a new session, the case's row lock, the operation, a
commit): submit, accept, claim and complete each of the five steps (registration, tax, invoice,
seal, bank), deliver — thirteen transactions through ``workflow.operations``.

Its ceiling, here a yardstick: SpiffWorkflow 3 (the ``bench`` extra) running the same process written
as BPMN (``bench/company_opening.bpmn``: registration, then seal, tax → invoice and bank in
parallel, joined, then delivery; user tasks) the way a web application must: the workflow is
created and saved, then for each of its six user tasks loaded from the database, the task run with
its outputs as task data, the engine steps done, and the workflow saved back (JSON text in a table of
the bench's own, ``bench_spiff_workflows``, read ``FOR UPDATE``), one transaction and commit per
task — seven in all. To be fair the BPMN is parsed once and Spiff's serializer leaves the parsed
spec out of every save and reuses it on every load (as the engine builds its machines once), so
Spiff pays for its workflow state only. Both run on the same database, case by case in turns.
Target: the engine at least 1.5× SpiffWorkflow's cases per second, on SQLite and on PostgreSQL.

Run: ``bin/with-postgres .venv/bin/python bench/whole_case.py`` (SQLite, then PostgreSQL; a minute
or two). Without ``bin/with-postgres`` only SQLite is measured.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from uuid import UUID

from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.serializer import DEFAULT_CONFIG, BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Text, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine import DEPARTMENT_OF, ORDER, make_staff, outputs
from harness import RUNS, Figures, Result, databases, record
from workflow import operations as ops
from workflow.db import make_engine, make_sessionmaker
from workflow.demo import application

SCRIPT = "whole_case"
BPMN = Path(__file__).resolve().parent / "company_opening.bpmn"
SPIFF_TASKS = ("registration", "tax", "invoice", "seal", "bank", "deliver")  # the clerks' order, as ORDER
TRANSACTIONS = 3 + 2 * len(ORDER)  # submit, accept, claim and complete each step, deliver


# --- the engine -------------------------------------------------------------------------------


def engine_case(maker, staff: dict, rng: random.Random) -> None:
    """One case from application to delivery, one transaction per action."""
    window = staff["service_window"]
    with maker() as session:
        case_no = ops.submit_case(session, window, application(rng, f"广州市基准{rng.randrange(10**6)}科技有限公司")).case_no
        session.commit()
    steps = [(key, action) for key in ORDER for action in ("claim", "complete")]
    for key, action in [(None, "accept"), *steps, (None, "deliver")]:
        with maker() as session:
            case = ops.get_case(session, case_no, lock=True)
            if action == "accept":
                ops.accept_case(session, case, window)
            elif action == "deliver":
                ops.deliver_case(session, case, window, method="counter")
            elif action == "claim":
                ops.claim_step(session, case, key, staff[DEPARTMENT_OF[key]])
            else:
                ops.complete_step(session, case, key, staff[DEPARTMENT_OF[key]], outputs(key, rng))
            session.commit()


# --- SpiffWorkflow ------------------------------------------------------------------------------


class _SpiffBase(DeclarativeBase):
    pass


class SpiffRow(_SpiffBase):
    """A serialized SpiffWorkflow workflow (its state as JSON text)."""

    __tablename__ = "bench_spiff_workflows"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(Text)


class ParsedSpecConverter(BpmnWorkflowConverter):
    """Spiff's workflow converter without the spec: saves leave it out, loads reuse the one parsed.

    Spiff's own converter writes the whole process spec into every serialization and rebuilds it on
    every load; the engine, for its part, builds its machines once per process.
    """

    spec = subprocess_specs = None  # set once the BPMN is parsed

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        workflow = self.target_class(self.spec, self.subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def spiff_setup(engine) -> BpmnWorkflowSerializer:
    """Parse the BPMN once; make the table; return a serializer that reuses the parsed spec."""
    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    ParsedSpecConverter.spec = parser.get_spec("company_opening")
    ParsedSpecConverter.subprocess_specs = parser.get_subprocess_specs("company_opening")
    _SpiffBase.metadata.create_all(engine)
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure({**DEFAULT_CONFIG,
                                                                    BpmnWorkflow: ParsedSpecConverter}))


def spiff_case(maker, serializer: BpmnWorkflowSerializer, rng: random.Random) -> None:
    """One case through SpiffWorkflow: create and save, then load, run, save each user task."""
    workflow = BpmnWorkflow(ParsedSpecConverter.spec, ParsedSpecConverter.subprocess_specs)
    start = workflow.get_tasks(state=TaskState.READY)[0]
    start.data["application"] = application(rng, f"广州市基准{rng.randrange(10**6)}科技有限公司")
    workflow.do_engine_steps()
    with maker() as session:
        row = SpiffRow(state=serializer.serialize_json(workflow))
        session.add(row)
        session.commit()
        workflow_id = row.id
    for name in SPIFF_TASKS:
        with maker() as session:
            row = session.scalars(select(SpiffRow).where(SpiffRow.id == workflow_id).with_for_update()).one()
            workflow = serializer.deserialize_json(row.state)
            task = next(t for t in workflow.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.name == name)
            task.data[name] = {"method": "counter"} if name == "deliver" else outputs(name, rng)
            task.run()
            workflow.do_engine_steps()
            row.state = serializer.serialize_json(workflow)
            session.commit()
    if not workflow.is_completed():
        sys.exit("SpiffWorkflow did not complete the case")


# --- main -------------------------------------------------------------------------------------


def measure(name: str, url: str, cases: int, runs: int) -> None:
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    rng = random.Random(2026)
    staff = make_staff(maker)
    serializer = spiff_setup(engine)
    ours, theirs = [], []
    for run in range(runs + 1):  # the first is a warm-up
        ours_s = theirs_s = 0.0
        for _ in range(cases):  # case by case in turns: a neighbour's load hits both alike
            began = time.perf_counter()
            engine_case(maker, staff, rng)
            ours_s += time.perf_counter() - began
            began = time.perf_counter()
            spiff_case(maker, serializer, rng)
            theirs_s += time.perf_counter() - began
        if run:
            ours.append(cases / ours_s)
            theirs.append(cases / theirs_s)
    engine.dispose()

    measured, spiff = Figures(ours, "cases/s"), Figures(theirs, "cases/s")
    ratio = measured.median / spiff.median
    ms_ours = sorted(1e3 / v for v in ours)
    ms_theirs = sorted(1e3 / v for v in theirs)
    print(f"{name}: engine {measured}, {ms_ours[len(ms_ours) // 2]:.1f} ms per case; SpiffWorkflow {spiff}, "
          f"{ms_theirs[len(ms_theirs) // 2]:.1f} ms per case; {ratio:.2f}×")
    record(SCRIPT, Result(
        benchmark="a whole case",
        figure="application to delivery, a transaction per action, against SpiffWorkflow 3",
        measured=measured.as_dict(),
        ceiling=spiff.as_dict(),
        target="≥ 1.5× SpiffWorkflow's cases per second",
        met=ratio >= 1.5,
        database=name,
        notes=(f"engine: {TRANSACTIONS} transactions a case, median {ms_ours[len(ms_ours) // 2]:.1f} ms "
               f"({ms_ours[0]:.1f}–{ms_ours[-1]:.1f}); SpiffWorkflow: {1 + len(SPIFF_TASKS)} transactions "
               f"(create, six user tasks), median {ms_theirs[len(ms_theirs) // 2]:.1f} ms "
               f"({ms_theirs[0]:.1f}–{ms_theirs[-1]:.1f}); {cases} cases of each per run, in turns"),
        extra={"ratio_as": "times", "ratio": ratio, "ms_per_case": Figures(ms_ours, "ms").as_dict(),
               "spiff_ms_per_case": Figures(ms_theirs, "ms").as_dict(), "transactions_per_case": TRANSACTIONS,
               "spiff_transactions_per_case": 1 + len(SPIFF_TASKS)},
    ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20, help="cases of each per run")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs (at least 5), after one warm-up")
    args = parser.parse_args()
    if args.runs < 5:
        sys.exit("at least 5 runs")
    for name, url in databases():
        measure(name, url, args.cases, args.runs)


if __name__ == "__main__":
    main()
