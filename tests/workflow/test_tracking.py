"""The applicant's view: found by number and code, no personal data, an estimate; ratings and follow-ups."""
import json
from datetime import datetime, timedelta

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.factories import application
from workflow import audit, operations as ops, queries, tracking
from workflow.calendar import HALL_TZ
from workflow.calendar_days import calendar_for
from workflow.definitions import store
from workflow.errors import Conflict, Forbidden, IllegalAction, Invalid
from workflow.models import FollowUp
from workflow.operations.cases import TRACKING_ALPHABET
from workflow.timers import timing

MONDAY_9 = "2026-11-23 09:00 +0800"


def hall(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(HALL_TZ)


def test_the_case_is_found_by_its_number_and_code_only(session, factory):
    case = factory.case("in_progress")
    assert tracking.find(session, case.case_no, case.tracking_code) is case
    assert tracking.find(session, f" {case.case_no.lower()} ", case.tracking_code.lower()) is case
    wrong = ("X" if case.tracking_code[0] != "X" else "Y") + case.tracking_code[1:]
    for number, code in ((case.case_no, wrong), (case.case_no, ""), ("KB20991231-0001", case.tracking_code),
                         ("", case.tracking_code), (case.case_no, case.tracking_code + "2"),
                         (case.case_no, "A" * 10_000)):
        assert tracking.find(session, number, code) is None


def test_tracking_codes_are_random_not_derived_from_the_case_number(session, factory):
    cases = [factory.case() for _ in range(20)]
    codes = [case.tracking_code for case in cases]
    assert len(set(codes)) == 20  # consecutive numbers, unrelated codes
    assert all(len(code) == 10 and set(code) <= set(TRACKING_ALPHABET) for code in codes)
    assert len(TRACKING_ALPHABET) ** 10 >= 2 ** 50  # at least 40 random bits, as the issue asks


def test_the_public_view_carries_no_personal_data(session, factory):
    case = factory.case("in_progress")
    factory.finish_steps(case, "registration")
    ops.claim_step(session, case, "tax", factory.clerk("taxation"))
    view = json.dumps(tracking.public_view(session, case), default=str, ensure_ascii=False)
    body = application()
    people = [body["legal_representative"]["name"], body["legal_representative"]["id_number"],
              body["legal_representative"]["phone"]] + [p["name"] for p in body["shareholders"]] + \
             [p["id_number"] for p in body["shareholders"]]
    for secret in people + [factory.clerk("taxation").username, factory.clerk("market_regulation").username,
                            case.tracking_code]:
        assert secret not in view
    assert case.case_no in view and "设立登记" in view and "市场监管" in view


def test_without_history_the_estimate_is_the_critical_path_of_targets(session, factory):
    with time_machine.travel(MONDAY_9, tick=False):
        case = factory.case("in_progress")
        view = tracking.public_view(session, case)
    # registration 90 → tax 60 → invoice 60 = 210 working minutes: 09:00 → 12:00, 13:30 → 14:00.
    assert view["estimate"] == hall("2026-11-23 14:00 +0800") == view["deadline"]


def test_recent_medians_shorten_the_estimate_and_steps_run_in_parallel(session, factory):
    with time_machine.travel(MONDAY_9, tick=False) as traveller:
        for _ in range(3):  # history: registration takes 20 minutes, every other step 10
            done = factory.case("in_progress")
            traveller.shift(timedelta(minutes=20))
            factory.finish_steps(done, "registration")
            traveller.shift(timedelta(minutes=10))
            factory.finish_steps(done, "seal", "tax", "bank")
            traveller.shift(timedelta(minutes=10))
            factory.finish_steps(done, "invoice")
            session.commit()
        assert done.elapsed_minutes == pytest.approx(40.0, abs=0.01)  # 20 + 10 (tax) + 10 (invoice)
        assert done.step("registration").elapsed_minutes == pytest.approx(20.0, abs=0.01)
        traveller.move_to("2026-11-23 10:00 +0800")
        case = factory.case("in_progress")
        view = tracking.public_view(session, case)
    # registration 20, then tax 10 → invoice 10 in parallel with seal 10 and bank 10: 40 minutes.
    assert view["estimate"] == hall("2026-11-23 10:40 +0800")
    assert view["deadline"] == hall("2026-11-23 15:00 +0800")  # the promise does not move


def test_a_step_past_its_typical_time_is_still_expected_to_take_a_little(session, factory):
    with time_machine.travel(MONDAY_9, tick=False) as traveller:
        case = factory.case("in_progress")
        ops.claim_step(session, case, "registration", factory.clerk("market_regulation"))
        traveller.move_to("2026-11-23 11:58 +0800")  # 118 of 90 minutes used, no history
        estimate = tracking.public_view(session, case)["estimate"]
    # 5 (the least left) + 60 + 60 = 125 working minutes from 11:58: 2 before lunch, 123 after.
    assert estimate == hall("2026-11-23 15:33 +0800")


def test_no_estimate_while_the_clock_is_stopped_and_the_ready_time_once_ready(session, factory):
    case = factory.case("in_progress")
    ops.suspend_case(session, case, factory.window, reason="缺少股东会决议")
    view = tracking.public_view(session, case)
    assert view["estimate"] is None and view["paused"] and view["deadline"] is None
    ops.resume_case(session, case, factory.window)
    factory.finish_steps(case)
    assert tracking.public_view(session, case)["estimate"] == case.ready_at
    assert tracking.public_view(session, factory.case("submitted"))["estimate"] is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(medians=st.dictionaries(st.sampled_from(["registration", "seal", "tax", "invoice", "bank"]),
                               st.floats(min_value=0, max_value=2000), max_size=5),
       used=st.floats(min_value=0, max_value=600),
       extra=st.floats(min_value=0.5, max_value=300))
def test_the_estimate_is_a_working_instant_after_now_and_grows_with_the_medians(session, factory, medians, used,
                                                                                 extra):
    with time_machine.travel(MONDAY_9, tick=False):
        case = factory.case("in_progress")
    definition = store.get(session, case.definition_name, case.definition_version)
    calendar = calendar_for(session)
    now = calendar.add(case.accepted_at, timedelta(minutes=used)).value
    measured = timing(session, case, now)
    first = tracking.estimate(case, definition, measured, medians, calendar, now)
    assert first > now and calendar.is_working_time(first - timedelta(microseconds=1))
    slower = {key: medians.get(key, definition.step(key).target_minutes) + extra for key in medians} | \
             {key: definition.step(key).target_minutes + extra for key in ("registration",) if key not in medians}
    assert tracking.estimate(case, definition, measured, slower, calendar, now) >= first
    session.rollback()


def test_a_delivered_case_is_rated_once(session, factory):
    case = factory.case("in_progress")
    with pytest.raises(IllegalAction):
        tracking.rate(session, case, 5)
    case = factory.case("delivered")
    rating = tracking.rate(session, case, 5, "  很快，一上午就办完了  ")
    session.commit()
    assert (rating.score, rating.comment) == (5, "很快，一上午就办完了")
    assert session.query(FollowUp).count() == 0
    with pytest.raises(Conflict):
        tracking.rate(session, case, 1)
    session.rollback()
    view = tracking.public_view(session, case)
    assert view["rating"]["score"] == 5 and view["can_rate"] is False
    assert audit.verify(session) == []


@pytest.mark.parametrize("score,comment,field", [(0, None, "score"), (6, None, "score"), ("5", None, "score"),
                                                 (True, None, "score"), (3.5, None, "score"),
                                                 (3, "x" * 501, "comment"), (3, "a\x00b", "comment"),
                                                 (3, 42, "comment")])
def test_a_bad_rating_names_the_field_and_stores_nothing(session, factory, score, comment, field):
    case = factory.case("delivered")
    with pytest.raises(Invalid) as raised:
        tracking.rate(session, case, score, comment)
    assert field in raised.value.errors
    session.rollback()
    assert tracking.public_view(session, case)["can_rate"] is True


def test_a_poor_rating_opens_a_follow_up_due_in_five_working_days_until_a_supervisor_replies(session, factory):
    case = factory.case("delivered")
    with time_machine.travel("2026-11-27 16:00 +0800", tick=False):  # a Friday afternoon
        tracking.rate(session, case, 2, "等了很久")
        session.commit()
    (follow_up, case_no, rating), = tracking.open_follow_ups(session)
    assert case_no == case.case_no and rating.score == 2
    # 35 working hours from Friday 16:00: Friday 1.5 h, then Mon–Thu 28 h, Friday 5.5 h → 14:30 + 1:30 lunch.
    assert follow_up.due_at == hall("2026-12-04 16:00 +0800")
    with pytest.raises(Forbidden):
        tracking.close_follow_up(session, follow_up.id, factory.clerk("service_window"), "已回访")
    with pytest.raises(Invalid):
        tracking.close_follow_up(session, follow_up.id, factory.actor("supervisor", "service_window"), "  ")
    session.rollback()
    supervisor = factory.actor("supervisor", "taxation")
    tracking.close_follow_up(session, follow_up.id, supervisor, "已电话回访，说明了排队原因")
    session.commit()
    assert tracking.open_follow_ups(session) == []
    with pytest.raises(Conflict):
        tracking.close_follow_up(session, follow_up.id, factory.actor("admin", None), "再次回复")
    session.rollback()
    actions = [e.action for e in queries.case_events(session, case)]
    assert actions[-2:] == ["rate", "follow_up_closed"]
    assert audit.verify(session) == []
