"""What a tracking lookup costs: SQL per lookup, misses that cost the same, medians read and reused."""
from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import event, text

from tests.conftest import ON_POSTGRES
from workflow import tracking

MONDAY_9 = "2026-11-23 09:00 +0800"


@contextmanager
def statements(app):
    """Every SQL statement the app's engine sends inside the block."""
    seen: list[str] = []
    engine = app.extensions["onewindow.db"].kw["bind"]

    def remember(_conn, _cursor, statement, *_):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", remember)


def _track(client, case_no, code):
    return client.get("/api/v1/track", query_string={"case_no": case_no, "code": code})


def _wrong(code: str) -> str:
    return ("X" if code[0] != "X" else "Y") + code[1:]


def test_an_unknown_number_and_a_wrong_code_send_the_same_one_statement(app, client, factory):
    case = factory.case("in_progress")
    with statements(app) as wrong_code:
        assert _track(client, case.case_no, _wrong(case.tracking_code)).status_code == 404
    with statements(app) as unknown:
        assert _track(client, "KB20991231-0001", case.tracking_code).status_code == 404
    assert len(wrong_code) == 1 and wrong_code == unknown  # the same lookup: number and code only
    assert "steps" not in wrong_code[0] and "application" not in wrong_code[0]


def test_a_lookup_loads_the_case_and_its_steps_in_one_statement_and_reuses_the_medians(app, client, factory):
    case = factory.case("in_progress")
    factory.finish_steps(case, "registration")
    factory.session.commit()
    with statements(app) as first:
        assert _track(client, case.case_no, case.tracking_code).status_code == 200
    with statements(app) as again:
        body = _track(client, case.case_no, case.tracking_code).get_json()
    assert [s["step"] for s in body["steps"]] == [step.key for step in case.steps]  # in the definition's order
    assert body["estimate"] is not None
    assert not [s for s in again if "FROM steps" in s], "steps loaded apart from their case"
    medians = [s for s in first if "steps.elapsed_minutes" in s and "ORDER BY steps.done_at DESC" in s]
    assert len(medians) == 1  # every step's recent completions in one statement
    assert not [s for s in again if "ORDER BY steps.done_at DESC" in s]  # reused within the minute
    assert not [s for s in again if "FROM ratings" in s]  # only a delivered case can have a rating
    assert len(again) == 2, again  # the number, code and calendar stamp; the case with its steps


def test_a_delivered_case_still_shows_its_rating(app, client, factory):
    case = factory.case("delivered")
    assert client.post("/api/v1/track/rating", query_string={"case_no": case.case_no, "code": case.tracking_code},
                       json={"score": 5}).status_code == 201
    body = _track(client, case.case_no, case.tracking_code).get_json()
    assert body["rating"]["score"] == 5 and body["can_rate"] is False


def _history(factory, minutes: list[int]):
    """Cases whose registration took the given working minutes, completed in this order."""
    with time_machine.travel(MONDAY_9, tick=False) as traveller:
        for taken in minutes:
            case = factory.case("in_progress")
            traveller.shift(timedelta(minutes=taken))
            factory.finish_steps(case, "registration")
            factory.session.commit()
            traveller.shift(timedelta(minutes=1))


def test_the_medians_are_of_each_steps_latest_completions_only(session, factory):
    _history(factory, [40, 40, 40, 5, 10, 15])  # all in one morning session
    factory.case("in_progress")  # an open registration: no done time, no minutes
    assert tracking.recent_medians(session, ["registration"], sample=3) == {"registration": pytest.approx(10.0)}
    assert tracking.recent_medians(session, ["registration"], sample=50) == {"registration": pytest.approx(27.5)}
    # steps that were never done (seal waits, nothing skipped here) have no median
    assert tracking.recent_medians(session, ["registration", "seal", "tax"], sample=3).keys() == {"registration"}
    assert tracking.recent_medians(session, []) == {}


def test_cached_medians_are_reused_for_a_while_then_read_again(session, factory, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(tracking.time, "monotonic", lambda: clock[0])
    assert tracking.cached_medians(session, ["registration", "tax"]) == {}  # no history yet: targets
    _history(factory, [40])
    assert tracking.cached_medians(session, ["registration"]) == {}  # remembered, even "none"
    clock[0] += tracking.MEDIANS_TTL + 1
    assert tracking.cached_medians(session, ["registration", "tax"]) == {"registration": pytest.approx(40.0)}
    _history(factory, [60, 60])
    clock[0] += tracking.MEDIANS_TTL / 2
    assert tracking.cached_medians(session, ["registration"]) == {"registration": pytest.approx(40.0)}
    clock[0] += tracking.MEDIANS_TTL / 2 + 1
    assert tracking.cached_medians(session, ["registration"]) == {"registration": pytest.approx(60.0)}


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="the plan is PostgreSQL's")
def test_the_medians_read_each_steps_newest_completions_backwards_along_the_index(session, factory):
    captured = []

    def remember(_conn, _cursor, statement, parameters, *_):
        captured.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", remember)
    try:
        tracking.recent_medians(session, ["registration", "tax"])
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    statement, parameters = captured[-1]
    # The plan follows the statistics: fresh ones for this test's (empty) table, not whatever the
    # tests before it on this database left behind, which made the planner's choice vary.
    session.execute(text("ANALYZE steps"))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(row[0] for row in session.connection().exec_driver_sql(f"EXPLAIN {statement}", parameters))
    session.rollback()
    assert plan.count("Index Only Scan Backward using ix_steps_key_done_at") + \
        plan.count("Index Scan Backward using ix_steps_key_done_at") == 2, plan
    assert plan.count("Limit") >= 2 and "WindowAgg" not in plan, plan
