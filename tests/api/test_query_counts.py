"""No N+1: the pages and lists clerks open all day cost the same number of SQL statements whatever
they show — one case or twenty, a fresh case or a finished one with every step, output and event.

Each request is made once to warm the per-process caches (calendar, definitions), then counted.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, update

from workflow.models import Step

from .conftest import Caller


@contextmanager
def statements(app):
    """The SQL statements the app's engine sends while the block runs."""
    engine = app.extensions["onewindow.db"].kw["bind"]
    sent: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


def cost(app, client, path: str, **kwargs) -> list[str]:
    client.get(path, **kwargs)  # warm the process's caches
    with statements(app) as sent:
        response = client.get(path, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return sent


def signed_in(app, user) -> object:
    client = app.test_client()
    with client.session_transaction() as cookie:  # Flask-Login's session keys
        cookie["_user_id"] = str(user.user_id)
        cookie["_fresh"] = True
    return client


def _show(sent: list[str]) -> str:
    return "\n".join(s.split("\n")[0][:160] for s in sent)


@pytest.mark.parametrize("role", ["clerk", "supervisor"])
def test_the_case_page_costs_the_same_for_a_new_case_and_a_finished_one(app, factory, role):
    fresh = factory.case("in_progress")
    finished = factory.case("delivered")
    assert len(finished.steps) == 5
    user = factory.actor(role, "market_regulation")
    client = signed_in(app, user)
    small = cost(app, client, f"/cases/{fresh.case_no}")
    large = cost(app, client, f"/cases/{finished.case_no}")
    assert len(large) == len(small), f"fresh:\n{_show(small)}\n\nfinished:\n{_show(large)}"
    # A fixed handful: user, case with steps and suspensions, definition, events, chain, calendar facts.
    assert len(large) <= 14, _show(large)


def test_the_rest_case_list_costs_the_same_for_two_cases_and_twenty(app, client, factory):
    for _ in range(20):
        factory.case("in_progress")
    caller = Caller(client, factory.token("clerk", "service_window"))
    small = cost(app, client, "/api/v1/cases?per_page=2", headers=caller.headers())
    large = cost(app, client, "/api/v1/cases?per_page=20", headers=caller.headers())
    assert len(large) == len(small), f"2:\n{_show(small)}\n\n20:\n{_show(large)}"
    assert len(large) <= 8, _show(large)


def test_an_agency_queue_costs_the_same_with_one_open_step_and_twenty(app, factory, session):
    clerk = factory.clerk("taxation")
    client = signed_in(app, clerk)
    first = factory.case("in_progress")
    factory.finish_steps(first, "registration")
    session.commit()
    small = cost(app, client, "/queue")
    for _ in range(19):
        case = factory.case("in_progress")
        factory.finish_steps(case, "registration")
    session.commit()
    large = cost(app, client, "/queue")
    assert len(large) == len(small), f"1:\n{_show(small)}\n\n20:\n{_show(large)}"


def test_the_window_queue_costs_the_same_with_one_case_and_twenty(app, factory):
    client = signed_in(app, factory.window)
    factory.case("submitted")
    small = cost(app, client, "/queue")
    for _ in range(19):
        factory.case("submitted")
    large = cost(app, client, "/queue")
    assert len(large) == len(small), f"1:\n{_show(small)}\n\n20:\n{_show(large)}"


def test_the_overdue_board_costs_the_same_with_one_breach_and_twenty(app, factory, session):
    client = signed_in(app, factory.actor("supervisor", "market_regulation"))

    def breach_registrations():
        session.execute(update(Step).where(Step.key == "registration").values(sla_status="breached"))
        session.commit()

    factory.case("in_progress")
    breach_registrations()
    small = cost(app, client, "/board")
    for _ in range(19):
        factory.case("in_progress")
    breach_registrations()
    large = cost(app, client, "/board")
    assert len(large) == len(small), f"1:\n{_show(small)}\n\n20:\n{_show(large)}"
