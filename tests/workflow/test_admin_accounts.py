"""What administrators do to accounts, logged; and how far ahead the hall's calendar is confirmed."""
from datetime import date, datetime, timedelta, timezone

import pytest
import time_machine

from workflow import accounts
from workflow.calendar_days import confirmed_days_ahead, year_view
from workflow.errors import Forbidden, IllegalAction, Invalid, NotFound, Unauthenticated
from workflow.operations.calendar import set_calendar_days

from ..factories import PASSWORD


@pytest.fixture
def admin(factory):
    return factory.actor("admin", None)


def _log(session, username):
    return [(e.action, e.actor) for e in reversed(accounts.account_log(session, username))]


def test_an_admin_creates_an_account_and_the_log_says_who(session, admin):
    user = accounts.create_user(session, "tax9", "long enough", "clerk", "taxation", "周九", by=admin)
    assert (user.display_name, user.role.value, user.department, user.active) == ("周九", "clerk", "taxation", True)
    assert _log(session, "tax9") == [("user_created", admin.username)]
    assert accounts.account_log(session, "tax9")[0].details == {"role": "clerk", "department": "taxation"}


def test_only_admins_manage_accounts(session, factory):
    supervisor = factory.actor("supervisor", "taxation")
    victim = factory.clerk("taxation")
    with pytest.raises(Forbidden):
        accounts.create_user(session, "x1", "long enough", "clerk", "taxation", by=supervisor)
    for attempt in (lambda: accounts.disable_user(session, supervisor, victim.username),
                    lambda: accounts.reset_password(session, supervisor, victim.username, "new password"),
                    lambda: accounts.create_token(session, victim.username, by=supervisor)):
        with pytest.raises(Forbidden):
            attempt()


def test_bad_accounts_are_refused_field_by_field(session, admin):
    with pytest.raises(Invalid) as refused:
        accounts.create_user(session, "", "short", "janitor", by=admin)
    assert set(refused.value.errors) == {"role"}
    with pytest.raises(Invalid) as refused:
        accounts.create_user(session, "", "short", "clerk", None, "名" * 65, by=admin)
    assert set(refused.value.errors) == {"username", "password", "department", "display_name"}


@pytest.mark.parametrize("name", ["tax/1", "a\x00b", "line\nbreak"])
def test_a_username_its_admin_page_could_not_reach_is_refused(session, admin, name):
    with pytest.raises(Invalid) as refused:
        accounts.create_user(session, name, PASSWORD, "clerk", "taxation", by=admin)
    assert refused.value.errors == {"username": ["must not contain / or control characters"]}
    assert accounts.create_user(session, "税务·王 <1>", PASSWORD, "clerk", "taxation", by=admin).username == "税务·王 <1>"


def test_disabling_signs_nobody_in_and_stops_tokens_until_enabled(session, factory, admin):
    clerk = factory.clerk("bank")
    token = factory.token("clerk", "bank")
    accounts.disable_user(session, admin, clerk.username)
    accounts.disable_user(session, admin, clerk.username)  # twice changes nothing more
    assert accounts.sign_in(session, clerk.username, PASSWORD).refusal == "this account is disabled"
    with pytest.raises(Unauthenticated):
        accounts.user_for_token(session, token)
    with pytest.raises(IllegalAction):
        accounts.create_token(session, clerk.username, by=admin)
    accounts.enable_user(session, admin, clerk.username)
    assert accounts.user_for_token(session, token).username == clerk.username
    assert _log(session, clerk.username) == [("user_disabled", admin.username), ("user_enabled", admin.username)]


def test_an_admin_cannot_disable_themselves(session, admin):
    with pytest.raises(IllegalAction, match="your own account"):
        accounts.disable_user(session, admin, admin.username)
    with pytest.raises(NotFound):
        accounts.disable_user(session, admin, "nobody")


def test_a_reset_password_works_at_once_and_lifts_the_lockout(session, factory, admin):
    clerk = factory.clerk("taxation")
    start = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    with time_machine.travel(start, tick=False):
        for _ in range(accounts.MAX_FAILED_LOGINS):
            accounts.sign_in(session, clerk.username, "wrong")
        assert accounts.sign_in(session, clerk.username, PASSWORD).locked
        with pytest.raises(Invalid) as refused:
            accounts.reset_password(session, admin, clerk.username, "short")
        assert refused.value.errors == {"password": ["must be at least 8 characters"]}
        user = accounts.reset_password(session, admin, clerk.username, "a new password")
        assert user.password_hash.startswith("$argon2id$") and user.locked_until is None
        assert accounts.sign_in(session, clerk.username, PASSWORD).user is None
        assert accounts.sign_in(session, clerk.username, "a new password").user is not None
    assert _log(session, clerk.username) == [("password_reset", admin.username)]


def test_tokens_are_listed_and_revoked_by_id(session, factory, admin):
    clerk = factory.clerk("bank")
    first = accounts.create_token(session, clerk.username, "teller", by=admin)
    second = accounts.create_token(session, clerk.username, "batch", by=admin)
    listed = accounts.tokens_of(session, clerk.username)
    assert [t.label for t in listed] == ["batch", "teller"]
    assert all(first not in t.token_hash and second not in t.token_hash for t in listed)
    revoked = accounts.revoke_token_by_id(session, admin, listed[1].id)
    stamp = revoked.revoked_at
    assert accounts.revoke_token_by_id(session, admin, listed[1].id).revoked_at == stamp  # kept the first
    with pytest.raises(Unauthenticated):
        accounts.user_for_token(session, first)
    assert accounts.user_for_token(session, second).username == clerk.username
    with pytest.raises(NotFound):
        accounts.revoke_token_by_id(session, admin, 99999)
    with pytest.raises(Invalid):
        accounts.create_token(session, clerk.username, "x" * 65, by=admin)
    log = accounts.account_log(session, clerk.username)
    assert [(e.action, e.details["label"]) for e in reversed(log)] == [
        ("token_issued", "teller"), ("token_issued", "batch"), ("token_revoked", "teller")]


def test_users_are_listed_admins_first(session, factory):
    factory.clerk("taxation")
    factory.actor("admin", None)
    factory.clerk("bank")
    assert [u.department for u in accounts.list_users(session)] == [None, "bank", "taxation"]


def test_days_confirmed_ahead_run_to_the_first_day_without_data(session, admin):
    # The chinese-calendar package covers 2026 (to its last day); no package will cover 2090 soon.
    assert confirmed_days_ahead(session, date(2026, 12, 1)) >= 31
    assert confirmed_days_ahead(session, date(2090, 1, 1)) == 0
    days = [{"day": date(2090, 1, 1) + timedelta(days=n), "kind": "workday", "name": ""} for n in (0, 1, 2, 4)]
    set_calendar_days(session, admin, days)
    assert confirmed_days_ahead(session, date(2090, 1, 1)) == 3  # the 4th has no data
    assert confirmed_days_ahead(session, date(2090, 1, 5)) == 1


def test_the_year_view_tells_every_kind_of_day(session, admin):
    october = year_view(session, 2026)[9]
    kinds = {d.day.day: (d.kind, d.name.get("zh")) for d in october}
    assert kinds[1] == ("holiday", "国庆节") and kinds[3] == ("holiday", "国庆节")  # a Saturday in the holiday
    assert kinds[8] == ("working", None) and kinds[11] == ("rest", None)
    assert kinds[10] == ("workday", "国庆节")  # the adjusted working Saturday
    set_calendar_days(session, admin, [{"day": date(2027, 2, 6), "kind": "workday", "name": "春节调休"},
                                       {"day": date(2027, 2, 8), "kind": "holiday", "name": "春节"}])
    february = {d.day.day: d for d in year_view(session, 2027)[1]}
    assert (february[6].kind, february[6].name["en"], february[6].source) == ("workday", "春节调休", "admin")
    assert february[8].kind == "holiday" and february[8].working is False
    assert (february[9].kind, february[9].working, february[13].working) == ("unconfirmed", True, False)
