"""The administrators' commands: disable, enable, reset a password, list and revoke tokens."""
from sqlalchemy import select

from workflow import accounts
from workflow.models import AdminEvent

from .test_cli import run


def _bearer(client, token):
    return client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code


def test_disable_and_enable_from_the_command_line(app, client, session):
    assert run(app, "users", "create", "li.si", "--role", "clerk", "--department", "taxation",
               "--password", "s3cret-pass").exit_code == 0
    token = run(app, "tokens", "create", "li.si").output.strip().splitlines()[-1]
    result = run(app, "users", "disable", "li.si")
    assert result.exit_code == 0 and "disabled li.si" in result.output
    assert _bearer(client, token) == 401
    assert run(app, "users", "enable", "li.si").exit_code == 0
    assert _bearer(client, token) == 200
    assert run(app, "users", "disable", "nobody").exit_code != 0
    actions = session.scalars(select(AdminEvent.action).where(AdminEvent.actor == "cli").order_by(AdminEvent.id))
    assert list(actions) == ["user_created", "token_issued", "user_disabled", "user_enabled"]


def test_reset_password_from_the_command_line(app, session):
    run(app, "users", "create", "wang", "--role", "admin", "--password", "another-pass")
    assert run(app, "users", "reset-password", "wang", "--password", "short").exit_code != 0
    result = app.test_cli_runner().invoke(args=["users", "reset-password", "wang"],
                                          input="brand-new-pass\nbrand-new-pass\n")
    assert result.exit_code == 0, result.output
    assert "brand-new-pass" not in result.output
    session.expire_all()
    assert accounts.sign_in(session, "wang", "brand-new-pass").user is not None


def test_tokens_are_listed_and_revoked_by_id(app, client):
    run(app, "users", "create", "bank2", "--role", "clerk", "--department", "bank", "--password", "long-enough")
    token = run(app, "tokens", "create", "bank2", "--label", "teller").output.strip().splitlines()[-1]
    listed = run(app, "tokens", "list", "bank2").output.strip().splitlines()
    assert len(listed) == 1 and listed[0].endswith("in use  teller") and token not in listed[0]
    token_id = listed[0].split()[0]
    result = run(app, "tokens", "revoke", token_id)
    assert result.exit_code == 0 and f"revoked token {token_id} of bank2" in result.output
    assert _bearer(client, token) == 401
    assert " revoked " in run(app, "tokens", "list", "bank2").output
    assert run(app, "tokens", "revoke", "9999").exit_code != 0
    assert run(app, "tokens", "list", "nobody").exit_code != 0
