"""Sessions, CSRF, lockout and the secret key (issue 9, item 4).

- The session cookie is HttpOnly and SameSite=Lax, and Secure when FLASK_SESSION_COOKIE_SECURE is set.
- Every form (each POST rule of the url_map outside the REST API, found there, not listed by hand)
  refuses a POST without its CSRF token, or with a forged one or one from another session, with
  400; the same POST with the session's token gets past the CSRF layer. The REST API takes no
  CSRF token because the session cookie does not authenticate it: only a bearer token does.
- Five wrong passwords on the sign-in page lock the account for 15 minutes, the right one included.
  (There is no REST endpoint that trades a password for a token: tokens come from an admin or the
  CLI, so the page is the only place a password is tried.)
- The secret key comes only from the environment: create_app and the CLI refuse to start without
  FLASK_SECRET_KEY; ``make run`` makes one for development, once, and every process it starts uses it.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import create_engine, text

from api import MissingSecretKey, create_app
from tests.conftest import ON_POSTGRES
from tests.factories import CSRF, PASSWORD, csrf_token, sign_in
from workflow import receipts
from workflow.clock import utcnow

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the session cookie

def session_cookie(response) -> str:
    cookies = [value for value in response.headers.getlist("Set-Cookie") if value.startswith("session=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_the_session_cookie_is_http_only_and_same_site_lax_and_not_secure_over_http(client, factory):
    response = sign_in(client, factory.window.username)
    assert response.status_code == 302
    flags = [part.strip() for part in session_cookie(response).split(";")]
    assert "HttpOnly" in flags and "SameSite=Lax" in flags and "Secure" not in flags


def test_flask_session_cookie_secure_makes_it_secure(database_url, factory, monkeypatch):
    monkeypatch.setenv("FLASK_SESSION_COOKIE_SECURE", "true")  # as docs/deploy.md has it behind HTTPS
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test", "TESTING": True})
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is True
        client = app.test_client()
        form = client.get("/", base_url="https://hall.example")
        token = CSRF.search(form.get_data(as_text=True)).group(1)
        response = client.post("/", base_url="https://hall.example", headers={"Referer": "https://hall.example/"},
                               data={"username": factory.window.username, "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 302
        flags = [part.strip() for part in session_cookie(response).split(";")]
        assert "Secure" in flags and "HttpOnly" in flags and "SameSite=Lax" in flags
    finally:
        app.extensions["onewindow.db"].kw["bind"].dispose()


# ---------------------------------------------------------------- CSRF on every form

def form_rules(app) -> list:
    """Every rule that takes a POST outside the REST API: the pages' forms."""
    return sorted((rule for rule in app.url_map.iter_rules()
                   if "POST" in rule.methods and not rule.rule.startswith("/api/")), key=lambda rule: rule.rule)


def concrete_paths(rule) -> list[str]:
    """The rule's path for each any(...) item, other variables filled with placeholders."""
    paths = [rule.rule]
    for items, name in re.findall(r"<any\(([^)]*)\):(\w+)>", rule.rule):
        choices = [item.strip().strip("'\"") for item in items.split(",")]
        paths = [path.replace(f"<any({items}):{name}>", choice) for path in paths for choice in choices]
    fill = {"int": "1"}
    return [re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: fill.get(m.group(1) or "", "KB20260101-0001"
                                                             if m.group(2) == "case_no" else "x"), path)
            for path in paths]


def refused_for_csrf(response) -> bool:
    return response.status_code == 400 and "CSRF" in response.get_data(as_text=True)


def test_every_form_refuses_a_post_without_its_csrf_token_and_takes_it_with_one(app, factory):
    rules = form_rules(app)
    endpoints = {rule.endpoint for rule in rules}
    # The forms the app has today are all found; a new one is found the same way.
    assert {"auth.sign_in", "auth.sign_out", "window.create_application", "case_pages.case_action",
            "case_pages.step_action", "admin.create_user", "public.rate"} <= endpoints
    signed_in = app.test_client()
    assert sign_in(signed_in, factory.actor("admin", None).username).status_code == 302
    other = app.test_client()
    stolen = csrf_token(other)  # a real token, of another browser's session
    token = csrf_token(signed_in, "/board")  # the sign-out form's: the same for every form of the session
    tried = 0
    for rule in rules:
        for path in concrete_paths(rule):
            data = {"username": "nobody", "password": "x"}  # what the sign-in form sends; ignored elsewhere
            for bad in ({}, {"csrf_token": "forged"}, {"csrf_token": stolen}):
                response = signed_in.post(path, data={**data, **bad})
                assert refused_for_csrf(response), f"POST {path} with {bad or 'no token'}: {response.status_code}"
                anonymous = app.test_client().post(path, data={**data, **bad})
                assert refused_for_csrf(anonymous), f"anonymous POST {path} with {bad or 'no token'}"
            passed = signed_in.post(path, data={**data, "csrf_token": token})
            assert not refused_for_csrf(passed), f"POST {path} with the session's token was refused for CSRF"
            tried += 1
            if rule.endpoint == "auth.sign_out":  # that one worked: sign in again for the next form
                assert sign_in(signed_in, factory.actor("admin", None).username).status_code == 302
                token = csrf_token(signed_in, "/board")
    assert tried >= 20


def test_every_post_form_in_the_templates_sends_the_token():
    """The other half: a form without the hidden token would be refused for its users."""
    forms = 0
    for template in (ROOT / "templates").rglob("*.html"):
        for form in re.findall(r"<form\b[^>]*>.*?</form>", template.read_text(), flags=re.DOTALL | re.IGNORECASE):
            if re.search(r'method="post"', form, flags=re.IGNORECASE):
                forms += 1
                assert 'name="csrf_token"' in form or "form.csrf_token" in form or "form.hidden_tag()" in form, \
                    f"{template.relative_to(ROOT)}: {form[:120]}"
    assert forms >= 15


def test_the_session_cookie_does_not_open_the_rest_api(app, client, factory):
    """The REST API is exempt from CSRF because a cross-site form cannot send a bearer token."""
    assert sign_in(client, factory.window.username).status_code == 302
    assert client.get("/queue").status_code == 200  # signed in, for the pages
    from tests.factories import application
    response = client.post("/api/v1/cases", json=application())
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert client.get("/api/v1/cases").status_code == 401


# ---------------------------------------------------------------- lockout

def test_five_wrong_passwords_on_the_sign_in_page_lock_the_account_for_fifteen_minutes(client, factory):
    user = factory.clerk("taxation").username
    for attempt in range(4):
        page = sign_in(client, user, "wrong password")
        assert page.status_code == 200 and "locked" not in page.get_data(as_text=True)
    fifth = sign_in(client, user, "wrong password")
    assert fifth.status_code == 200 and "locked" in fifth.get_data(as_text=True)
    # Locked: the right password is refused too, and no session is made.
    right = sign_in(client, user)
    assert right.status_code == 200 and "locked" in right.get_data(as_text=True)
    assert client.get("/queue").status_code == 302
    with time_machine.travel(utcnow() + timedelta(minutes=14), tick=False):
        assert "locked" in sign_in(client, user).get_data(as_text=True)
    with time_machine.travel(utcnow() + timedelta(minutes=15, seconds=1), tick=False):
        assert sign_in(client, user).status_code == 302
        assert client.get("/queue").status_code == 200


def test_a_revoked_token_answers_401_at_once(app, client, factory, session):
    from workflow import accounts

    token = factory.token("clerk", "taxation")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    accounts.revoke_token(session, token)
    session.commit()
    refused = client.get("/api/v1/cases", headers=headers)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")


# ---------------------------------------------------------------- the secret key

def test_create_app_refuses_to_start_without_flask_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    keyfile = ROOT / "instance" / "secret_key"
    before = keyfile.stat().st_mtime_ns if keyfile.exists() else None
    with pytest.raises(MissingSecretKey, match="FLASK_SECRET_KEY is not set"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    with pytest.raises(MissingSecretKey):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "SECRET_KEY": ""})
    # Nothing was invented or stored instead.
    assert (keyfile.stat().st_mtime_ns if keyfile.exists() else None) == before


def test_the_key_comes_from_the_environment_or_the_test_config(monkeypatch, tmp_path):
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-the-environment")
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    for given, expected in ((None, "from-the-environment"), ("given", "given")):
        app = create_app({"DATABASE_URL": url, **({"SECRET_KEY": given} if given else {})})
        assert app.config["SECRET_KEY"] == expected
        app.extensions["onewindow.db"].kw["bind"].dispose()


def cli_env(tmp_path, **extra) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key != "FLASK_SECRET_KEY" and not key.startswith("MAKE") and key != "MFLAGS"}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", **extra})
    return env


# The CLI and make run are started on a SQLite file of their own: the PostgreSQL run would repeat them.
sqlite_run_only = pytest.mark.skipif(ON_POSTGRES, reason="starts processes on SQLite only; run by the SQLite run")


@sqlite_run_only
def test_the_cli_refuses_to_start_without_the_key_and_says_which(tmp_path):
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "routes"]
    refused = subprocess.run(command, cwd=ROOT, env=cli_env(tmp_path), capture_output=True, text=True, timeout=120)
    # One line saying what to do, not a traceback ending in it.
    assert refused.returncode == 1 and refused.stderr.startswith("Error: FLASK_SECRET_KEY is not set"), refused.stderr
    assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1
    started = subprocess.run(command, cwd=ROOT, env=cli_env(tmp_path, FLASK_SECRET_KEY="k"), capture_output=True,
                             text=True, timeout=120)
    assert started.returncode == 0 and "/api/v1/cases" in started.stdout, started.stderr


def test_the_instance_key_stays_out_of_git():
    ignored = subprocess.run(["git", "check-ignore", "-q", "instance/secret_key"], cwd=ROOT)
    assert ignored.returncode == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def session_members(sid: int) -> list[str]:
    """The command lines of the processes in session ``sid`` (the one ``make run`` was started in)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue
    return found


def stop_session(process) -> None:
    """SIGTERM to the session ``make run`` was started in (make, its shell, gunicorn, the worker: all
    ours, by its id), then SIGKILL to whatever is still there after 30 seconds."""
    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while session_members(process.pid) and time.monotonic() < deadline:
        process.poll()
        time.sleep(0.2)
    if session_members(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.mark.slow
@sqlite_run_only
def test_make_run_makes_a_key_once_and_every_process_it_starts_uses_it(tmp_path):
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("make run needs the project's .venv (make install)")
    keyfile, port = tmp_path / "instance" / "secret_key", free_port()
    database = tmp_path / "run.sqlite3"
    env = cli_env(tmp_path, PORT=str(port), DATABASE_URL=f"sqlite:///{database}")
    log = (tmp_path / "make-run.log").open("w")
    process = subprocess.Popen(["make", "-s", "run", f"SECRET_KEY_FILE={keyfile}"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make run did not serve: {(tmp_path / 'make-run.log').read_text()[-3000:]}")
            time.sleep(0.5)
        key = keyfile.read_text().strip()
        assert re.fullmatch(r"[0-9a-f]{64}", key) and keyfile.stat().st_mode & 0o777 == 0o600
        # gunicorn signs with it: a receipt token made with the key verifies on the server.
        engine = create_engine(f"sqlite:///{database}")
        with engine.connect() as connection:
            ready = connection.execute(text("SELECT case_no FROM cases WHERE state = 'ready'")).scalar()
        engine.dispose()
        token = receipts.sign_case_no(key, ready)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/verify/{token}", timeout=10) as answer:
            assert answer.status == 200
        # The timer worker started with it too (without a key it would have exited at once).
        time.sleep(2)
        members = session_members(process.pid)
        assert any("timers run" in line for line in members), members
        assert any("gunicorn" in line for line in members), members
    finally:
        stop_session(process)
        log.close()
    # A second make keeps the key it made.
    again = subprocess.run(["make", "-s", f"SECRET_KEY_FILE={keyfile}", str(keyfile)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and keyfile.read_text().strip() == key
