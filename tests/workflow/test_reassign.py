"""A supervisor hands a claimed step to another clerk of the department."""
import pytest

from tests.factories import PASSWORD, outputs_for
from workflow import accounts, audit, operations as ops, queries
from workflow.errors import Forbidden, IllegalAction, Invalid, PreconditionFailed
from workflow.machines.step import StepState


@pytest.fixture
def claimed(session, factory):
    """An in-progress case whose registration the market-regulation clerk holds; a second clerk."""
    case = factory.case("in_progress")
    ops.claim_step(session, case, "registration", factory.clerk("market_regulation"))
    session.commit()
    second = accounts.create_user(session, "market-second", PASSWORD, "clerk", "market_regulation")
    session.commit()
    return case, second


def test_the_supervisor_hands_the_step_over_and_the_new_holder_can_finish_it(session, factory, claimed):
    case, second = claimed
    first = factory.clerk("market_regulation")
    boss = factory.actor("supervisor", "market_regulation")
    version = case.version
    ops.reassign_step(session, case, "registration", boss, assignee="market-second", expected_version=version)
    session.commit()
    step = case.step("registration")
    assert (step.state, step.assignee.username, case.version) == (StepState.in_progress, "market-second", version + 1)
    event = queries.case_events(session, case)[-1]
    assert (event.action, event.actor, event.step, event.payload) == (
        "reassign", boss.username, "registration", {"from": first.username, "to": "market-second"})
    with pytest.raises(Forbidden):  # the former holder lets go of it
        ops.release_step(session, case, "registration", first)
    session.rollback()
    ops.complete_step(session, case, "registration", second.as_actor(), outputs_for("registration"))
    session.commit()
    assert audit.verify(session) == []


@pytest.mark.parametrize("who", [("clerk", "market_regulation"), ("supervisor", "taxation"), ("admin", None),
                                 ("supervisor", "service_window")])
def test_only_a_supervisor_of_the_department_reassigns(session, factory, claimed, who):
    case, _ = claimed
    with pytest.raises(Forbidden):
        ops.reassign_step(session, case, "registration", factory.actor(*who), assignee="market-second")


@pytest.mark.parametrize("assignee", ["nobody", "", "bank-clerk", "disabled-market"])
def test_the_new_holder_must_be_an_active_clerk_of_the_department(session, factory, claimed, assignee):
    case, _ = claimed
    accounts.create_user(session, "bank-clerk", PASSWORD, "clerk", "bank")
    disabled = accounts.create_user(session, "disabled-market", PASSWORD, "clerk", "market_regulation")
    disabled.active = False
    session.flush()
    before = case.version
    with pytest.raises(Invalid) as raised:
        ops.reassign_step(session, case, "registration", factory.actor("supervisor", "market_regulation"),
                          assignee=assignee)
    assert "assignee" in raised.value.errors
    session.rollback()
    assert case.version == before


def test_reassigning_to_the_holder_is_refused(session, factory, claimed):
    case, _ = claimed
    with pytest.raises(Invalid) as raised:
        ops.reassign_step(session, case, "registration", factory.actor("supervisor", "market_regulation"),
                          assignee=factory.clerk("market_regulation").username)
    assert raised.value.errors == {"assignee": ["already holds the step"]}


def test_a_step_nobody_holds_or_a_finished_case_cannot_be_reassigned(session, factory, claimed):
    boss = factory.actor("supervisor", "market_regulation")
    case = factory.case("in_progress")
    with pytest.raises(IllegalAction):
        ops.reassign_step(session, case, "registration", boss, assignee="market-second")
    session.rollback()
    claimed_case, _ = claimed
    with pytest.raises(PreconditionFailed):
        ops.reassign_step(session, claimed_case, "registration", boss, assignee="market-second",
                          expected_version=claimed_case.version - 1)


def test_reassignment_works_while_the_case_waits_on_the_applicant(session, factory, claimed):
    case, _ = claimed
    ops.suspend_case(session, case, factory.window, reason="缺少股东会决议")
    ops.reassign_step(session, case, "registration", factory.actor("supervisor", "market_regulation"),
                      assignee="market-second")
    session.commit()
    assert case.step("registration").assignee.username == "market-second"
