"""The business calendar: worked examples on real dates, overrides, and properties of the arithmetic.

The holidays and adjusted working days below were looked up in the chinese-calendar package
(1.11) and the expected instants worked out by hand; each example also asserts the day statuses it
relies on, so a change in the package data shows up as that, not as a puzzling instant.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from workflow import calendar as calendar_module
from workflow.calendar import DEFAULT_SESSIONS, HALL_TZ, BusinessCalendar, Timed, parse_sessions

CAL = BusinessCalendar()
US = timedelta(microseconds=1)


def at(text: str) -> datetime:
    """An instant written in the hall's wall-clock time."""
    return datetime.fromisoformat(text).replace(tzinfo=HALL_TZ)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def statuses(calendar: BusinessCalendar, first: str, last: str) -> str:
    """The working ('W') and free ('-') days from first to last, inclusive."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return "".join("W" if calendar.day(start + timedelta(n)).value else "-" for n in range((end - start).days + 1))


# --- Worked examples ------------------------------------------------------------------------

def test_the_default_day_is_two_sessions_of_seven_hours():
    assert DEFAULT_SESSIONS == ((time(9), time(12)), (time(13, 30), time(17, 30)))
    assert CAL.minutes_per_day == 420


def test_across_the_lunch_break():
    assert CAL.add(at("2025-06-03 11:30"), minutes(60)) == Timed(at("2025-06-03 14:00"), True)


def test_running_out_at_noon_stays_at_noon():
    assert CAL.add(at("2025-06-03 09:00"), minutes(180)).value == at("2025-06-03 12:00")
    assert CAL.add(at("2025-06-03 11:00"), minutes(60)).value == at("2025-06-03 12:00")


def test_half_a_working_day_from_the_morning_and_from_the_afternoon():
    # 09:00–12:00 is 180 minutes, the last 30 run from 13:30.
    assert CAL.add(at("2025-06-03 09:00"), minutes(210)).value == at("2025-06-03 14:00")
    # 14:00–17:30 is exactly 210: the deadline is the closing time, not tomorrow's opening.
    assert CAL.add(at("2025-06-03 14:00"), minutes(210)).value == at("2025-06-03 17:30")


def test_friday_afternoon_into_monday():
    assert statuses(CAL, "2025-06-06", "2025-06-09") == "W--W"
    # 16:00–17:30 Friday is 90 minutes, the other 120 run from 09:00 Monday.
    assert CAL.add(at("2025-06-06 16:00"), minutes(210)) == Timed(at("2025-06-09 11:00"), True)
    assert CAL.between(at("2025-06-06 16:00"), at("2025-06-09 11:00")) == Timed(minutes(210), True)


def test_an_adjusted_working_sunday_before_national_day_2025():
    # Fri 26 working, Sat 27 free, Sun 28 调休上班.
    assert statuses(CAL, "2025-09-26", "2025-09-28") == "W-W"
    assert CAL.add(at("2025-09-26 16:30"), minutes(210)).value == at("2025-09-28 11:30")


def test_national_day_2025():
    # Tue 30 Sep working, 1–8 Oct holidays, Thu 9 Oct working.
    assert statuses(CAL, "2025-09-30", "2025-10-09") == "W--------W"
    assert CAL.add(at("2025-09-30 16:30"), minutes(210)) == Timed(at("2025-10-09 11:30"), True)
    assert CAL.between_minutes(at("2025-09-30 09:00"), at("2025-10-09 09:00")) == Timed(420.0, True)


def test_spring_festival_2026():
    # Sat 14 Feb 调休上班, 15–23 Feb holidays, Tue 24 Feb working; Sat 28 Feb 调休上班 too.
    assert statuses(CAL, "2026-02-13", "2026-02-24") == "WW---------W"
    assert statuses(CAL, "2026-02-28", "2026-03-01") == "W-"
    assert CAL.add(at("2026-02-13 16:30"), minutes(210)).value == at("2026-02-14 11:30")
    # 16:00–17:30 on the working Saturday is 90 minutes; the other 120 wait for Tue 24 Feb.
    assert CAL.add(at("2026-02-14 16:00"), minutes(210)).value == at("2026-02-24 11:00")


def test_a_start_outside_working_time_counts_from_the_next_opening():
    assert CAL.add(at("2025-06-03 12:15"), minutes(30)).value == at("2025-06-03 14:00")
    assert CAL.add(at("2025-06-03 20:00"), minutes(30)).value == at("2025-06-04 09:30")
    assert CAL.add(at("2025-10-01 10:00"), minutes(1)).value == at("2025-10-09 09:01")


def test_zero_duration_is_the_start_itself_in_the_halls_zone():
    start = datetime(2025, 6, 3, 4, 15, tzinfo=timezone.utc)  # 12:15 in the hall, the lunch break
    result = CAL.add(start, timedelta(0))
    assert result == Timed(start, True)
    assert result.value.tzinfo is HALL_TZ


def test_instants_in_other_zones_are_converted():
    start = datetime(2025, 6, 3, 3, 30, tzinfo=timezone.utc)  # 11:30 in the hall
    result = CAL.add(start, minutes(60))
    assert result.value == at("2025-06-03 14:00")
    assert result.value.tzinfo is HALL_TZ
    assert result.value.isoformat() == "2025-06-03T14:00:00+08:00"
    new_york = datetime(2025, 6, 2, 23, 30, tzinfo=ZoneInfo("America/New_York"))  # 11:30 in the hall
    assert CAL.between(new_york, at("2025-06-03 14:00")).value == minutes(60)


def test_250_working_days_and_a_year():
    assert CAL.between_minutes(at("2025-01-01 00:00"), at("2026-01-01 00:00")) == Timed(248 * 420.0, True)
    start = at("2025-03-03 09:00")
    end = CAL.add(start, minutes(250 * 420)).value
    assert CAL.between(start, end).value == minutes(250 * 420)
    assert end.time() == time(17, 30)


def test_between_is_zero_when_the_end_is_not_after_the_start():
    assert CAL.between(at("2025-06-03 11:00"), at("2025-06-03 10:00")) == Timed(timedelta(0), True)
    assert CAL.between(at("2025-06-03 11:00"), at("2025-06-03 11:00")) == Timed(timedelta(0), True)


def test_between_counts_the_start_but_not_the_end():
    assert CAL.between(at("2025-06-03 11:59"), at("2025-06-03 13:31")).value == minutes(2)
    assert CAL.between(at("2025-06-03 12:00"), at("2025-06-03 13:30")).value == timedelta(0)


def test_minutes_keep_fractions():
    assert CAL.add_minutes(at("2025-06-03 09:00"), 0.5).value == at("2025-06-03 09:00:30")
    assert CAL.between_minutes(at("2025-06-03 09:00"), at("2025-06-03 09:00:45")).value == 0.75


def test_working_time_and_the_next_opening():
    assert CAL.is_working_time(at("2025-06-03 09:00"))
    assert CAL.is_working_time(at("2025-06-03 11:59:59.999999"))
    assert not CAL.is_working_time(at("2025-06-03 12:00"))
    assert CAL.is_working_time(at("2025-06-03 13:30"))
    assert not CAL.is_working_time(at("2025-06-03 17:30"))
    assert not CAL.is_working_time(at("2025-10-01 10:00"))
    assert CAL.next_working_instant(at("2025-06-03 10:00")) == at("2025-06-03 10:00")
    assert CAL.next_working_instant(at("2025-06-03 12:00")) == at("2025-06-03 13:30")
    assert CAL.next_working_instant(at("2025-06-03 08:00")) == at("2025-06-03 09:00")
    assert CAL.next_working_instant(at("2025-09-30 17:30")) == at("2025-10-09 09:00")


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="naive"):
        CAL.add(datetime(2025, 6, 3, 9), minutes(1))
    with pytest.raises(ValueError, match="naive"):
        CAL.between(datetime(2025, 6, 3, 9), datetime(2025, 6, 3, 8))
    with pytest.raises(ValueError, match="naive"):
        CAL.is_working_time(datetime(2025, 6, 3, 9))
    with pytest.raises(ValueError, match="negative"):
        CAL.add(at("2025-06-03 09:00"), -US)
    with pytest.raises(ValueError, match="negative"):
        CAL.add_minutes(at("2025-06-03 09:00"), -1)


# --- Overrides and years the package does not cover -------------------------------------------

def test_an_override_makes_a_package_workday_a_holiday():
    calendar = BusinessCalendar(overrides={date(2025, 10, 9): "holiday"})
    assert calendar.day(date(2025, 10, 9)) == Timed(False, True)
    assert calendar.add(at("2025-09-30 16:30"), minutes(210)) == Timed(at("2025-10-10 11:30"), True)


def test_an_override_makes_a_package_holiday_a_workday():
    calendar = BusinessCalendar(overrides={date(2025, 10, 1): "workday"})
    assert calendar.add(at("2025-09-30 16:30"), minutes(210)) == Timed(at("2025-10-01 11:30"), True)


def test_an_uncovered_year_counts_monday_to_friday_unconfirmed():
    # 2027-01-08 is a Friday; the package stops at 2026.
    assert CAL.day(date(2027, 1, 8)) == Timed(True, False)
    assert CAL.day(date(2027, 1, 9)) == Timed(False, False)
    assert CAL.add(at("2027-01-08 16:30"), minutes(210)) == Timed(at("2027-01-11 11:30"), False)
    assert CAL.between(at("2027-01-08 16:30"), at("2027-01-11 11:30")) == Timed(minutes(210), False)


def test_overrides_for_every_day_touched_confirm_an_uncovered_year():
    days = {date(2027, 1, 8): "workday", date(2027, 1, 9): "holiday", date(2027, 1, 10): "holiday",
            date(2027, 1, 11): "workday"}
    calendar = BusinessCalendar(overrides=days)
    assert calendar.add(at("2027-01-08 16:30"), minutes(210)) == Timed(at("2027-01-11 11:30"), True)
    assert calendar.between(at("2027-01-08 16:30"), at("2027-01-11 11:30")) == Timed(minutes(210), True)
    # An admin's adjusted working Saturday counts.
    saturday = BusinessCalendar(overrides={**days, date(2027, 1, 9): "workday"})
    assert saturday.add(at("2027-01-08 16:30"), minutes(210)) == Timed(at("2027-01-09 11:30"), True)


def test_only_the_days_touched_decide_confirmation():
    # [a, b) ending at midnight does not touch the uncovered new year.
    assert CAL.between(at("2026-12-31 09:00"), at("2027-01-01 00:00")) == Timed(minutes(420), True)
    assert CAL.between(at("2026-12-31 09:00"), at("2027-01-01 00:00") + US).confirmed is False
    assert CAL.add(at("2026-12-31 09:00"), minutes(420)) == Timed(at("2026-12-31 17:30"), True)
    # 2027-01-01 is a Friday: without data, a working day.
    assert CAL.add(at("2026-12-31 09:00"), minutes(421)) == Timed(at("2027-01-01 09:01"), False)


def test_bad_overrides_are_refused():
    with pytest.raises(ValueError, match="not holiday or workday"):
        BusinessCalendar(overrides={date(2027, 1, 1): "rest"})
    with pytest.raises(TypeError, match="not a date"):
        BusinessCalendar(overrides={"2027-01-01": "holiday"})


# --- Sessions ---------------------------------------------------------------------------------

def test_parse_sessions_reads_the_default():
    assert parse_sessions("09:00-12:00,13:30-17:30") == DEFAULT_SESSIONS
    assert parse_sessions(" 09:00 - 12:00 , 13:30-17:30 ") == DEFAULT_SESSIONS


def test_a_hall_with_its_own_hours():
    sessions = parse_sessions("08:30-12:00,14:00-18:00")
    calendar = BusinessCalendar(sessions=sessions)
    assert calendar.minutes_per_day == 450  # 210 + 240
    # 08:30–12:00 is 210 minutes, the other 90 run from 14:00.
    assert calendar.add(at("2025-06-03 08:30"), minutes(300)).value == at("2025-06-03 15:30")
    assert calendar.add(at("2025-06-03 08:30"), minutes(450)).value == at("2025-06-03 18:00")
    assert calendar.add(at("2025-06-03 08:30"), minutes(451)).value == at("2025-06-04 08:31")


def test_touching_sessions_are_accepted():
    calendar = BusinessCalendar(sessions=parse_sessions("09:00-12:00,12:00-13:00"))
    assert calendar.minutes_per_day == 240
    assert calendar.add(at("2025-06-03 11:00"), minutes(60)).value == at("2025-06-03 12:00")
    assert calendar.is_working_time(at("2025-06-03 12:00"))


@pytest.mark.parametrize("text", [
    "09:00-12:00,11:00-13:00",  # overlapping
    "12:00-09:00",  # reversed
    "09:00-09:00",  # empty
    "13:30-17:30,09:00-12:00",  # out of order
    "9-12", "09:00-12:00;13:30-17:30", "", "09:00-12:00,", "09:00-24:00", "09:00-12:60",
])
def test_parse_sessions_refuses(text):
    with pytest.raises(ValueError):
        parse_sessions(text)


def test_session_times_are_whole_local_minutes():
    with pytest.raises(ValueError, match="whole minute"):
        BusinessCalendar(sessions=((time(9, 0, 30), time(12)),))
    with pytest.raises(ValueError, match="whole minute"):
        BusinessCalendar(sessions=((time(9, tzinfo=timezone.utc), time(12, tzinfo=timezone.utc)),))
    with pytest.raises(ValueError, match="at least one"):
        BusinessCalendar(sessions=())


# --- Memory -------------------------------------------------------------------------------------

def test_the_day_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(calendar_module, "_CACHED_DAYS", 10)
    calendar = BusinessCalendar()
    start, month = at("2025-06-03 09:00"), minutes(30 * 420)
    assert calendar.add(start, month) == CAL.add(start, month)
    assert len(calendar._days) <= 10


# --- Properties -------------------------------------------------------------------------------

ZONES = [HALL_TZ, timezone.utc, ZoneInfo("America/New_York"), ZoneInfo("Europe/London"),
         timezone(timedelta(hours=5, minutes=45)), timezone(-timedelta(hours=9, minutes=30))]
NUDGES = [timedelta(0), US, -US, minutes(1), -minutes(1)]
# A default hall, and a strange one: sessions from midnight, touching ones, admin days in 2027.
CALENDARS = [
    CAL,
    BusinessCalendar(parse_sessions("00:00-08:00,08:00-12:00,22:00-23:59"),
                     overrides={date(2025, 10, 4): "workday", date(2025, 6, 3): "holiday",
                                date(2027, 1, 1): "holiday", date(2027, 1, 9): "workday"}),
]


@st.composite
def near_boundaries(draw) -> datetime:
    """An instant at (or a hair from) a session boundary or midnight, in some zone."""
    calendar_day = draw(st.dates(date(2025, 1, 1), date(2027, 12, 31)))
    wall = draw(st.sampled_from([time(0), time(8), time(9), time(12), time(13, 30), time(17, 30), time(22),
                                 time(23, 59)]))
    moment = datetime.combine(calendar_day, wall, HALL_TZ) + draw(st.sampled_from(NUDGES))
    return moment.astimezone(draw(st.sampled_from(ZONES)))


instants = st.one_of(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31, 23, 59, 59),
                 timezones=st.sampled_from(ZONES)),
    near_boundaries(),
)
durations = st.one_of(
    st.integers(0, 3 * 420).map(minutes),  # whole minutes: deadlines land on session ends
    st.integers(0, 250).map(lambda days: minutes(420 * days)),  # whole default days
    st.integers(0, 200 * 420 * 60_000_000).map(lambda us: timedelta(microseconds=us)),
)
examples = settings(max_examples=200, deadline=None)
calendars = pytest.mark.parametrize("calendar", CALENDARS, ids=["default", "strange"])


def utc(moment: datetime) -> datetime:
    # Aware datetimes sharing a tzinfo compare by wall clock; UTC orders them as instants.
    return moment.astimezone(timezone.utc)


def in_session(calendar: BusinessCalendar, moment: datetime) -> bool:
    """Whether an instant is in a session of a working day, counting the session's end as in."""
    local = moment.astimezone(HALL_TZ)
    return calendar.day(local.date()).value and any(s <= local.time() <= e for s, e in calendar.sessions)


@calendars
@examples
@given(start=instants, duration=durations)
def test_adding_then_measuring_gives_the_duration_back(calendar, start, duration):
    result = calendar.add(start, duration)
    assert calendar.between(start, result.value) == Timed(duration, result.confirmed)


@calendars
@examples
@given(start=instants, duration=durations)
def test_add_gives_the_earliest_instant_inside_a_session(calendar, start, duration):
    result = calendar.add(start, duration).value
    assert result.tzinfo is HALL_TZ
    assert utc(result) >= utc(start)
    if duration:
        assert in_session(calendar, result)
        assert calendar.between(start, result - US).value < duration


@calendars
@examples
@given(points=st.lists(instants, min_size=3, max_size=3))
def test_measuring_is_additive(calendar, points):
    a, m, b = sorted(points, key=utc)
    whole = calendar.between(a, b)
    first, second = calendar.between(a, m), calendar.between(m, b)
    assert first.value + second.value == whole.value
    assert whole.confirmed == (first.confirmed and second.confirmed)


@calendars
@examples
@given(starts=st.lists(instants, min_size=2, max_size=2), lengths=st.lists(durations, min_size=2, max_size=2))
def test_add_is_monotone_in_start_and_duration(calendar, starts, lengths):
    early, late = sorted(starts, key=utc)
    short, long = sorted(lengths)
    assert utc(calendar.add(early, short).value) <= utc(calendar.add(early, long).value)
    assert utc(calendar.add(early, short).value) <= utc(calendar.add(late, short).value)


@calendars
@examples
@given(moment=instants)
def test_working_time_is_where_between_counts(calendar, moment):
    assert calendar.is_working_time(moment) == (calendar.between(moment, moment + US).value == US)


@calendars
@examples
@given(moment=instants)
def test_the_next_working_instant(calendar, moment):
    following = calendar.next_working_instant(moment)
    assert utc(following) >= utc(moment)
    assert calendar.is_working_time(following)
    assert calendar.between(moment, following).value == timedelta(0)
    if calendar.is_working_time(moment):
        assert following == moment
