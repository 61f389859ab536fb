"""The actions offered to a user are exactly those the engine would accept."""
import pytest

from workflow import operations as ops
from workflow.errors import WorkflowError
from workflow.operations.available import case_actions, step_actions

ROLES = [("clerk", d) for d in ("service_window", "market_regulation", "taxation", "bank")] + \
        [("supervisor", d) for d in ("service_window", "market_regulation", "public_security")] + [("admin", None)]

CASE_OPERATIONS = {
    "accept": lambda s, c, a: ops.accept_case(s, c, a),
    "reject": lambda s, c, a: ops.reject_case(s, c, a, reason="x"),
    "suspend": lambda s, c, a: ops.suspend_case(s, c, a, reason="x"),
    "resume": lambda s, c, a: ops.resume_case(s, c, a),
    "withdraw": lambda s, c, a: ops.withdraw_case(s, c, a, reason="x"),
    "deliver": lambda s, c, a: ops.deliver_case(s, c, a, method="counter"),
}


@pytest.mark.parametrize("state", ["submitted", "in_progress", "suspended", "ready", "delivered"])
def test_offered_case_actions_are_the_ones_that_succeed(session, factory, state):
    case = factory.case(state, wants={"seal": False, "invoice": True, "bank": False})
    for role, department in ROLES:
        actor = factory.actor(role, department)
        offered = case_actions(case, actor)
        for action, run in CASE_OPERATIONS.items():
            try:
                run(session, case, actor)
                worked = True
            except WorkflowError:
                worked = False
            session.rollback()
            assert worked == (action in offered), (role, department, state, action)


def test_offered_step_actions_follow_department_and_holder(session, factory):
    case = factory.case("in_progress")
    clerk, other, boss = (factory.actor("clerk", "market_regulation"), factory.actor("clerk", "taxation"),
                          factory.actor("supervisor", "market_regulation"))
    registration = case.step("registration")
    assert step_actions(case, registration, clerk) == {"claim", "refuse"}
    assert step_actions(case, registration, other) == set()
    ops.claim_step(session, case, "registration", boss)
    assert step_actions(case, registration, clerk) == set()  # held by the supervisor
    assert step_actions(case, registration, boss) == {"complete", "release", "refuse", "reassign"}


def test_a_supervisor_is_offered_reassignment_of_a_claimed_step_even_while_the_case_is_suspended(session, factory):
    case = factory.case("in_progress")
    clerk, boss = factory.actor("clerk", "market_regulation"), factory.actor("supervisor", "market_regulation")
    registration = case.step("registration")
    assert "reassign" not in step_actions(case, registration, boss)  # nobody holds it yet
    ops.claim_step(session, case, "registration", clerk)
    assert step_actions(case, registration, clerk) == {"complete", "release", "refuse"}
    assert step_actions(case, registration, boss) == {"complete", "release", "refuse", "reassign"}
    ops.suspend_case(session, case, factory.actor("clerk", "service_window"), reason="缺材料")
    assert step_actions(case, registration, clerk) == set()
    assert step_actions(case, registration, boss) == {"reassign"}
