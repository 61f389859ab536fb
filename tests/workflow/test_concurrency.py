"""Two clerks acting on the same step at the same moment, on real PostgreSQL connections."""
import threading

import pytest
from sqlalchemy import func, select

from workflow import audit, operations as ops
from workflow.db import make_sessionmaker
from workflow.errors import Conflict, IllegalAction, PreconditionFailed
from workflow.models import Event

from ..factories import outputs_for

pytestmark = pytest.mark.postgres


def race(engine, case_no, actors, *, lock, expected_version=None):
    """Run complete_step for each actor in its own connection, released together by a barrier."""
    barrier = threading.Barrier(len(actors))
    results = [None] * len(actors)
    maker = make_sessionmaker(engine)

    def clerk(i, actor):
        with maker() as session:
            try:
                if not lock:
                    case = ops.get_case(session, case_no)
                    barrier.wait()  # both have read the same version before either writes
                else:
                    barrier.wait()
                    case = ops.get_case(session, case_no, lock=True)
                ops.complete_step(session, case, "registration", actor, outputs_for("registration"),
                                  expected_version=expected_version)
                session.commit()
                results[i] = "ok"
            except (IllegalAction, Conflict, PreconditionFailed) as error:
                session.rollback()
                results[i] = type(error).__name__

    threads = [threading.Thread(target=clerk, args=(i, a)) for i, a in enumerate(actors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.fixture
def claimed(factory, session):
    case = factory.case("in_progress")
    clerk = factory.clerk("market_regulation")
    ops.claim_step(session, case, "registration", clerk)
    session.commit()
    return case, clerk, factory.actor("supervisor", "market_regulation")


def completions(session, case):
    return session.scalar(select(func.count()).select_from(Event).where(
        Event.case_id == case.id, Event.step == "registration", Event.action == "complete"))


@pytest.mark.parametrize("lock, expected_version, loser", [
    (True, None, "IllegalAction"),       # the row lock makes the second see the step done: 409
    (False, None, "Conflict"),           # no lock: the version check catches the lost update: 409
    (True, "read", "PreconditionFailed"),  # both sent If-Match with the version they saw: 412
])
def test_exactly_one_of_two_simultaneous_completions_succeeds(engine, session, claimed, lock, expected_version,
                                                              loser):
    case, clerk, supervisor = claimed
    version = case.version if expected_version == "read" else None
    results = race(engine, case.case_no, [clerk, supervisor], lock=lock, expected_version=version)
    assert sorted(results) == sorted(["ok", loser])
    session.expire_all()
    assert completions(session, case) == 1
    reloaded = ops.get_case(session, case.case_no)
    assert reloaded.step("registration").state.value == "done"
    if version is not None:
        assert reloaded.version == version + 1
    assert audit.verify(session) == []


def test_many_racing_clerks_complete_a_step_once(engine, session, claimed):
    case, clerk, supervisor = claimed
    results = race(engine, case.case_no, [clerk, supervisor] * 4, lock=True)
    assert results.count("ok") == 1
    session.expire_all()
    assert completions(session, case) == 1
    assert audit.verify(session) == []
