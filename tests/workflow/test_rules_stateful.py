"""Random sequences of actions by random users, each checked against a plain model of contract §1.

The model below re-states the rules from the contract in a few dictionaries and functions; it
imports nothing from the engine's machines or guards, so a wrong guard or transition in the engine
shows up as a disagreement. Every action runs as a request would: load the case, call the
operation, commit on success or roll back on a WorkflowError; then the states, assignees, versions
and audit events of every case of the run are read back from the database and compared with the model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from workflow import audit, operations as ops
from workflow.errors import Forbidden, IllegalAction, WorkflowError
from workflow.models import Case, Event, Step

from ..factories import DEPARTMENTS, application, outputs_for

# --- The model: contract §1, re-stated ------------------------------------------------------------

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
    assignee: dict = field(init=False)  # step -> user id
    history: list = field(default_factory=list)  # the actions that succeeded, to explain a failure

    def __post_init__(self):
        self.steps = {key: "skipped" if key in OPTIONAL and not self.wants[key] else "waiting" for key in PROCESS}
        self.assignee = dict.fromkeys(PROCESS)


def submit_outcome(user: User):
    """The error the contract predicts for a submission (None when it is allowed)."""
    return None if user.window else Forbidden


def case_outcome(case: ModelCase, action: str, user: User):
    """Permission first (403 whatever the state), then the state (409)."""
    # Suspend and resume: the window, or a supervisor of an agency that has a step in this case.
    involved = {PROCESS[key][0] for key, state in case.steps.items() if state != "skipped"}
    allowed = user.window or (action in ("suspend", "resume") and user.role == "supervisor"
                              and user.department in involved)
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
    """The owning department only; a held step only by its holder or the supervisor; then the states."""
    if user.department != PROCESS[key][0] or user.role not in STAFF_ROLES:
        return Forbidden
    if action != "claim" and case.steps[key] == "in_progress" \
            and case.assignee[key] != user.id and user.role != "supervisor":
        return Forbidden
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
            case.state = "ready"  # in the same action that settles the last step
    elif action == "refuse":
        case.state = "rejected"


def open_steps(case: ModelCase) -> None:
    """A waiting step becomes ready once everything it needs is done or skipped."""
    for key, (_, needs) in PROCESS.items():
        if case.steps[key] == "waiting" and all(case.steps[n] in SETTLED for n in needs):
            case.steps[key] = "ready"


# --- Driving the engine ---------------------------------------------------------------------------

WANTS = st.fixed_dictionaries({key: st.booleans() for key in OPTIONAL})
HEAD_STARTS = ("in_progress", "submitted", "ready")  # how far a run's first cases are taken before it starts
# No shrinking: every candidate replays dozens of database actions, so shrinking ran into Hypothesis'
# five-minute limit; instead a failure names the action, the users and the case's whole history.
SETTINGS = settings(max_examples=30, stateful_step_count=50, deadline=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow])
AUDIT_EVERY = 10  # verifying the chains after each action would dominate the run time
# One rule draws the action: Hypothesis' swarm testing switches whole rules off for a run, and with a
# rule per operation most runs never got a case past its first step. Weights favour moving cases on
# (and Hypothesis favours the first entry, so that is the busiest one).
ACTIONS = {"claim": 4, "complete": 4, "accept": 2, "resume": 2, "deliver": 1, "suspend": 1, "release": 1,
           "submit": 1, "reject": 1, "withdraw": 1, "refuse": 1}
# Each draw of an action, case, step or user is one the rules allow with this probability (else anything
# at all): high for actions that move a case on, low for those that end one, so cases live to finish.
LEAN = {"action": 0.75, "accept": 0.9, "resume": 0.9, "claim": 0.9, "complete": 0.9, "deliver": 0.5,
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
    return outcome.__name__ if outcome else "success"


def make_hall(session, users: dict[str, User]):
    """The state machine class for one database; ``users`` (by a readable name) exist already."""
    window = [name for name, u in users.items() if u.window]
    user_name = {u.id: name for name, u in users.items()}

    class Hall(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.model: dict[str, ModelCase] = {}  # by a name for this run: case1, case2...
            self.stored: dict[str, tuple[str, int]] = {}  # its case number and id
            self.event_counts: dict[str, int] = {}
            self.actions = 0

        # --- choosing: anything may be drawn, but draws lean towards what the rules allow ---

        @staticmethod
        def pick(data, label: str, action: str, everything, allowed: list):
            """One of ``allowed`` with the action's LEAN, else one drawn by ``everything`` (a list or strategy)."""
            if isinstance(everything, list):
                everything = st.sampled_from(everything)
            lean = round(LEAN[action] * 20) if allowed else 0  # out of 20, whatever the sizes of the lists
            return data.draw(st.integers(0, 19).flatmap(
                lambda n: st.sampled_from(allowed) if n < lean else everything), label=label)

        def pick_user(self, data, action: str, allowed) -> User:
            return users[self.pick(data, "user", action, list(users), [n for n, u in users.items() if allowed(u)])]

        def pick_case(self, data, action: str, allowed) -> str:
            """A case; "anything" is a state first, then a case in it, so that rare states are tried as often."""
            by_state = {}
            for name, model in self.model.items():
                by_state.setdefault(model.state, []).append(name)
            anything = st.sampled_from(sorted(by_state)).flatmap(lambda state: st.sampled_from(by_state[state]))
            return self.pick(data, "case", action, anything, [n for n, m in self.model.items() if allowed(m)])

        def possible(self, action: str) -> bool:
            """Whether some case (or step of one) is in a state the action may start from."""
            if action == "submit":
                return True
            if action in CASE_MOVES:
                return any(m.state in CASE_MOVES[action][0] for m in self.model.values())
            return any(m.state == "in_progress" and any(s in STEP_MOVES[action][0] for s in m.steps.values())
                       for m in self.model.values())

        # --- running an action as a request would, and checking what it did ---

        def story(self, name: str | None) -> str:
            if name is None:
                return ""
            model = self.model[name]
            held = {k: user_name[i] for k, i in model.assignee.items() if i is not None}
            return (f"\n{name} per the rules: {model.state}, version {model.version}, steps {model.steps}, "
                    f"held {held}\n{name} so far: " + "; ".join(model.history))

        def perform(self, name: str | None, label: str, expected, call, states_named=frozenset()):
            """Call the operation, commit or roll back, and check the outcome against ``expected``.

            A 409 must name the current state: the case's, or for a step action the case's or the step's.
            """
            self.actions += 1
            try:
                result = call()
            except WorkflowError as error:
                session.rollback()
                result, outcome, detail = None, type(error), f" ({error!r})"
                state_named = error.state if isinstance(error, IllegalAction) else None
            except BaseException:
                session.rollback()
                raise
            else:
                session.commit()
                outcome, detail, state_named = None, "", None
            assert outcome is expected, (f"{label}: the rules say {_name(expected)}, "
                                         f"the engine said {_name(outcome)}{detail}{self.story(name)}")
            if outcome is IllegalAction:
                assert state_named in states_named, f"{label}: 409 names {state_named!r}, not {states_named}"
            return result

        def check_database(self, acted_on: str | None, succeeded: bool) -> None:
            """Every case of the run, as stored, matches the model; only a success added audit events."""
            names = {case_id: name for name, (_, case_id) in self.stored.items()}
            cases = {names[row.id]: (_value(row.state), row.version) for row in session.execute(
                select(Case.id, Case.state, Case.version).where(Case.id.in_(names)))}
            steps = {name: {} for name in self.model}
            for row in session.execute(select(Step.case_id, Step.key, Step.state, Step.assignee_id)
                                       .where(Step.case_id.in_(names))):
                steps[names[row.case_id]][row.key] = (_value(row.state), row.assignee_id)
            events = {names[case_id]: count for case_id, count in session.execute(
                select(Event.case_id, func.count()).where(Event.case_id.in_(names)).group_by(Event.case_id))}
            for name, model in self.model.items():
                assert cases[name] == (model.state, model.version), \
                    f"stored case {cases[name]} after {model.history[-1:]}{self.story(name)}"
                assert steps[name] == {k: (model.steps[k], model.assignee[k]) for k in PROCESS}, \
                    f"stored steps (state, assignee id) {steps[name]}{self.story(name)}"
                before = self.event_counts.get(name, 0)
                if name == acted_on and succeeded:
                    assert events[name] > before, f"no audit event for a success{self.story(name)}"
                else:
                    assert events[name] == before, f"audit events changed without a success{self.story(name)}"
                self.event_counts[name] = events[name]

        # --- the actions ---

        def submit(self, user: User, wants: dict) -> None:
            label = f"submit by {user!r} wanting {[k for k, wanted in wants.items() if wanted]}"
            case = self.perform(None, label, submit_outcome(user),
                                lambda: ops.submit_case(session, user.actor, application(wants=wants)))
            name = None
            if case is not None:
                name = f"case{len(self.model) + 1}"
                self.model[name] = ModelCase(wants=wants, history=[label])
                self.stored[name] = (case.case_no, case.id)
            self.check_database(name, case is not None)

        @initialize(starts=st.lists(st.tuples(WANTS, st.sampled_from(HEAD_STARTS)), min_size=2, max_size=3))
        def open_hall(self, starts):
            """Start every run with a few cases, some already under way or ready, through checked actions.

            Without this a case seldom reaches ``ready`` before the run ends, and seldom stays there long.
            """
            for i, (wants, start) in enumerate(starts):
                self.submit(users[window[i % len(window)]], wants)
                name = list(self.model)[-1]
                if start != "submitted":
                    self.act_on_case("accept", None, name=name, user=users[window[i % len(window)]])
                while start == "ready" and self.model[name].state == "in_progress":
                    model = self.model[name]
                    key = next(k for k in PROCESS if model.steps[k] in ("ready", "in_progress"))
                    clerk = users[f"clerk@{PROCESS[key][0]}"]
                    self.act_on_step("claim" if model.steps[key] == "ready" else "complete", None,
                                     name=name, key=key, user=clerk)

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
            name = name or self.pick_case(data, action, lambda m: m.state in CASE_MOVES[action][0])
            model, case_no = self.model[name], self.stored[name][0]
            user = user or self.pick_user(data, action, lambda u: case_outcome(model, action, u) is not Forbidden)
            expected = case_outcome(model, action, user)
            label = f"{action} {name} ({model.state}) by {user!r}"
            self.perform(name, label, expected,
                         lambda: CASE_CALLS[action](session, ops.get_case(session, case_no, lock=True), user.actor),
                         states_named={model.state})
            if expected is None:
                apply_case(model, action)
                model.history.append(label)
            self.check_database(name, expected is None)

        def act_on_step(self, action: str, data, *, name: str | None = None, key: str | None = None,
                        user: User | None = None) -> None:
            name = name or self.pick_case(data, action, lambda m: m.state == "in_progress")
            model, case_no = self.model[name], self.stored[name][0]
            key = key or self.pick(data, "step", action, list(PROCESS),
                                   [k for k, state in model.steps.items() if state in STEP_MOVES[action][0]])
            # Lean towards the department's staff, not only those allowed, so a held step often meets the other one.
            user = user or self.pick_user(data, action, lambda u: u.department == PROCESS[key][0])
            expected = step_outcome(model, key, action, user)
            holder = user_name.get(model.assignee[key])
            label = (f"{action} {key} of {name} ({model.state}; step {model.steps[key]}"
                     f"{', held by ' + holder if holder else ''}) by {user!r}")
            self.perform(name, label, expected,
                         lambda: STEP_CALLS[action](session, ops.get_case(session, case_no, lock=True), key,
                                                    user.actor),
                         states_named={model.state, model.steps[key]})
            if expected is None:
                apply_step(model, key, action, user)
                model.history.append(label)
            self.check_database(name, expected is None)

        # --- the audit trail ---

        @invariant()
        def audit_chains_hold(self):
            """This run's hash chains verify (every few actions: verifying is the slowest check)."""
            if self.actions % AUDIT_EVERY == 0:
                self.verify_chains()

        def verify_chains(self):
            for name, (_, case_id) in self.stored.items():
                assert audit.verify(session, case_id) == [], self.story(name)

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
    # Each run verified its own chains; the database now holds every run's cases, and all must verify.
    assert audit.verify(session) == []
