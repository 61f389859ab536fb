"""Migrations: up from nothing to the models' exact schema, down to nothing, and one revision at a
time down and up again with a hall's data in the tables. SQLite, or PostgreSQL when TEST_DATABASE_URL
is set (in databases made here, so no other test's schema moves).
"""
from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher, profiles
from sqlalchemy import MetaData, func, inspect, select, text

from api import create_app
from api.cli import alembic_config
from workflow import accounts, audit, demo
from workflow.db import Base, make_engine, make_sessionmaker
from workflow.actors import Actor, Role
from workflow.models import AdminEvent, Case, Event, Step, Suspension, Timer, User

from .conftest import ON_POSTGRES

# What the migrations add beyond the models: the audit trail refuses UPDATE, DELETE (and TRUNCATE).
TRIGGERS = {"events_no_update", "events_no_truncate"} if ON_POSTGRES else {"events_no_update", "events_no_delete"}
# The hall's data a downgrade must keep while its table exists.
COUNTED = (Case, Step, Event, User, AdminEvent, Timer, Suspension)


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch):
    """The demo's eleven staff act on cases here, they never sign in: argon2's cheapest profile."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@contextmanager
def migrations(url: str):
    """Alembic's configuration for the database at ``url``, as `flask db …` builds it."""
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test", "TESTING": True})
    with app.app_context():
        yield alembic_config()
    app.extensions["onewindow.db"].kw["bind"].dispose()


def revisions(config) -> list[str]:
    """Every revision, oldest first."""
    return [script.revision for script in reversed(list(ScriptDirectory.from_config(config).walk_revisions()))]


def current(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def models_for(dialect: str) -> MetaData:
    """The models' tables, without the indexes made only on another database (``ddl_if``)."""
    metadata = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        elsewhere = {index.name for index in table.indexes  # Index.ddl_if(dialect=…), read back (to_metadata drops it)
                     if index._ddl_if is not None and index._ddl_if.dialect not in (None, dialect)}
        copy = table.to_metadata(metadata)
        for index in [index for index in copy.indexes if index.name in elsewhere]:
            copy.indexes.discard(index)
    return metadata


# Alembic cannot compare an expression index with its reflection (it reads `case_no COLLATE "C"` back
# as the column case_no); the catalogue comparison below checks it, by its definition in pg_indexes.
EXPRESSION_INDEXES = {"ix_cases_case_no_c"}


def model_differences(url: str) -> list:
    """What `alembic check` (autogenerate) would change to make the database match the models."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "compare_server_default": True,
                "include_object": lambda obj, name, type_, reflected, other: name not in EXPRESSION_INDEXES,
            })
            return compare_metadata(context, models_for(conn.dialect.name))
    finally:
        engine.dispose()


def catalogue(url: str) -> dict:
    """The schema as the database describes it: columns, keys, constraints, indexes with their partial
    conditions and included columns, and on PostgreSQL every index's and constraint's definition."""
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        found = {}
        for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
            found[table] = {
                "columns": {c["name"]: (str(c["type"]), c["nullable"], str(c.get("default")))
                            for c in inspector.get_columns(table)},
                "primary key": inspector.get_pk_constraint(table),
                "foreign keys": sorted(json.dumps(fk, sort_keys=True) for fk in inspector.get_foreign_keys(table)),
                "unique": sorted(json.dumps(u, sort_keys=True) for u in inspector.get_unique_constraints(table)),
                "checks": sorted((c["name"], c["sqltext"]) for c in inspector.get_check_constraints(table)),
                "indexes": sorted(json.dumps(i, sort_keys=True, default=str) for i in inspector.get_indexes(table)),
            }
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                found["pg_indexes"] = sorted(conn.scalars(text(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'alembic_version'")))
                found["pg_constraint"] = sorted(conn.execute(text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'alembic_version'")).all())
        return found
    finally:
        engine.dispose()


def triggers(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                return set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            return set(conn.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
    finally:
        engine.dispose()


def leftovers(url: str) -> dict[str, list]:
    """Everything in the database but Alembic's own table (and extensions: see the d7e1a0c4b9f2 downgrade)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                return {"objects": [tuple(r) for r in conn.execute(text(
                    "SELECT type, name FROM sqlite_master WHERE name NOT IN "
                    "('alembic_version', 'sqlite_autoindex_alembic_version_1') ORDER BY name"))]}
            queries = {
                "relations": "SELECT relkind::text || ' ' || relname FROM pg_class WHERE relnamespace = "
                             "'public'::regnamespace AND relname NOT IN ('alembic_version', 'alembic_version_pkc')",
                "functions": "SELECT proname FROM pg_proc p WHERE pronamespace = 'public'::regnamespace AND NOT EXISTS "
                             "(SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
                "types": "SELECT typname FROM pg_type t WHERE typnamespace = 'public'::regnamespace AND typtype IN "
                         "('e', 'd', 'r', 'm') AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid "
                         "AND d.deptype = 'e')",
                "triggers": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
            }
            return {what: sorted(conn.scalars(text(sql))) for what, sql in queries.items()}
    finally:
        engine.dispose()


def nothing_left(url: str) -> dict[str, list]:
    return {what: [] for what in leftovers(url)}


def counts(url: str, tables=None) -> dict[str, int]:
    """Rows of the hall's tables that exist (of ``tables`` only, when given)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return {m.__tablename__: conn.scalar(select(func.count()).select_from(m.__table__))
                    for m in COUNTED if m.__tablename__ in present and (tables is None or m.__tablename__ in tables)}
    finally:
        engine.dispose()


def seed(url: str) -> None:
    """The demo hall: eleven staff and seven cases in every state, with their audit chains, timers and a
    suspension; and one account made by an administrator (the administrators' log)."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            demo.seed(session, "demo-pass-2026")
            admin = Actor(user_id=None, username="cli", role=Role.admin, department=None)
            accounts.create_user(session, "tax2", "demo-pass-2026", "clerk", "taxation", by=admin)
            session.commit()
    finally:
        engine.dispose()


def chains_verify(url: str) -> list:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return audit.verify(session)
    finally:
        engine.dispose()


@pytest.fixture
def reference(blank_database):
    """A database made from the models by ``create_all`` (what the migrations must arrive at)."""
    url = blank_database("migrations")
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION pg_trgm"))
    Base.metadata.create_all(engine)
    engine.dispose()
    return catalogue(url)


def test_upgrade_from_nothing_arrives_at_the_models_schema(blank_database, reference):
    url = blank_database("migrations")
    with migrations(url) as config:
        command.upgrade(config, "head")
        head = revisions(config)[-1]
    assert current(url) == head
    assert model_differences(url) == []
    assert catalogue(url) == reference
    assert triggers(url) == TRIGGERS


def test_downgrade_to_nothing_leaves_only_alembic_version_and_upgrade_comes_back(blank_database, reference):
    url = blank_database("migrations")
    with migrations(url) as config:
        command.upgrade(config, "head")
        seed(url)
        command.downgrade(config, "base")
        assert current(url) is None
        assert leftovers(url) == nothing_left(url)
        command.upgrade(config, "head")
    assert model_differences(url) == []
    assert catalogue(url) == reference
    assert triggers(url) == TRIGGERS
    seed(url)  # the hall works again
    assert counts(url)["cases"] == 7 and counts(url)["admin_events"] == 1 and chains_verify(url) == []


@pytest.mark.slow
def test_every_revision_goes_down_and_up_again_with_the_halls_data(blank_database, reference):
    url = blank_database("migrations")
    with migrations(url) as config:
        history = revisions(config)
        for revision in history:  # up from nothing, one at a time
            command.upgrade(config, revision)
            assert current(url) == revision
        seed(url)
        at_head = kept = counts(url)
        assert all(at_head.values()), at_head
        for older, newer in reversed(list(zip(history, history[1:]))):
            command.downgrade(config, older)
            assert current(url) == older
            # The rows of a table the downgrade drops go with it; every other table keeps all of its.
            still = counts(url, kept)
            assert still == {table: kept[table] for table in still}, f"downgrading {newer} lost rows"
            kept = still
            command.upgrade(config, newer)  # and up again over the downgraded data
            assert counts(url, kept) == kept, f"upgrading to {newer} lost rows"
            command.downgrade(config, older)
        assert current(url) == history[0]
        for revision in history[1:]:  # up again from the first revision, with the data
            command.upgrade(config, revision)
        assert counts(url, kept) == kept
        assert chains_verify(url) == [], "every chain survives the round trip"
        assert model_differences(url) == [] and catalogue(url) == reference
        command.downgrade(config, "base")
        assert leftovers(url) == nothing_left(url)
    print(f"\n{len(history)} revisions: {3 * (len(history) - 1) + 2 * len(history)} migrations run over "
          f"{sum(at_head.values())} rows ({at_head}); kept through every step: {kept}")
