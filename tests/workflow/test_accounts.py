"""Signing in: argon2 checks, the same refusal for unknown names, lockout after repeated failures."""
from datetime import datetime, timedelta, timezone

import time_machine

from workflow import accounts

from ..factories import PASSWORD


def test_a_right_password_signs_in_and_clears_the_count(session, factory):
    actor = factory.clerk("taxation")
    assert accounts.sign_in(session, actor.username, "wrong").user is None
    result = accounts.sign_in(session, actor.username, PASSWORD)
    assert result.user is not None and result.user.failed_logins == 0


def test_unknown_names_and_wrong_passwords_are_refused_alike(session, factory):
    actor = factory.clerk("taxation")
    assert accounts.sign_in(session, "nobody", PASSWORD).refusal == accounts.sign_in(
        session, actor.username, "nope").refusal


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(session, factory):
    actor = factory.clerk("bank")
    start = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    with time_machine.travel(start, tick=False):
        outcomes = [accounts.sign_in(session, actor.username, "wrong") for _ in range(5)]
        session.commit()
        assert [o.locked for o in outcomes] == [False, False, False, False, True]
        refused = accounts.sign_in(session, actor.username, PASSWORD)
        assert refused.user is None and refused.locked and "locked" in refused.refusal
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        assert accounts.sign_in(session, actor.username, PASSWORD).user is not None


def test_a_disabled_account_cannot_sign_in(session, factory):
    actor = factory.clerk("bank")
    user = accounts.sign_in(session, actor.username, PASSWORD).user
    user.active = False
    session.commit()
    assert accounts.sign_in(session, actor.username, PASSWORD).refusal == "this account is disabled"
