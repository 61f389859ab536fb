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
STEP_ACTIONS = ("claim", "release", "complete", "refuse", "reassign")


def _offered(machine, actions, obj, actor: Actor) -> set[str]:
    """The actions whose transition from the current state would pass every one of its guards."""
    offered = set()
    probe = SimpleNamespace(model=obj, kwargs={"actor": actor})
    for action in actions:
        for transition in machine.events[action].transitions.get(obj.state.name, ()):
            try:
                if all(bool(condition.func(probe)) == condition.target for condition in transition.conditions):
                    offered.add(action)
            except WorkflowError:
                pass
    return offered


def case_actions(case: Case, actor: Actor) -> set[str]:
    """The case actions ``actor`` may take in the case's current state."""
    return _offered(case_machine.MACHINE, CASE_ACTIONS, case, actor)


def step_actions(case: Case, step: Step, actor: Actor) -> set[str]:
    """The step actions ``actor`` may take now (the step guards also check the case's state)."""
    return _offered(step_machine.MACHINE, STEP_ACTIONS, step, actor)
