"""Which actions an actor may take now: derived from the machines' own transitions and guards.

Pages use this to offer only the buttons that would work; the operations still check everything
when the action is taken. Nothing here restates a rule: it asks the machines.
"""
from __future__ import annotations

from types import SimpleNamespace

from ..actors import Actor
from ..errors import WorkflowError
from ..machines import case as case_machine, step as step_machine
from ..models import Case, Step

CASE_ACTIONS = ("accept", "reject", "suspend", "resume", "withdraw", "deliver")
STEP_ACTIONS = ("claim", "release", "complete", "refuse")


def _offered(machine, permissions: dict, actions, obj, actor: Actor) -> set[str]:
    offered = set()
    possible = set(machine.get_triggers(obj.state.name))
    for action in actions:
        if action not in possible:
            continue
        probe = SimpleNamespace(model=obj, kwargs={"actor": actor})
        try:
            for guard in permissions.get(action, ()):
                guard(probe)
        except WorkflowError:
            continue
        offered.add(action)
    return offered


def case_actions(case: Case, actor: Actor) -> set[str]:
    """The case actions ``actor`` may take in the case's current state."""
    return _offered(case_machine.MACHINE, case_machine.PERMISSIONS, CASE_ACTIONS, case, actor)


def step_actions(case: Case, step: Step, actor: Actor) -> set[str]:
    """The step actions ``actor`` may take now (steps move only while their case runs)."""
    if case.state is not case_machine.CaseState.in_progress:
        return set()
    return _offered(step_machine.MACHINE, step_machine.PERMISSIONS, STEP_ACTIONS, step, actor)
