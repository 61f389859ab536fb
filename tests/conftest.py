"""Fixtures: a migrated database per test (SQLite, or PostgreSQL when TEST_DATABASE_URL is set)."""
from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from api import create_app
from api.cli import alembic_config
from workflow.db import Base, make_engine, make_sessionmaker

from .factories import Factory

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
PG_URL = os.environ.get("TEST_DATABASE_URL")
ON_POSTGRES = bool(PG_URL)
# Under pytest-xdist (`make test` runs one worker per core) each worker has its own database on the
# server, made on first use: tests empty their database between them, so workers cannot share one.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if ON_POSTGRES and WORKER:
    from sqlalchemy.engine import make_url

    _base = make_url(PG_URL)
    PG_URL = _base.set(database=f"{_base.database}_{WORKER}").render_as_string(hide_password=False)


def _create_worker_database() -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    base = os.environ["TEST_DATABASE_URL"]
    name = make_url(PG_URL).database
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def pytest_sessionstart(session):
    """Compile the page catalogues (``make`` does it too; the .mo files are not in git)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in TRANSLATIONS.glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        # Write beside and rename: a parallel run never reads half a file.
        with tempfile.NamedTemporaryFile(dir=po.parent, suffix=".tmp", delete=False) as target:
            write_mo(target, catalog)
        os.replace(target.name, mo)


def pytest_report_header(config):
    return f"database: {'PostgreSQL ' + PG_URL if ON_POSTGRES else 'SQLite (files per test)'}"


def pytest_collection_modifyitems(config, items):
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (the second run of `make test`)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _migrate(url: str) -> None:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test", "TESTING": True})
    with app.app_context():
        from alembic import command

        command.upgrade(alembic_config(), "head")
    app.extensions["onewindow.db"].kw["bind"].dispose()


@pytest.fixture(scope="session")
def migrated(tmp_path_factory):
    """Run the real migrations once; return how to get a clean database for each test."""
    if ON_POSTGRES:
        if WORKER:
            _create_worker_database()
        engine = make_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        _migrate(PG_URL)
        return PG_URL
    template = tmp_path_factory.mktemp("db") / "template.sqlite3"
    _migrate(f"sqlite:///{template}")
    return template


@pytest.fixture
def database_url(migrated, tmp_path):
    """A clean, migrated database for this test."""
    if ON_POSTGRES:
        engine = make_engine(PG_URL)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            # The audit trail refuses TRUNCATE too; tests start afresh with triggers off for this statement.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return PG_URL
    path = tmp_path / "test.sqlite3"
    shutil.copy(migrated, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app(database_url):
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test", "TESTING": True})
    yield app
    app.extensions["onewindow.db"].kw["bind"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    """A session on the test database for engine-level tests (the test owns commits)."""
    with make_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def factory(session):
    return Factory(session)


_blank_databases = itertools.count(1)


def _server_admin():
    """An AUTOCOMMIT connection to the test server, to create and drop whole databases."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(os.environ["TEST_DATABASE_URL"], isolation_level="AUTOCOMMIT",
                         poolclass=NullPool).connect()


@pytest.fixture
def blank_database(tmp_path):
    """Make empty databases (a file, or a database of its own on the test server), dropped afterwards.

    Returns ``make(label)`` → URL: for tests that migrate or restore a whole database themselves
    without disturbing the schema the other tests share.
    """
    from sqlalchemy.engine import make_url

    made = []

    def make(label: str = "blank") -> str:
        if not ON_POSTGRES:
            return f"sqlite:///{tmp_path / f'{label}-{next(_blank_databases)}.sqlite3'}"
        base = make_url(os.environ["TEST_DATABASE_URL"])
        name = f"{base.database}_{label}_{WORKER or 'main'}_{next(_blank_databases)}"
        with _server_admin() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    yield make
    for name in made:
        with _server_admin() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# ------------------------------------------------------------------ pages in chromium

@pytest.fixture(scope="session")
def browser():
    """One chromium per test process, shared by every test that drives pages (tests/browser/,
    tests/security/): Playwright's sync API refuses a second instance in the same thread."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Trickle:
    """WSGI middleware for tests: each HTML answer's body goes out in 1 KiB pieces, ``pause`` seconds
    apart, so a page is shown in the browser (its address changed, its DOM begun) well before it is whole,
    as on a loaded machine. A test that reads the DOM right after a navigation it did not wait for then
    fails every time instead of once in many CI runs. (One that waits for an element near the top of a
    page and then reads all of it fails only sometimes: wait for the load before any read that does not
    retry.) BROWSER_TRICKLE=0.02 (the pause) turns it on; other answers pass untouched."""

    PIECE = 1024

    def __init__(self, app, pause: float):
        self.app, self.pause = app, pause

    def __call__(self, environ, start_response):
        html = False

        def start(status, headers, exc_info=None):
            nonlocal html
            html = any(k.lower() == "content-type" and v.startswith("text/html") for k, v in headers)
            return start_response(status, headers, exc_info)

        body = self.app(environ, start)
        try:
            for chunk in body:
                if not html:
                    yield chunk
                    continue
                for at in range(0, len(chunk), self.PIECE):
                    if at:
                        time.sleep(self.pause)
                    yield chunk[at:at + self.PIECE]
        finally:
            if hasattr(body, "close"):
                body.close()


@pytest.fixture
def live_server(app):
    """The test's app served by werkzeug in a thread; its base URL."""
    import threading

    from werkzeug.serving import make_server

    pause = os.environ.get("BROWSER_TRICKLE")
    server = make_server("127.0.0.1", 0, Trickle(app, float(pause)) if pause else app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
