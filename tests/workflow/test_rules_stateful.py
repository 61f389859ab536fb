"""Random sequences of actions by random users, each checked against a plain model of contract §1.

The model below re-states the rules from the contract in a few dictionaries and functions; it
imports nothing from the engine's machines or guards, so a wrong guard or transition in the engine
shows up as a disagreement. Every action runs as a request would: load the case, call the
operation, commit on success or roll back on a WorkflowError; then the states, assignees and
version are read back from the database and compared with the model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from workflow import audit, operations as ops
from workflow.errors import Forbidden, IllegalAction, WorkflowError
from workflow.models import Case, Event, Step

from ..factories import DEPARTMENTS, application, outputs_for

# --- The model: contract §1, re-stated --------------------------------------------------------

WINDOW = "service_window"
STAFF_ROLES = ("clerk", "supervisor")
# step: (owning department, the steps it needs first), in the contract's order.
PROCESS = {
    "registration": ("market_regulation", ()),
    "seal": ("public_security", ("registration",)),
    "tax": ("taxation", ("registration",)),
    "invoice": ("taxation", ("tax",)),
    "bank": ("bank", ("registration",)),
}
OPTIONAL = ("seal", "invoice", "bank")
SETTLED = ("done", "skipped")
# action: (the states it may start from, the state it leads to).
CASE_MOVES = {
    "accept": ({"submitted"}, "in_progress"),
    "reject": ({"submitted"}, "rejected"),
    "suspend": ({"in_progress"}, "suspended"),
    "resume": ({"suspended"}, "in_progress"),
    "withdraw": ({"submitted", "in_progress", "suspended"}, "withdrawn"),
    "deliver": ({"ready"}, "delivered"),
}
STEP_MOVES = {
    "claim": ({"ready"}, "in_progress"),
    "release": ({"in_progress"}, "ready"),
    "complete": ({"in_progress"}, "done"),
    "refuse": ({"ready", "in_progress"}, "refused"),
}


@dataclass(frozen=True)
class User:
    role: str
    department: str | None
    id: int
    actor: object  # what the operations are given; the model looks only at role, department and id

    @property
    def window(self) -> bool:
        return self.department == WINDOW and self.role in STAFF_ROLES

    def __repr__(self) -> str:
        return f"{self.role}@{self.department}" if self.department else self.role


@dataclass
class ModelCase:
    wants: dict
    state: str = "submitted"
    version: int = 1
    steps: dict = field(init=False)
    assignee: dict = field(init=False)

    def __post_init__(self):
        self.steps = {key: "skipped" if key in OPTIONAL and not self.wants[key] else "waiting" for key in PROCESS}
        self.assignee = dict.fromkeys(PROCESS)


def submit_outcome(user: User):
    """The error the contract predicts for a submission (None when it is allowed)."""
    return None if user.window else Forbidden


def case_outcome(case: ModelCase, action: str, user: User):
    """Permission first (403 whatever the state), then the state (409)."""
    allowed = user.window or (action in ("suspend", "resume") and user.role == "supervisor")
    if not allowed:
        return Forbidden
    if case.state not in CASE_MOVES[action][0]:
        return IllegalAction
    return None


def apply_case(case: ModelCase, action: str) -> None:
    case.state = CASE_MOVES[action][1]
    case.version += 1
    if action == "accept":
        open_steps(case)


def step_outcome(case: ModelCase, key: str, action: str, user: User):
    department = PROCESS[key][0]
    if user.department != department or user.role not in STAFF_ROLES:
        return Forbidden
    if action != "claim" and case.steps[key] == "in_progress" \
            and case.assignee[key] != user.id and user.role != "supervisor":
        return Forbidden  # held by someone else; only the holder or the supervisor may go on
    if case.state != "in_progress" or case.steps[key] not in STEP_MOVES[action][0]:
        return IllegalAction
    return None


def apply_step(case: ModelCase, key: str, action: str, user: User) -> None:
    case.steps[key] = STEP_MOVES[action][1]
    case.version += 1
    if action == "claim":
        case.assignee[key] = user.id
    elif action == "release":
        case.assignee[key] = None
    elif action == "complete":
        open_steps(case)
        if all(state in SETTLED for state in case.steps.values()):
            case.state = "ready"
    elif action == "refuse":
        case.state = "rejected"


def open_steps(case: ModelCase) -> None:
    """A waiting step becomes ready once everything it needs is done or skipped."""
    for key, (_, needs) in PROCESS.items():
        if case.steps[key] == "waiting" and all(case.steps[n] in SETTLED for n in needs):
            case.steps[key] = "ready"


# --- Driving the engine -------------------------------------------------------------------------

WANTS = st.fixed_dictionaries({key: st.booleans() for key in OPTIONAL})
SETTINGS = settings(max_examples=30, stateful_step_count=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
AUDIT_EVERY = 10  # verifying the chains after each action would dominate the run time
# One rule draws the action: Hypothesis' swarm testing switches whole rules off for a run, and with a
# rule per operation most runs never got a case past its first step. Weights favour moving cases on
# (and Hypothesis favours the first entry, so that is the busiest one).
ACTIONS = {"claim": 4, "complete": 4, "accept": 2, "deliver": 2, "resume": 2, "suspend": 1, "release": 1,
           "submit": 1, "reject": 1, "withdraw": 1, "refuse": 1}
# Each draw of an action, case, step or user is one the rules allow with this probability (else anything
# at all): high for actions that move a case on, low for those that end one, so cases live to finish.
LEAN = {"action": 0.75, "accept": 0.9, "resume": 0.9, "deliver": 0.9, "claim": 0.9, "complete": 0.9,
        "suspend": 0.5, "release": 0.5, "submit": 0.25, "reject": 0.25, "withdraw": 0.25, "refuse": 0.25}
CASE_CALLS = {
    "accept": lambda session, case, actor: ops.accept_case(session, case, actor),
    "reject": lambda session, case, actor: ops.reject_case(session, case, actor, reason="名称与已登记企业重名"),
    "suspend": lambda session, case, actor: ops.suspend_case(session, case, actor, reason="补正材料"),
    "resume": lambda session, case, actor: ops.resume_case(session, case, actor),
    "withdraw": lambda session, case, actor: ops.withdraw_case(session, case, actor, reason="申请人撤回"),
    "deliver": lambda session, case, actor: ops.deliver_case(session, case, actor, method="counter"),
}
STEP_CALLS = {
    "claim": lambda session, case, key, actor: ops.claim_step(session, case, key, actor),
    "release": lambda session, case, key, actor: ops.release_step(session, case, key, actor),
    "complete": lambda session, case, key, actor: ops.complete_step(session, case, key, actor, outputs_for(key)),
    "refuse": lambda session, case, key, actor: ops.refuse_step(session, case, key, actor, reason="不予登记"),
}


def _value(state) -> str:
    return getattr(state, "value", state)


def _name(outcome) -> str:
    return outcome.__name__ if outcome else "ok"


def make_hall(session, users: dict[str, User]):
    """The state machine class for one database: ``users`` by a readable key, created beforehand."""
    window = [key for key, u in users.items() if u.window]

    class Hall(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.model: dict[str, ModelCase] = {}  # by a name for this run: case1, case2...
            self.actions = 0
            self.stored: dict[str, tuple[str, int]] = {}  # case number and id of each of this run's cases
            self.event_counts: dict[str, int] = {}

        # --- choosing: anything may be drawn, but draws lean towards what the rules allow ---

        @staticmethod
        def pick(data, label: str, action: str, everything: list, allowed: list):
            lean = round(LEAN[action] * 20) if allowed else 0  # out of 20, whatever the sizes of the lists
            return data.draw(st.integers(0, 19).flatmap(
                lambda n: st.sampled_from(allowed if n < lean else everything)), label=label)

        def possible(self, action: str) -> bool:
            """Whether some case (or step of one) is in a state the action may start from."""
            if action == "submit":
                return True
            if action in CASE_MOVES:
                return any(m.state in CASE_MOVES[action][0] for m in self.model.values())
            return any(m.state == "in_progress" and any(s in STEP_MOVES[action][0] for s in m.steps.values())
                       for m in self.model.values())

        def pick_user(self, data, action: str, allowed) -> User:
            return users[self.pick(data, "user", action, list(users), [k for k, u in users.items() if allowed(u)])]

        # --- running an action as a request would ---

        def perform(self, label: str, expected, call, states_named: set[str] = frozenset()):
            """Call the operation, commit or roll back, and check the outcome against ``expected``.

            A 409 must name the current state: the case's, or for a step action the case's or the step's.
            """
            self.actions += 1
            try:
                result = call()
            except WorkflowError as error:
                session.rollback()
                result, outcome, detail = None, type(error), error
            except BaseException:
                session.rollback()
                raise
            else:
                session.commit()
                outcome, detail = None, result
            assert outcome is expected, \
                f"{label}: the rules say {_name(expected)}, the engine said {_name(outcome)} ({detail!r})"
            if isinstance(detail, IllegalAction):
                assert detail.state in states_named, f"{label}: 409 names {detail.state!r}, not {states_named}"
            return result

        def check_database(self, acted_on: str | None, succeeded: bool) -> None:
            """States, assignees and versions as stored equal the model's; a refusal stored nothing."""
            ids = {case_id: name for name, (_, case_id) in self.stored.items()}
            cases = {ids[row.id]: (_value(row.state), row.version) for row in session.execute(
                select(Case.id, Case.state, Case.version).where(Case.id.in_(ids)))}
            steps = {name: {} for name in self.model}
            for row in session.execute(select(Step.case_id, Step.key, Step.state, Step.assignee_id)
                                       .where(Step.case_id.in_(ids))):
                steps[ids[row.case_id]][row.key] = (_value(row.state), row.assignee_id)
            events = {ids[case_id]: count for case_id, count in session.execute(
                select(Event.case_id, func.count()).where(Event.case_id.in_(ids)).group_by(Event.case_id))}
            for name, model in self.model.items():
                assert cases[name] == (model.state, model.version), (name, cases[name], model)
                assert steps[name] == {k: (model.steps[k], model.assignee[k]) for k in PROCESS}, \
                    (name, steps[name], model)
                before = self.event_counts.get(name, 0)
                if name == acted_on and succeeded:
                    assert events[name] > before, f"{name}: a successful action left no audit event"
                else:
                    assert events[name] == before, f"{name}: events changed without a successful action"
                self.event_counts[name] = events[name]

        # --- the actions ---

        def submit(self, user: User, wants: dict) -> None:
            expected = submit_outcome(user)
            case = self.perform(f"submit by {user!r}", expected,
                                lambda: ops.submit_case(session, user.actor, application(wants=wants)))
            name = None
            if case is not None:
                name = f"case{len(self.model) + 1}"
                self.model[name] = ModelCase(wants=wants)
                self.stored[name] = (case.case_no, case.id)
            self.check_database(name, case is not None)

        @initialize(wants=st.lists(WANTS, min_size=2, max_size=3), accepted=st.integers(1, 3))
        def open_hall(self, wants, accepted):
            """Start every run with a few cases, some already accepted, so that every action has a target."""
            for i, w in enumerate(wants):
                self.submit(users[window[i % len(window)]], w)
            for name in list(self.model)[:accepted]:
                self.act_on_case("accept", None, name=name, user=users[window[0]])

        @rule(data=st.data())
        def act(self, data):
            """One request: a random action on a random case (or step) by a random user."""
            every_action = [a for a, n in ACTIONS.items() for _ in range(n)]
            action = self.pick(data, "action", "action", every_action, [a for a in every_action if self.possible(a)])
            if action == "submit":
                user = self.pick_user(data, action, lambda u: submit_outcome(u) is None)
                self.submit(user, data.draw(WANTS, label="wants"))
            elif action in CASE_MOVES:
                self.act_on_case(action, data)
            else:
                self.act_on_step(action, data)

        def act_on_case(self, action: str, data, *, name: str | None = None, user: User | None = None) -> None:
            name = name or self.pick(data, "case", action, list(self.model),
                                     [n for n, m in self.model.items() if m.state in CASE_MOVES[action][0]])
            model, case_no = self.model[name], self.stored[name][0]
            user = user or self.pick_user(data, action, lambda u: case_outcome(model, action, u) is not Forbidden)
            expected = case_outcome(model, action, user)
            self.perform(f"{action} {name} ({model.state}) by {user!r}", expected,
                         lambda: CASE_CALLS[action](session, ops.get_case(session, case_no, lock=True), user.actor),
                         states_named={model.state})
            if expected is None:
                apply_case(model, action)
            self.check_database(name, expected is None)

        def act_on_step(self, action: str, data) -> None:
            name = self.pick(data, "case", action, list(self.model),
                             [n for n, m in self.model.items() if m.state == "in_progress"])
            model, case_no = self.model[name], self.stored[name][0]
            key = self.pick(data, "step", action, list(PROCESS),
                            [k for k, state in model.steps.items() if state in STEP_MOVES[action][0]])
            user = self.pick_user(data, action, lambda u: step_outcome(model, key, action, u) is not Forbidden)
            expected = step_outcome(model, key, action, user)
            holder = next((k for k, u in users.items() if u.id == model.assignee[key]), None)
            self.perform(f"{action} {name} ({model.state}) step {key} ({model.steps[key]}, held by {holder}) "
                         f"by {user!r}", expected,
                         lambda: STEP_CALLS[action](session, ops.get_case(session, case_no, lock=True), key,
                                                    user.actor),
                         states_named={model.state, model.steps[key]})
            if expected is None:
                apply_step(model, key, action, user)
            self.check_database(name, expected is None)

        # --- the audit trail ---

        @invariant()
        def audit_chains_hold(self):
            """This run's hash chains verify (every few actions: verifying is the slowest check)."""
            if self.actions % AUDIT_EVERY == 0:
                self.verify_chains()

        def verify_chains(self):
            for _, case_id in self.stored.values():
                assert audit.verify(session, case_id) == []

        def teardown(self):
            try:
                self.verify_chains()
            finally:
                session.rollback()

    return Hall


def test_random_actions_by_random_users_follow_the_rules(session, factory):
    users = {}
    for department in (*DEPARTMENTS, None):
        for role in STAFF_ROLES if department else ("admin",):
            actor = factory.actor(role, department)
            users[f"{role}@{department}" if department else role] = User(role, department, actor.user_id, actor)
    run_state_machine_as_test(make_hall(session, users), settings=SETTINGS)
    # Each run verified its own chains; the database holds every run's cases, and all must verify.
    assert audit.verify(session) == []
