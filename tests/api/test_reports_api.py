"""GET /api/v1/reports/…: who may read them, what a supervisor sees, validation, and the breach reasons."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from workflow import operations as ops, timers, tracking
from workflow.models import Notification

from ..factories import outputs_for

CST = ZoneInfo("Asia/Shanghai")
DAY = "2026-11-23"  # a Monday
FIGURES = {"group", "count", "median_minutes", "p90_minutes", "max_minutes", "within_target_pct"}


def at(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


@pytest.fixture
def finished(session, factory):
    """Two cases done on Monday 2026-11-23 through the real operations, every step by its department."""
    def work(case, key, minute):
        with time_machine.travel(at(2026, 11, 23, 9, minute), tick=False):
            clerk = factory.clerk(case.step(key).department)
            ops.claim_step(session, case, key, clerk)
            ops.complete_step(session, case, key, clerk, outputs_for(key))
            session.commit()

    with time_machine.travel(at(2026, 11, 23, 9, 0), tick=False):
        full = factory.case("in_progress")
        short = factory.case("in_progress", wants={"seal": False, "invoice": False, "bank": False})
    work(full, "registration", 30)
    work(short, "registration", 45)
    for key, minute in (("seal", 40), ("tax", 50), ("bank", 55), ("invoice", 59)):
        work(full, key, minute)
    work(short, "tax", 59)
    return full, short


def period(day=DAY, **more):
    return {"from": day, "to": day, **more}


@pytest.mark.parametrize("path", ["/reports/elapsed", "/reports/breaches", "/reports/ratings"])
def test_clerks_are_refused_and_strangers_asked_to_sign_in(as_user, client, path):
    for department in ("service_window", "taxation"):
        refused = as_user("clerk", department).get(path)
        assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert client.get(f"/api/v1{path}").status_code == 401
    assert as_user("supervisor", "taxation").get(path).status_code == 200
    assert as_user("admin", None).get(path).status_code == 200


def test_an_admin_sees_every_step_with_the_contracts_figures(as_user, finished):
    body = as_user("admin", None).get("/reports/elapsed", query_string=period(group_by="step")).json
    assert all(set(row) == FIGURES for row in body)
    by_step = {row["group"]: row for row in body}
    assert list(by_step) == ["bank", "invoice", "registration", "seal", "tax"]
    assert by_step["registration"] == {"group": "registration", "count": 2, "median_minutes": 37.5,
                                       "p90_minutes": 43.5, "max_minutes": 45.0, "within_target_pct": 100.0}
    assert by_step["tax"]["count"] == 2 and by_step["tax"]["median_minutes"] == 17.0  # 20 and 14 minutes
    departments = as_user("admin", None).get("/reports/elapsed", query_string=period(group_by="department")).json
    assert [row["group"] for row in departments] == ["bank", "market_regulation", "public_security", "taxation"]
    days = as_user("admin", None).get("/reports/elapsed", query_string=period(group_by="day")).json
    assert days == [{"group": DAY, "count": 2, "median_minutes": 59.0, "p90_minutes": 59.0, "max_minutes": 59.0,
                     "within_target_pct": 100.0}]


def test_a_supervisor_sees_their_own_department_but_every_day(as_user, factory, finished):
    supervisor = as_user("supervisor", "taxation")
    steps = supervisor.get("/reports/elapsed", query_string=period(group_by="step")).json
    assert [row["group"] for row in steps] == ["invoice", "tax"]
    departments = supervisor.get("/reports/elapsed", query_string=period(group_by="department")).json
    assert [(row["group"], row["count"]) for row in departments] == [("taxation", 3)]
    clerks = supervisor.get("/reports/elapsed", query_string=period(group_by="clerk")).json
    assert [(row["group"], row["count"]) for row in clerks] == [(factory.clerk("taxation").username, 3)]
    days = supervisor.get("/reports/elapsed", query_string=period(group_by="day")).json
    assert [(row["group"], row["count"]) for row in days] == [(DAY, 2)]  # the hall's promise is everyone's


def test_the_period_defaults_to_the_last_30_hall_days(as_user, finished):
    admin = as_user("admin", None)
    # 2026-12-22 is the 30th day from 2026-11-23; the next day the 23rd has left the period.
    with time_machine.travel(at(2026, 12, 22, 23, 59), tick=False):
        assert [row["count"] for row in admin.get("/reports/elapsed?group_by=day").json] == [2]
    with time_machine.travel(at(2026, 12, 23, 0, 1), tick=False):
        assert admin.get("/reports/elapsed?group_by=day").json == []
    with time_machine.travel(at(2026, 11, 23, 18, 0), tick=False):
        assert [row["group"] for row in admin.get("/reports/elapsed").json][0] == "bank"  # by step, by default


@pytest.mark.parametrize("query,field", [
    ({"from": "2026-11-24", "to": "2026-11-23"}, "query.from"),
    ({"from": "2025-11-22", "to": "2026-11-23"}, "query.to"),  # 367 days
    ({"from": "2026-11-31"}, "query.from"),
    ({"to": "yesterday"}, "query.to"),
    ({"group_by": "weekday"}, "query.group_by"),
])
def test_bad_periods_and_groupings_are_422_naming_the_field(as_user, query, field):
    response = as_user("admin", None).get("/reports/elapsed", query_string=query)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert field in response.json["errors"], response.json


def test_a_whole_leap_year_is_allowed(as_user):
    response = as_user("admin", None).get("/reports/elapsed", query_string={"from": "2028-01-01",
                                                                             "to": "2028-12-31"})
    assert response.status_code == 200 and response.json == []


def test_the_reason_given_when_reading_a_breach_shows_in_the_breach_report(as_user, client, session, factory):
    with time_machine.travel(at(2026, 11, 23, 9, 0), tick=False):
        case = factory.case("in_progress")
        holder = factory.clerk("market_regulation")
        ops.claim_step(session, case, "registration", holder)
        session.commit()
    while timers.fire_due(session, at(2026, 11, 23, 10, 31)):  # registration's 90 minutes have passed
        session.commit()
    session.commit()
    notice = session.scalar(select(Notification).where(Notification.kind == "sla_breach"))
    market, taxation = as_user("supervisor", "market_regulation"), as_user("supervisor", "taxation")

    assert taxation.post(f"/notifications/{notice.id}/read", json={"reason": "x"}).status_code == 403
    too_long = market.post(f"/notifications/{notice.id}/read", json={"reason": "长" * 501})
    assert too_long.status_code == 422 and "reason" in too_long.json["errors"]
    blank = market.post(f"/notifications/{notice.id}/read", json={"reason": "   "})
    assert blank.status_code == 422 and "reason" in blank.json["errors"]
    read = market.post(f"/notifications/{notice.id}/read", json={"reason": "营业执照打印机故障"})
    assert read.status_code == 200 and read.json["reason"] == "营业执照打印机故障" and read.json["read_at"]

    report = market.get("/reports/breaches", query_string=period()).json
    assert report == [{"at": "2026-11-23T10:31:00+08:00", "case_no": case.case_no, "subject": "registration",
                       "department": "market_regulation", "clerk": holder.username, "target_minutes": 90,
                       "used_minutes": 91.0, "reason": "营业执照打印机故障",
                       "acknowledged_by": factory.actor("supervisor", "market_regulation").username}]
    assert taxation.get("/reports/breaches", query_string=period()).json == []
    assert as_user("admin", None).get("/reports/breaches", query_string=period()).json == report
    assert market.get("/reports/breaches", query_string=period("2026-11-24")).json == []
    # Reading without a body still works, and keeps the reason.
    again = market.post(f"/notifications/{notice.id}/read")
    assert again.status_code == 200 and again.json["reason"] == "营业执照打印机故障"
    listed = {n["id"]: n for n in market.get("/notifications").json}
    assert listed[notice.id]["reason"] == "营业执照打印机故障"


def test_ratings_report(as_user, session, factory):
    with time_machine.travel(at(2026, 11, 23, 9, 0), tick=False):
        for score in (5, 4, 1):
            tracking.rate(session, factory.case("delivered"), score)
        session.commit()
    with time_machine.travel(at(2026, 11, 23, 18, 0), tick=False):
        body = as_user("supervisor", "bank").get("/reports/ratings", query_string=period()).json
    assert body == {"count": 3, "average": 3.33, "by_score": {"1": 1, "2": 0, "3": 0, "4": 1, "5": 1}, "low": 1,
                    "follow_ups_open": 1, "follow_ups_overdue": 0}


def test_the_reports_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"/api/v1/reports/elapsed", "/api/v1/reports/breaches", "/api/v1/reports/ratings"} <= set(paths)
    parameters = {p["name"] for p in paths["/api/v1/reports/elapsed"]["get"]["parameters"]}
    assert {"from", "to", "group_by"} <= parameters
