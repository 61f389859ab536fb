"""The case's life: submitted → in_progress ⇄ suspended → ready → delivered, and its exits."""
import enum

from transitions import Machine

from ..actors import Role
from ..errors import Forbidden
from .step import SETTLED_STATES, StepState


class CaseState(str, enum.Enum):
    submitted = "submitted"
    in_progress = "in_progress"
    suspended = "suspended"
    ready = "ready"
    delivered = "delivered"
    rejected = "rejected"
    withdrawn = "withdrawn"


FINAL_STATES = frozenset({CaseState.delivered, CaseState.rejected, CaseState.withdrawn})


def window_staff(event) -> bool:
    """Only the comprehensive window accepts, rejects, withdraws and delivers."""
    actor = event.kwargs["actor"]
    if not actor.is_window:
        raise Forbidden("only service window staff may do this")
    return True


def window_or_supervisor(event) -> bool:
    """Suspend and resume: the window, or a supervisor of an agency with a step in this case."""
    actor, case = event.kwargs["actor"], event.model
    involved = {step.department for step in case.steps if step.state is not StepState.skipped}
    if not (actor.is_window or (actor.role is Role.supervisor and actor.department in involved)):
        raise Forbidden("only service window staff or a supervisor of an agency in this case may do this")
    return True


def all_steps_settled(event) -> bool:
    """The parallel join: every step is done or skipped."""
    return all(step.state in SETTLED_STATES for step in event.model.steps)


def system_only(event) -> bool:
    """Joins and step refusals are fired by the engine itself, never asked for directly."""
    return bool(event.kwargs.get("by_engine"))


S = CaseState
TRANSITIONS = [
    {"trigger": "accept", "source": S.submitted, "dest": S.in_progress, "conditions": [window_staff]},
    {"trigger": "reject", "source": S.submitted, "dest": S.rejected, "conditions": [window_staff]},
    {"trigger": "suspend", "source": S.in_progress, "dest": S.suspended, "conditions": [window_or_supervisor]},
    {"trigger": "resume", "source": S.suspended, "dest": S.in_progress, "conditions": [window_or_supervisor]},
    {
        "trigger": "withdraw",
        "source": [S.submitted, S.in_progress, S.suspended],
        "dest": S.withdrawn,
        "conditions": [window_staff],
    },
    {
        "trigger": "finish",
        "source": S.in_progress,
        "dest": S.ready,
        "conditions": [system_only, all_steps_settled],
    },
    {"trigger": "step_refused", "source": S.in_progress, "dest": S.rejected, "conditions": [system_only]},
    {"trigger": "deliver", "source": S.ready, "dest": S.delivered, "conditions": [window_staff]},
]

# Authorisation guards per event, run by the operations *before* firing so that a caller without
# the right gets 403 whatever the state (the machine checks the state before its conditions).
PERMISSIONS = {t["trigger"]: [c for c in t["conditions"] if c not in (all_steps_settled, system_only)]
               for t in TRANSITIONS}

MACHINE = Machine(
    model=None,
    states=CaseState,
    initial=CaseState.submitted,
    transitions=TRANSITIONS,
    auto_transitions=False,
    send_event=True,
)
