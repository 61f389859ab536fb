"""Importing a year's State Council schedule confirms the whole year, not only the days it lists."""
from datetime import date

from workflow.calendar import BusinessCalendar
from workflow.calendar_days import calendar_for, confirmed_days_ahead
from workflow.operations.calendar import import_calendar_csv, set_calendar_days

SCHEDULE_2027 = """date,kind,name
2027-01-01,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,workday,春节调休
"""


def test_a_confirmed_year_makes_its_unlisted_weekdays_confirmed_working_days():
    plain = BusinessCalendar()
    confirmed = BusinessCalendar(confirmed_years=[2027])
    monday, saturday = date(2027, 1, 4), date(2027, 1, 9)
    assert plain.day(monday) == (True, False) and plain.day(saturday) == (False, False)
    assert confirmed.day(monday) == (True, True) and confirmed.day(saturday) == (False, True)
    assert confirmed.day(date(2028, 1, 3)).confirmed is False


def test_importing_a_schedule_confirms_its_years_but_adding_one_day_does_not(session, factory):
    admin = factory.actor("admin", None)
    today = date(2026, 11, 23)
    before = confirmed_days_ahead(session, today)
    assert before == (date(2027, 1, 1) - today).days  # the package covers 2026 only
    set_calendar_days(session, admin, [{"day": date(2027, 1, 1), "kind": "holiday", "name": "元旦"}])
    assert confirmed_days_ahead(session, today) == before + 1  # one day entered, the 2nd still unknown
    import_calendar_csv(session, admin, SCHEDULE_2027)
    session.commit()
    assert confirmed_days_ahead(session, today) == (date(2028, 1, 1) - today).days
    calendar = calendar_for(session)
    assert calendar.day(date(2027, 2, 7)) == (True, True)  # the adjusted working Sunday
    assert calendar.day(date(2027, 2, 8)) == (True, True)  # an ordinary Monday, not listed
