"""A step's life: waiting → ready → in_progress → done, or skipped, or refused."""
import enum

from transitions import Machine

from ..errors import Forbidden, IllegalAction


class StepState(str, enum.Enum):
    waiting = "waiting"
    ready = "ready"
    in_progress = "in_progress"
    done = "done"
    skipped = "skipped"
    refused = "refused"


SETTLED_STATES = frozenset({StepState.done, StepState.skipped})
OPEN_STATES = frozenset({StepState.ready, StepState.in_progress})


def owning_department(event) -> bool:
    """Only a clerk or supervisor of the step's department may touch it."""
    actor, step = event.kwargs["actor"], event.model
    if not actor.works_for(step.department):
        raise Forbidden(f"step {step.key} belongs to {step.department}")
    return True


def holder_or_supervisor(event) -> bool:
    """A claimed step is finished, released or refused by its holder or the department's supervisor."""
    actor, step = event.kwargs["actor"], event.model
    if step.state is StepState.in_progress and step.assignee_id != actor.user_id \
            and not actor.supervises(step.department):
        raise Forbidden(f"step {step.key} is held by another clerk")
    return True


def department_supervisor(event) -> bool:
    """Only a supervisor of the step's department hands a claimed step to another clerk."""
    actor, step = event.kwargs["actor"], event.model
    if not actor.supervises(step.department):
        raise Forbidden(f"only a supervisor of {step.department} reassigns its steps")
    return True


def case_running(event) -> bool:
    """The case has not ended: in progress, or suspended (a holder may go home while the clock stops)."""
    case_state = event.model.case.state
    if case_state.value not in ("in_progress", "suspended"):
        raise IllegalAction(f"case is {case_state.value}", state=case_state.value)
    return True


def case_in_progress(event) -> bool:
    """Steps move only while their case runs: not while suspended, not after it ended."""
    case_state = event.model.case.state
    if case_state.value != "in_progress":  # (CaseState lives in case.py, which imports this module)
        raise IllegalAction(f"case is {case_state.value}", state=case_state.value)
    return True


def dependencies_done(event) -> bool:
    """Every step this one needs is done."""
    return all(dep.state is StepState.done for dep in event.kwargs["dependencies"])


S = StepState
_WORK = [owning_department, holder_or_supervisor, case_in_progress]
TRANSITIONS = [
    {"trigger": "unblock", "source": S.waiting, "dest": S.ready, "conditions": [dependencies_done]},
    {"trigger": "claim", "source": S.ready, "dest": S.in_progress, "conditions": [owning_department, case_in_progress]},
    {"trigger": "release", "source": S.in_progress, "dest": S.ready, "conditions": _WORK},
    {"trigger": "complete", "source": S.in_progress, "dest": S.done, "conditions": _WORK},
    {"trigger": "refuse", "source": [S.ready, S.in_progress], "dest": S.refused, "conditions": _WORK},
    {"trigger": "reassign", "source": S.in_progress, "dest": S.in_progress,
     "conditions": [department_supervisor, case_running]},
]

PERMISSIONS = {t["trigger"]: [c for c in t["conditions"] if c in (owning_department, holder_or_supervisor, department_supervisor)]
               for t in TRANSITIONS}

MACHINE = Machine(
    model=None,
    states=StepState,
    initial=StepState.waiting,
    transitions=TRANSITIONS,
    auto_transitions=False,
    send_event=True,
)
