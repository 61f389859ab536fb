"""Service levels and timers: deadlines, the stopped clock, warnings and breaches fired once."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from workflow import operations as ops, timers
from workflow.models import Event, Notification, Timer
from workflow.operations.calendar import set_calendar_days

from ..factories import outputs_for

CST = ZoneInfo("Asia/Shanghai")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


@pytest.fixture
def clock():
    """Travel in time: ``clock(2026, 11, 23, 9)`` moves Python's clock there (it stays put)."""
    travellers = []

    def move(*args):
        if travellers:
            travellers.pop().stop()
        traveller = time_machine.travel(at(*args), tick=False)
        traveller.start()
        travellers.append(traveller)
        return at(*args)

    yield move
    if travellers:
        travellers.pop().stop()


def sweep(session, now):
    total = 0
    while fired := timers.fire_due(session, now):
        session.commit()
        total += fired
    session.commit()
    return total


def sla_events(session, case):
    return [(e.action, e.step) for e in session.scalars(
        select(Event).where(Event.case_id == case.id, Event.action.like("sla_%")).order_by(Event.seq))]


def test_acceptance_starts_the_case_clock_and_the_first_steps(session, factory, clock):
    clock(2026, 11, 23, 9, 0)  # a Monday
    case = factory.case("in_progress")
    timing = timers.timing(session, case)
    assert timing.case.deadline == at(2026, 11, 23, 14, 0)  # 180 min to noon, 30 after 13:30
    assert timing.case.target_minutes == 210 and timing.case.status == "on_track"
    assert timing.steps["registration"].deadline == at(2026, 11, 23, 10, 30)
    assert timing.steps["tax"] is None  # its clock starts when it becomes ready
    assert timing.calendar_confirmed is True


def test_a_steps_clock_starts_when_it_becomes_ready(session, factory, clock):
    clock(2026, 11, 23, 9, 0)
    case = factory.case("in_progress")
    clock(2026, 11, 23, 11, 30)
    factory.finish_steps(case, "registration")
    timing = timers.timing(session, case)
    assert timing.steps["tax"].deadline == at(2026, 11, 23, 14, 0)  # 30 before lunch, 30 after
    assert timing.steps["registration"].used_minutes == 150 and timing.steps["registration"].status == "breached"


def test_suspension_stops_the_clock_and_resuming_moves_the_deadline(session, factory, clock):
    clock(2026, 11, 23, 9, 0)
    case = factory.case("in_progress")
    clock(2026, 11, 23, 10, 0)
    ops.suspend_case(session, case, factory.window, reason="补正材料")
    session.commit()
    clock(2026, 11, 24, 10, 0)
    paused = timers.timing(session, case)
    assert paused.case.paused and paused.case.deadline is None and paused.case.used_minutes == 60
    assert session.scalar(select(func.count()).select_from(Timer).where(
        Timer.case_id == case.id, Timer.due_at.is_not(None))) == 0  # nothing fires while suspended
    ops.resume_case(session, case, factory.window)
    session.commit()
    resumed = timers.timing(session, case)
    assert resumed.case.deadline == at(2026, 11, 24, 14, 0)  # 150 minutes left from 10:00
    assert resumed.steps["registration"].deadline == at(2026, 11, 24, 10, 30)
    assert resumed.case.used_minutes == 60


def test_each_threshold_fires_once_and_notifies_the_owning_supervisors(session, factory, clock):
    clock(2026, 11, 23, 9, 0)
    case = factory.case("in_progress")
    assert sweep(session, at(2026, 11, 23, 10, 7)) == 0
    assert sweep(session, at(2026, 11, 23, 10, 8)) == 1  # 67.5 of 90 minutes at 10:07:30
    assert sweep(session, at(2026, 11, 23, 10, 8)) == 0
    assert sweep(session, at(2026, 11, 23, 10, 30)) == 0  # at the deadline exactly: not yet over
    assert sweep(session, at(2026, 11, 23, 10, 31)) == 1
    assert sla_events(session, case) == [("sla_warning", "registration"), ("sla_breach", "registration")]
    notes = session.scalars(select(Notification).order_by(Notification.id)).all()
    assert [(n.department, n.kind) for n in notes] == [("market_regulation", "sla_warning"),
                                                      ("market_regulation", "sla_breach")]
    assert case.step("registration").sla_status == "breached" and case.sla_status == "on_track"
    assert sweep(session, at(2026, 11, 23, 14, 1)) == 2  # the case: warning 11:37:30, breach after 14:00
    assert case.sla_status == "breached"
    assert [n.department for n in session.scalars(select(Notification).order_by(Notification.id))][2:] == [
        "service_window", "service_window"]
    assert sweep(session, at(2026, 12, 31, 9, 0)) == 0


def test_a_deadline_at_noon_is_breached_only_when_the_afternoon_opens(session, factory, clock):
    clock(2026, 11, 23, 10, 30)
    case = factory.case("in_progress")
    assert timers.timing(session, case).steps["registration"].deadline == at(2026, 11, 23, 12, 0)
    assert sweep(session, at(2026, 11, 23, 12, 45)) == 1  # only the warning
    clock(2026, 11, 23, 12, 45)
    assert timers.timing(session, case).steps["registration"].status == "warning"
    assert sweep(session, at(2026, 11, 23, 13, 30, 1)) == 1
    assert sla_events(session, case)[-1] == ("sla_breach", "registration")


def test_finishing_a_step_in_time_disarms_its_timers(session, factory, clock):
    clock(2026, 11, 23, 9, 0)
    case = factory.case("in_progress", wants={"seal": False, "invoice": False, "bank": False})
    clock(2026, 11, 23, 9, 30)
    factory.finish_steps(case, "registration")
    session.commit()
    clock(2026, 11, 23, 9, 45)
    factory.finish_steps(case, "tax")
    session.commit()
    assert case.state.value == "ready"
    assert sweep(session, at(2026, 12, 31, 9, 0)) == 0
    assert timers.timing(session, case).case.used_minutes == 45


def test_a_fired_threshold_is_never_armed_again(session, factory, clock):
    clock(2026, 11, 23, 9, 0)
    case = factory.case("in_progress")
    assert sweep(session, at(2026, 11, 23, 10, 8)) == 1
    clock(2026, 11, 23, 10, 10)
    ops.suspend_case(session, case, factory.window, reason="补正")
    clock(2026, 11, 23, 10, 20)
    ops.resume_case(session, case, factory.window)
    session.commit()
    assert sweep(session, at(2026, 11, 23, 10, 45)) == 1  # the breach, not the warning again
    assert sla_events(session, case) == [("sla_warning", "registration"), ("sla_breach", "registration")]


def test_a_calendar_change_recomputes_running_deadlines(session, factory, clock):
    clock(2026, 11, 27, 16, 0)  # Friday afternoon
    case = factory.case("in_progress")
    assert timers.timing(session, case).case.deadline == at(2026, 11, 30, 11, 0)
    admin = factory.actor("admin", None)
    written, rearmed = set_calendar_days(session, admin, [{"day": at(2026, 11, 30).date(), "kind": "holiday",
                                                           "name": "台风停工"}])
    session.commit()
    assert (written, rearmed) == (1, 1)
    assert timers.timing(session, case).case.deadline == at(2026, 12, 1, 11, 0)
    due = session.scalar(select(Timer.due_at).where(Timer.case_id == case.id, Timer.subject == "case",
                                                     Timer.kind == "breach"))
    assert due == at(2026, 12, 1, 11, 0)


def test_beyond_confirmed_data_weekdays_count_and_responses_say_so(session, factory, clock):
    clock(2027, 1, 4, 9, 0)
    case = factory.case("in_progress")
    timing = timers.timing(session, case)
    assert timing.calendar_confirmed is False and timing.case.deadline == at(2027, 1, 4, 14, 0)
    admin = factory.actor("admin", None)
    set_calendar_days(session, admin, [{"day": at(2027, 1, 4).date(), "kind": "workday", "name": ""}])
    session.commit()
    assert timers.timing(session, case).calendar_confirmed is True


def test_the_api_shows_sla_and_filters_by_recorded_status(app, client, session, factory, clock):
    clock(2026, 11, 23, 9, 0)
    late, fine = factory.case("in_progress"), factory.case("in_progress")
    clock(2026, 11, 23, 9, 5)
    factory.finish_steps(fine, "registration")
    session.commit()
    clock(2026, 11, 23, 11, 0)
    sweep(session, at(2026, 11, 23, 11, 0))
    headers = {"Authorization": f"Bearer {factory.token('supervisor', 'market_regulation')}"}
    body = client.get(f"/api/v1/cases/{late.case_no}", headers=headers).json
    assert body["calendar_confirmed"] is True
    assert body["sla"] == {"target_minutes": 210, "used_minutes": 120.0, "deadline": "2026-11-23T14:00:00+08:00",
                           "status": "on_track", "paused": False}
    registration = body["steps"][0]["sla"]
    assert registration["status"] == "breached" and registration["deadline"] == "2026-11-23T10:30:00+08:00"
    assert body["steps"][1]["sla"] is None  # seal has not started
    notes = client.get("/api/v1/notifications", headers=headers).json
    assert {n["case_no"] for n in notes} == {late.case_no}
    window = {"Authorization": f"Bearer {factory.token('clerk', 'service_window')}"}
    assert client.get("/api/v1/cases?sla_status=breached", headers=window).json == []
    sweep(session, at(2026, 11, 23, 14, 1))
    listed = client.get("/api/v1/cases?sla_status=breached", headers=window).json
    assert {c["case_no"] for c in listed} == {late.case_no, fine.case_no}


def test_timers_sweep_command_prints_how_many_fired(app, factory, clock):
    clock(2026, 11, 23, 9, 0)
    factory.case("in_progress")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["timers", "sweep", "--now", "2026-11-23T10:31:00+08:00"])
    assert result.exit_code == 0 and result.output.strip() == "2"
    result = runner.invoke(args=["timers", "sweep", "--now", "2026-11-23T10:31:00+08:00"])
    assert result.output.strip() == "0"
    result = runner.invoke(args=["timers", "sweep", "--now", "2026-11-23T10:31:00"])
    assert result.exit_code != 0 and "no UTC offset" in result.output


def test_calendar_commands(app, tmp_path):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["calendar", "add", "2026-11-23T11:30:00+08:00", "60"]).output
    assert out.strip() == "2026-11-23T14:00:00+08:00"
    out = runner.invoke(args=["calendar", "between", "2025-09-30T16:30:00+08:00", "2025-10-09T09:30:00+08:00"])
    assert out.output.strip() == "90"  # 60 on the 30th, National Day and its holidays, 30 on the 9th
    csv_file = tmp_path / "days.csv"
    csv_file.write_text("date,kind,name\n2027-01-01,holiday,元旦\n2027-02-06,workday,春节调休\n", "utf-8")
    result = runner.invoke(args=["calendar", "import", str(csv_file)])
    assert result.exit_code == 0 and "imported 2 days" in result.output
    out = runner.invoke(args=["calendar", "add", "2026-12-31T17:00:00+08:00", "60"]).output
    assert out.strip().startswith("2027-01-04T09:30:00+08:00")
    bad = tmp_path / "bad.csv"
    bad.write_text("2027-13-01,holiday,x\n2027-01-02,vacation,y\n", "utf-8")
    result = runner.invoke(args=["calendar", "import", str(bad)])
    assert result.exit_code != 0 and "line 1" in result.output and "line 2" in result.output


def test_calendar_between_prints_exact_minutes(app):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["calendar", "between", "2026-11-23T09:00:00+08:00", "2026-11-23T09:00:30+08:00"])
    assert out.output.strip() == "0.5"
    out = runner.invoke(args=["calendar", "between", "2010-01-01T00:00:00+08:00", "2026-01-01T00:00:00+08:00"])
    assert "e" not in out.output and int(out.output.strip()) % 420 == 0
    assert runner.invoke(args=["calendar", "add", "2026-11-23T09:00:00+08:00", "1e9"]).exit_code == 2


def test_a_new_process_version_is_published_from_the_command_line(app, tmp_path):
    import json

    from workflow.definitions import packaged

    document = packaged()
    document["version"] = 2
    document["steps"][0]["target_minutes"] = 80
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(document), "utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["definitions", "publish", str(path)])
    assert result.exit_code == 0 and "published company_opening v2" in result.output
    assert runner.invoke(args=["definitions", "publish", str(path)]).exit_code == 1  # not newer
    listed = runner.invoke(args=["definitions", "list"]).output
    assert "company_opening v2" in listed and "by cli" in listed
