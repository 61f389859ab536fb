"""The audit trail: one event per action, hash-chained, append-only, verifiable."""
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from workflow import audit
from workflow.models import Event

from ..factories import bypass_append_only


def test_every_action_appends_an_event_with_actor_and_states(session, factory):
    case = factory.case("delivered", wants={"seal": False, "invoice": False, "bank": False})
    events = session.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.seq)).all()
    assert [(e.action, e.step, e.from_state, e.to_state) for e in events] == [
        ("submit", None, None, "submitted"),
        ("accept", None, "submitted", "in_progress"),
        ("unblock", "registration", "waiting", "ready"),
        ("claim", "registration", "ready", "in_progress"),
        ("complete", "registration", "in_progress", "done"),
        ("unblock", "tax", "waiting", "ready"),
        ("claim", "tax", "ready", "in_progress"),
        ("complete", "tax", "in_progress", "done"),
        ("finish", None, "in_progress", "ready"),
        ("deliver", None, "ready", "delivered"),
    ]
    claim = events[3]
    assert (claim.role, claim.department) == ("clerk", "market_regulation")
    assert [e.seq for e in events] == list(range(1, 11))
    assert all(e.prev_hash == p.hash for p, e in zip(events, events[1:]))
    assert audit.verify(session) == []


def test_the_orm_refuses_to_change_an_event(session, factory):
    case = factory.case("in_progress")
    event = session.scalars(select(Event).where(Event.case_id == case.id)).first()
    event.actor = "somebody else"
    with pytest.raises(RuntimeError, match="append-only"):
        session.flush()


def test_the_database_refuses_to_change_or_delete_an_event(session, factory):
    factory.case("in_progress")
    for statement in ("UPDATE events SET actor = 'x'", "DELETE FROM events"):
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        session.rollback()


@pytest.mark.parametrize("tamper, reason", [
    ("UPDATE events SET payload = '{\"reason\": \"forged\"}' WHERE id = :id", "content does not match"),
    ("UPDATE events SET actor = 'someone' WHERE id = :id", "content does not match"),
    ("DELETE FROM events WHERE id = :id", "expected event"),
])
def test_verify_names_the_first_tampered_event(session, factory, tamper, reason):
    factory.case("in_progress")
    victim = factory.case("suspended")
    factory.case("ready")
    events = session.scalars(select(Event).where(Event.case_id == victim.id).order_by(Event.seq)).all()
    target = events[-1] if "DELETE" not in tamper else events[2]
    bypass_append_only(session)
    session.execute(text(tamper), {"id": target.id})
    session.commit()
    broken = audit.verify(session)
    assert len(broken) == 1
    assert broken[0].case_no == victim.case_no
    assert reason in broken[0].reason
    if "DELETE" in tamper:
        assert broken[0].event_id == events[3].id
    else:
        assert broken[0].event_id == target.id


def test_verify_notices_that_the_last_events_were_removed(session, factory):
    case = factory.case("delivered")
    last = session.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.seq.desc())).first()
    bypass_append_only(session)
    session.execute(text("DELETE FROM events WHERE id = :id"), {"id": last.id})
    session.commit()
    [broken] = audit.verify(session)
    assert broken.case_no == case.case_no and f"ends at event {last.seq - 1}" in broken.reason
