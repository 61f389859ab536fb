"""Back up and restore the database, and prove a restore is whole before anyone uses it.

SQLite: the backup is SQLite's online backup API, copying every page in one step, so it reads one
snapshot while the app and the timer workers go on writing (WAL mode: readers never block writers).
The copy is written beside its destination and renamed into place once ``PRAGMA integrity_check``
passes, so a half-written backup never carries the backup's name. A restore stages the backup next
to the target, brings it to this code's schema, checks its integrity and verifies every audit chain
(``workflow.audit.verify``); only then are its pages written into the target, through SQLite's own
locking again (never by renaming files under an open database, which would pair the new file with
the old one's ``-wal``).

PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore`` when they are on PATH, guidance when they
are not. The dump reads the same exported snapshot as the counts printed beside it; a restore runs in
one transaction, then the same migration and verification run on the restored database.

A restore refuses a target that already holds tables unless forced: a backup is never written over a
hall's live data by a mistyped URL.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from . import audit
from .db import make_engine
from .errors import WorkflowError
from .models import Case, Event

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"

# Brings a restored database (given by its URL) to this code's schema; the command line passes Alembic.
Migrate = Callable[[str], None]


class BackupError(WorkflowError):
    """A backup or restore that cannot be done, or must not be used; the message says why."""


class ChainsBroken(BackupError):
    """The restored data's audit chains do not verify."""

    def __init__(self, detail: str, summary: Summary):
        super().__init__(detail)
        self.summary = summary


@dataclass(frozen=True)
class Summary:
    """What a database holds: its schema revision, row counts, and how its audit chains verify."""

    revision: str | None
    cases: int
    events: int
    states: dict[str, int]
    broken: list[audit.BrokenLink] = field(default_factory=list)
    verified: bool = True  # False when the chains were not checked (a backup's summary)

    @property
    def chains_verified(self) -> int:
        return self.cases - len(self.broken)

    def describe(self) -> str:
        line = f"{self.cases} cases, {self.events} events"
        if self.verified:
            line += f"; {self.chains_verified} of {self.cases} audit chains verify"
        return line


def dialect_of(url: str) -> str:
    return make_url(url).get_backend_name()


def summarize(bind: Engine | Connection, *, verify: bool = True) -> Summary:
    """Count the cases and events, by state, and verify every audit chain (unless told not to)."""
    with Session(bind) as session:
        revision = None
        if inspect(session.connection()).has_table("alembic_version"):
            revision = session.scalar(text("SELECT version_num FROM alembic_version"))
        states = {state.value: n for state, n in session.execute(
            select(Case.state, func.count()).group_by(Case.state))}
        events = session.scalar(select(func.count()).select_from(Event))
        broken = audit.verify(session) if verify else []
    return Summary(revision, sum(states.values()), events, states, broken, verify)


def user_tables(engine: Engine) -> list[str]:
    """The tables a database holds (outside the system schemas): empty means safe to restore into."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return list(conn.scalars(text(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")))
        return list(conn.scalars(text(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")))


def _refuse_non_empty(engine: Engine, url: str, force: bool) -> list[str]:
    tables = user_tables(engine)
    if tables and not force:
        raise BackupError(f"{make_url(url).render_as_string()} already holds {len(tables)} tables "
                          f"({', '.join(tables[:4])}{', …' if len(tables) > 4 else ''}): restore into an empty "
                          "database, or pass --force to replace its contents")
    return tables


def _check_append_only(engine: Engine, where: str) -> None:
    """Refuse restored data whose audit trail would accept an UPDATE: its triggers were lost on the way."""
    with engine.connect() as conn:
        first = conn.scalar(text("SELECT min(id) FROM events"))
        if first is None:
            return
        try:
            conn.execute(text("UPDATE events SET actor = actor WHERE id = :id"), {"id": first})
        except DBAPIError:
            return  # refused, as it must be
        finally:
            conn.rollback()
    raise BackupError(f"{where}: its audit trail accepts UPDATE (the append-only triggers are missing)")


def _check_chains(summary: Summary, where: str) -> Summary:
    if summary.broken:
        names = "; ".join(f"{link.case_no} at event #{link.seq}: {link.reason}" for link in summary.broken[:5])
        more = f" (and {len(summary.broken) - 5} more)" if len(summary.broken) > 5 else ""
        raise ChainsBroken(f"{where}: {len(summary.broken)} of {summary.cases} audit chains do not verify: "
                           f"{names}{more}", summary)
    return summary


# --- SQLite -----------------------------------------------------------------------------------------

def sqlite_path(url: str) -> Path:
    """The file of an SQLite URL; in-memory databases cannot be backed up or restored."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"{url} is not an SQLite database file")
    return Path(database).resolve()


def file_kind(path: Path) -> str:
    """``sqlite`` or ``pg_dump`` from the file's first bytes."""
    with open(path, "rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "pg_dump"
    raise BackupError(f"{path} is neither an SQLite database nor a pg_dump archive (custom format)")


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    uri = f"{path.as_uri()}?mode=ro" if read_only else path.as_uri()
    connection = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 30000")
    return connection


def _integrity(connection: sqlite3.Connection, what: str) -> None:
    problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"{what} is damaged: {'; '.join(problems[:5])}")


@contextmanager
def _sibling(path: Path, suffix: str):
    """A fresh file name beside ``path`` (same file system, so a rename is atomic); removed unless kept."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    os.unlink(name)  # SQLite creates it: an empty file would be taken for an empty database
    staged = Path(name)
    try:
        yield staged
    finally:
        for leftover in (staged, Path(f"{staged}-journal"), Path(f"{staged}-wal"), Path(f"{staged}-shm")):
            leftover.unlink(missing_ok=True)


def _copy_pages(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    # pages=-1: the whole database in one step, under one read transaction of the source, so the copy is
    # one snapshot; copying in slices would restart after every write of another connection.
    source.backup(target, pages=-1)


def backup_sqlite(url: str, target: Path, *, force: bool = False) -> Summary:
    """Copy the live SQLite database at ``url`` to ``target`` while others keep writing; count it."""
    source_path = sqlite_path(url)
    target = target.resolve()
    if not source_path.exists():
        raise BackupError(f"there is no database at {source_path}")
    if target == source_path:
        raise BackupError("the backup cannot be the database itself")
    if target.exists() and not force:
        raise BackupError(f"{target} exists: pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _sibling(target, ".partial") as staged:
        with closing(_connect(source_path)) as source, closing(_connect(staged)) as copy:
            _copy_pages(source, copy)
            # One self-contained file: no -wal beside it to lose when the backup is moved.
            copy.execute("PRAGMA journal_mode = DELETE")
            _integrity(copy, "the backup")
        # Not make_engine: its connections would turn the backup back to WAL mode.
        engine = create_engine(f"sqlite:///{staged}")
        try:
            summary = summarize(engine, verify=False)
        finally:
            engine.dispose()
        with open(staged, "rb") as file:
            os.fsync(file.fileno())
        os.replace(staged, target)
    return summary


def restore_sqlite(source: Path, url: str, *, force: bool = False, migrate: Migrate | None = None) -> Summary:
    """Restore an SQLite backup into the database at ``url`` once its every audit chain verifies."""
    if file_kind(source) != "sqlite":
        raise BackupError(f"{source} is a pg_dump archive: restore it into a PostgreSQL database")
    target_path = sqlite_path(url)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    new_file, restored = not target_path.exists(), False
    try:
        summary = _restore_sqlite(source, url, target_path, force, migrate)
        restored = True
        return summary
    finally:
        if new_file and not restored:  # leave no empty database behind a failed restore
            for made in (target_path, Path(f"{target_path}-wal"), Path(f"{target_path}-shm")):
                made.unlink(missing_ok=True)


def _restore_sqlite(source: Path, url: str, target_path: Path, force: bool, migrate: Migrate | None) -> Summary:
    target_engine = make_engine(url)
    try:
        _refuse_non_empty(target_engine, url, force)
    finally:
        target_engine.dispose()
    with _sibling(target_path, ".restoring") as staged:
        with closing(_connect(source.resolve(), read_only=True)) as backup, closing(_connect(staged)) as copy:
            _copy_pages(backup, copy)
            copy.execute("PRAGMA journal_mode = DELETE")
            _integrity(copy, f"the backup {source}")
        staged_url = f"sqlite:///{staged}"
        if migrate is not None:
            migrate(staged_url)
        engine = make_engine(staged_url)
        try:
            where = f"the backup {source} was not restored"
            summary = _check_chains(summarize(engine), where)
            _check_append_only(engine, where)
        finally:
            engine.dispose()
        # Written through SQLite's locking into the target's own file: connections elsewhere see either
        # the old database or the restored one, and the target's -wal stays the target's.
        with closing(_connect(staged)) as copy, closing(_connect(target_path)) as target:
            _copy_pages(copy, target)
            target.execute("PRAGMA journal_mode = WAL")
            _integrity(target, f"the restored database {target_path}")
    return _recount(url, summary)


def _recount(url: str, expected: Summary) -> Summary:
    engine = make_engine(url)
    try:
        found = summarize(engine, verify=False)
    finally:
        engine.dispose()
    if (found.cases, found.events, found.states) != (expected.cases, expected.events, expected.states):
        raise BackupError(f"the restored database holds {found.describe()}, the verified backup "
                          f"{expected.describe()}: something wrote to it during the restore")
    return expected


# --- PostgreSQL -------------------------------------------------------------------------------------

def pg_guidance(url: str, path: Path | str = "onewindow.dump") -> str:
    """How to back up and restore by hand when the PostgreSQL client tools are not on PATH."""
    where = make_url(url).render_as_string(hide_password=True).replace("postgresql+psycopg", "postgresql")
    return f"""\
pg_dump and pg_restore (the PostgreSQL client, Debian package postgresql-client, of the server's major
version or newer) are not on PATH. Install them, or back up and restore by hand:

  back up (one consistent snapshot while the hall keeps working; custom format, compressed):
    pg_dump --format=custom --file={path} "{where}"
  restore into a new, empty database, in one transaction:
    createdb onewindow_restored
    pg_restore --exit-on-error --single-transaction --no-owner --no-privileges \\
        --dbname=onewindow_restored {path}
  then check every audit chain before pointing the app at it:
    DATABASE_URL=postgresql+psycopg://…/onewindow_restored flask --app wsgi db upgrade
    DATABASE_URL=postgresql+psycopg://…/onewindow_restored flask --app wsgi audit verify"""


def pg_tool(name: str) -> str | None:
    return shutil.which(name)


def _libpq(url: str) -> tuple[str, dict]:
    """A libpq connection string for the client tools, and the environment carrying the password (never
    on the command line, where ``ps`` shows it)."""
    from psycopg.conninfo import make_conninfo

    parsed = make_url(url)
    params = {key: value for key, value in parsed.query.items() if isinstance(value, str)}
    for key, value in (("host", parsed.host), ("port", parsed.port), ("user", parsed.username),
                       ("dbname", parsed.database)):
        if value is not None:
            params[key] = str(value)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    return make_conninfo("", **params), env


def _run(command: list[str], env: dict, what: str) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{what} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def backup_postgresql(url: str, target: Path, *, force: bool = False) -> Summary:
    """``pg_dump --format=custom`` of the database at ``url`` into ``target``, counted in its own snapshot."""
    pg_dump, pg_restore = pg_tool("pg_dump"), pg_tool("pg_restore")
    if not (pg_dump and pg_restore):
        raise BackupError(pg_guidance(url, target))
    target = target.resolve()
    if target.exists() and not force:
        raise BackupError(f"{target} exists: pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    conninfo, env = _libpq(url)
    engine = make_engine(url)
    try:
        snapshot_reader = engine.connect().execution_options(isolation_level="REPEATABLE READ",
                                                             postgresql_readonly=True)
        with snapshot_reader as conn, _sibling(target, ".partial") as staged:
            # Export this transaction's snapshot: pg_dump reads exactly what the counts read.
            snapshot = conn.scalar(text("SELECT pg_export_snapshot()"))
            summary = summarize(conn, verify=False)
            _run([pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={staged}", f"--dbname={conninfo}"],
                 env, "pg_dump")
            conn.rollback()
            _run([pg_restore, "--list", str(staged)], env, "reading the new dump back (pg_restore --list)")
            with open(staged, "rb") as file:
                os.fsync(file.fileno())
            os.replace(staged, target)
    finally:
        engine.dispose()
    return summary


def restore_postgresql(source: Path, url: str, *, force: bool = False, migrate: Migrate | None = None) -> Summary:
    """``pg_restore`` a custom-format dump into the database at ``url``, in one transaction, then verify
    every audit chain there. The target must exist (``createdb``) and be empty unless forced."""
    if file_kind(source) != "pg_dump":
        raise BackupError(f"{source} is an SQLite database: restore it into an SQLite database file")
    pg_restore = pg_tool("pg_restore")
    if not pg_restore:
        raise BackupError(pg_guidance(url, source))
    engine = make_engine(url)
    try:
        tables = _refuse_non_empty(engine, url, force)
        conninfo, env = _libpq(url)
        command = [pg_restore, "--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges"]
        if tables:  # forced: drop what the dump brings before making it again, in the same transaction
            command += ["--clean", "--if-exists"]
        _run([*command, f"--dbname={conninfo}", str(source.resolve())], env, "pg_restore")
        if migrate is not None:
            migrate(url)
        where = f"{make_url(url).render_as_string()} was restored but must not be used"
        summary = _check_chains(summarize(engine), where)
        _check_append_only(engine, where)
        return summary
    finally:
        engine.dispose()


def backup(url: str, target: Path, *, force: bool = False) -> Summary:
    """Back up the database at ``url`` into the file ``target``."""
    if dialect_of(url) == "sqlite":
        return backup_sqlite(url, target, force=force)
    if dialect_of(url) == "postgresql":
        return backup_postgresql(url, target, force=force)
    raise BackupError(f"cannot back up a {dialect_of(url)} database")


def restore(source: Path, url: str, *, force: bool = False, migrate: Migrate | None = None) -> Summary:
    """Restore the backup file ``source`` into the database at ``url``; raise ``ChainsBroken`` unless every
    audit chain of the restored data verifies."""
    if not source.is_file():
        raise BackupError(f"there is no backup at {source}")
    if dialect_of(url) == "sqlite":
        return restore_sqlite(source, url, force=force, migrate=migrate)
    if dialect_of(url) == "postgresql":
        return restore_postgresql(source, url, force=force, migrate=migrate)
    raise BackupError(f"cannot restore into a {dialect_of(url)} database")
