"""Why the state machines are built once per process: the cost of a Machine against a trigger.

Prints the median of several runs of: building a ``transitions.Machine`` for the case states (what a
Machine per ORM row would cost on every load), and firing one trigger on the shared module-level
machine (what each action costs here). Run: ``.venv/bin/python bench/machines.py``.
"""
import statistics
import time
from types import SimpleNamespace

from transitions import Machine

from workflow.actors import SERVICE_WINDOW, Actor, Role
from workflow.machines import case as case_machine

RUNS, N = 7, 2000


def per_call(fn) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(N):
            fn()
        samples.append((time.perf_counter() - start) / N * 1e6)
    return statistics.median(samples)


def build():
    Machine(model=SimpleNamespace(), states=case_machine.CaseState, initial=case_machine.CaseState.submitted,
            transitions=case_machine.TRANSITIONS, auto_transitions=False, send_event=True)


actor = Actor(user_id=1, username="w", role=Role.clerk, department=SERVICE_WINDOW)
row = SimpleNamespace(state=case_machine.CaseState.in_progress, steps=[])


def trigger():
    case_machine.MACHINE.events["suspend"].trigger(row, actor=actor)
    case_machine.MACHINE.events["resume"].trigger(row, actor=actor)


if __name__ == "__main__":
    built, fired = per_call(build), per_call(trigger) / 2
    print(f"Machine per object: {built:8.1f} µs (median of {RUNS} × {N})")
    print(f"one trigger        : {fired:8.1f} µs on the shared machine")
    print(f"ratio              : {built / fired:8.1f}×")
