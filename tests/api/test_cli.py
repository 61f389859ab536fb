"""The command line of contract section 3."""
from sqlalchemy import select, text

from workflow.models import Case, Event, User

from ..factories import bypass_append_only


def run(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result


def test_users_and_tokens_are_created_from_the_command_line(app, client):
    result = run(app, "users", "create", "li.si", "--role", "clerk", "--department", "taxation",
                 "--password", "s3cret-pass")
    assert result.exit_code == 0, result.output
    result = run(app, "tokens", "create", "li.si")
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    r = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_passwords_are_stored_as_argon2_hashes_and_tokens_as_digests(app, session):
    run(app, "users", "create", "wang", "--role", "admin", "--password", "another-pass")
    token = run(app, "tokens", "create", "wang").output.strip().splitlines()[-1]
    user = session.scalar(select(User).where(User.username == "wang"))
    assert user.password_hash.startswith("$argon2id$") and "another-pass" not in user.password_hash
    stored = session.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert token not in stored and len(stored[0]) == 64


def test_bad_user_input_is_refused_cleanly(app):
    result = run(app, "users", "create", "x", "--role", "clerk", "--department", "moon_office", "--password", "longenough")
    assert result.exit_code != 0 and "unknown department moon_office" in result.output
    result = run(app, "users", "create", "x", "--role", "clerk", "--password", "longenough")
    assert result.exit_code != 0 and "need a department" in result.output
    assert run(app, "tokens", "create", "nobody").exit_code != 0


def test_demo_seeds_users_and_cases_in_several_states_once(app, session):
    result = run(app, "demo")
    assert result.exit_code == 0, result.output
    states = set(session.scalars(select(Case.state)).all())
    assert {s.value for s in states} >= {"submitted", "in_progress", "suspended", "ready", "delivered", "rejected"}
    assert session.scalar(select(User).where(User.username == "tax_sup")).role.value == "supervisor"
    assert "already present" in run(app, "demo").output


def test_audit_verify_reports_a_tampered_event_by_its_id(app, session):
    run(app, "demo")
    ok = run(app, "audit", "verify")
    assert ok.exit_code == 0 and "every chain verifies" in ok.output
    victim = session.scalars(select(Event).order_by(Event.id).offset(20)).first()
    bypass_append_only(session)
    session.execute(text("UPDATE events SET actor = 'mallory' WHERE id = :id"), {"id": victim.id})
    session.commit()
    result = run(app, "audit", "verify")
    assert result.exit_code == 1
    assert f"event {victim.id} " in result.output and "does not match" in result.output


def test_migrations_go_up_and_down_with_data(tmp_path):
    from api import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}", "SECRET_KEY": "t"})
    assert run(app, "db", "upgrade").exit_code == 0
    assert run(app, "users", "create", "a", "--role", "admin", "--password", "12345678").exit_code == 0
    assert run(app, "demo").exit_code == 0
    # Every migration's downgrade works with data in the tables, and the way back up too.
    result = run(app, "db", "downgrade", "base")
    assert result.exit_code == 0, result.output
    assert run(app, "db", "upgrade").exit_code == 0
    assert run(app, "demo").exit_code == 0
    app.extensions["onewindow.db"].kw["bind"].dispose()


def test_reports_rollup_rolls_finished_days_once_and_the_report_stays_the_same(app, session):
    from datetime import timedelta

    from workflow import reports
    from workflow.clock import utcnow
    from workflow.models import RolledDay

    run(app, "demo")
    today = utcnow().astimezone(reports.HALL_TZ).date()
    before = {g: reports.elapsed(session, start=today - timedelta(days=3), end=today, group_by=g)
              for g in ("step", "department", "clerk")}
    session.rollback()
    assert any(before.values()), "the demo finishes steps today"
    later = (utcnow() + timedelta(days=2)).isoformat()
    first = run(app, "reports", "rollup", "--now", later)
    assert first.exit_code == 0 and int(first.output) >= 2, first.output
    assert run(app, "reports", "rollup", "--now", later).output.strip() == "0"
    assert session.scalar(select(RolledDay.day).order_by(RolledDay.day.desc()).limit(1)) == today + timedelta(days=1)
    for group_by, figures in before.items():
        assert reports.elapsed(session, start=today - timedelta(days=3), end=today, group_by=group_by) == figures
