"""``flask --app wsgi …`` commands (contract section 3). Each command owns its transaction."""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import click
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.util import CommandError
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from workflow import accounts, audit, backup as backups, demo as demo_data, reports, timers
from workflow.calendar_days import calendar_for, decode_csv
from workflow.clock import utcnow
from workflow.db import make_engine
from workflow.definitions import store
from workflow.actors import Actor, Role
from workflow.errors import WorkflowError
from workflow.operations.calendar import import_calendar_csv

from .database import Database, session

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Who the administrators' log and the calendar's days name for changes made from the command line.
CLI_ADMIN = Actor(user_id=None, username="cli", role=Role.admin, department=None)


@contextmanager
def unit_of_work():
    """Commit once at the end of a command, or roll back and report a refusal cleanly."""
    db = session()
    try:
        yield db
        db.commit()
    except WorkflowError as error:
        db.rollback()
        details = getattr(error, "errors", None)
        message = error.detail + (f" {details}" if details else "")
        raise click.ClickException(message) from None


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["engine"] = Database.engine(current_app)
    return config


db_cli = AppGroup("db", help="Database schema (Alembic migrations).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Create or migrate the schema."""
    alembic_command.upgrade(alembic_config(), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision):
    """Migrate the schema back to REVISION (e.g. -1 or base)."""
    alembic_command.downgrade(alembic_config(), revision)


@db_cli.command("current")
def db_current():
    """Show the schema's revision."""
    alembic_command.current(alembic_config())


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate", is_flag=True)
def db_revision(message, autogenerate):
    """Write a new migration file to review."""
    alembic_command.revision(alembic_config(), message=message, autogenerate=autogenerate)


users_cli = AppGroup("users", help="Staff accounts.")


@users_cli.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--department", default=None)
@click.option("--password", required=True)
@click.option("--display-name", default=None)
def users_create(name, role, department, password, display_name):
    """Create a user."""
    with unit_of_work() as db:
        user = accounts.create_user(db, name, password, role, department, display_name, by=CLI_ADMIN)
    click.echo(f"created {user.role.value} {user.username}" + (f" ({user.department})" if user.department else ""))


@users_cli.command("disable")
@click.argument("name")
def users_disable(name):
    """Disable a user: signed out on the next request, tokens refused, no sign-in."""
    with unit_of_work() as db:
        accounts.disable_user(db, CLI_ADMIN, name)
    click.echo(f"disabled {name}")


@users_cli.command("enable")
@click.argument("name")
def users_enable(name):
    """Enable a disabled user again (its unrevoked tokens work again)."""
    with unit_of_work() as db:
        accounts.enable_user(db, CLI_ADMIN, name)
    click.echo(f"enabled {name}")


@users_cli.command("reset-password")
@click.argument("name")
@click.option("--password", prompt="New password", hide_input=True, confirmation_prompt=True,
              help="The new password (asked for, unechoed, when left out)")
def users_reset_password(name, password):
    """Set a new password for NAME and lift any lockout."""
    with unit_of_work() as db:
        accounts.reset_password(db, CLI_ADMIN, name, password)
    click.echo(f"reset the password of {name}")


tokens_cli = AppGroup("tokens", help="API tokens.")


@tokens_cli.command("create")
@click.argument("name")
@click.option("--label", default="cli")
def tokens_create(name, label):
    """Print a new API token for NAME (the last line of output)."""
    with unit_of_work() as db:
        token = accounts.create_token(db, name, label, by=CLI_ADMIN)
    click.echo(token)


@tokens_cli.command("list")
@click.argument("name")
def tokens_list(name):
    """List NAME's tokens, newest first: id, created, revoked or in use, label."""
    with unit_of_work() as db:
        tokens = accounts.tokens_of(db, name)
    for token in tokens:
        state = f"revoked {_iso(token.revoked_at)}" if token.revoked_at else "in use"
        click.echo(f"{token.id}  created {_iso(token.created_at)}  {state}  {token.label}".rstrip())


@tokens_cli.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
def tokens_revoke(token_id):
    """Revoke the token with this ID (see `tokens list`); it stops working at once."""
    with unit_of_work() as db:
        token = accounts.revoke_token_by_id(db, CLI_ADMIN, token_id)
        owner = token.user.username
    click.echo(f"revoked token {token_id} of {owner}")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


audit_cli = AppGroup("audit", help="The audit trail.")


@audit_cli.command("verify")
def audit_verify():
    """Check every case's hash chain; name the first event that does not match."""
    broken = audit.verify(session())
    for link in broken:
        where = f"event {link.event_id} (#{link.seq})" if link.event_id else f"after event #{link.seq - 1}"
        click.echo(f"case {link.case_no}: {where} {link.reason}", err=True)
    if broken:
        sys.exit(1)
    click.echo("every chain verifies")


timers_cli = AppGroup("timers", help="SLA timers: warnings and breaches.")


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise click.BadParameter(f"{text!r} has no UTC offset (e.g. 2026-11-23T10:00:00+08:00)")
    return value


def sweep_once(now: datetime | None = None) -> int:
    """Fire every due timer, one committed batch at a time; return how many fired."""
    db, total = session(), 0
    while True:
        fired = timers.fire_due(db, now or utcnow())
        db.commit()
        if not fired:
            return total
        total += fired


@timers_cli.command("sweep")
@click.option("--now", "now_text", default=None, help="Pretend it is this instant (ISO 8601 with offset)")
def timers_sweep(now_text):
    """Fire every due warning and breach once, then exit; print how many fired."""
    click.echo(sweep_once(_instant(now_text)))


def roll_up_once(now: datetime | None = None) -> int:
    """Count the finished hall days into the elapsed report's roll-up; the days rolled (0 when up to
    date, or when another worker rolled them at the same moment)."""
    db = session()
    try:
        days = reports.roll_up(db, now or utcnow())
        db.commit()
    except IntegrityError:
        db.rollback()
        return 0
    return days


# How often the worker looks for a finished day to roll up (a query when there is none).
ROLL_UP_EVERY = 300.0


@timers_cli.command("run")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between sweeps")
def timers_run(interval):
    """The timer worker: sweep forever (several may run at once on PostgreSQL), and roll each
    finished day up for the elapsed report."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"timer worker {os.getpid()} sweeping every {interval:g} s")
    next_roll_up = time.monotonic()
    while not stop.is_set():
        try:
            fired = sweep_once()
        except Exception:  # noqa: BLE001 - a worker must outlive one bad sweep; the next retries it
            session().rollback()
            current_app.logger.exception("timer sweep failed; retrying in %s s", interval)
            fired = 0
        if fired:
            click.echo(f"{utcnow().isoformat(timespec='seconds')} fired {fired}")
        if time.monotonic() >= next_roll_up:
            next_roll_up = time.monotonic() + ROLL_UP_EVERY
            try:
                if rolled := roll_up_once():
                    click.echo(f"{utcnow().isoformat(timespec='seconds')} rolled up {rolled} days")
            except Exception:  # noqa: BLE001 - the report reads unrolled days from the steps meanwhile
                session().rollback()
                current_app.logger.exception("roll-up failed; retrying in %s s", ROLL_UP_EVERY)
        stop.wait(interval)


reports_cli = AppGroup("reports", help="The supervisors' and admins' reports.")


@reports_cli.command("rollup")
@click.option("--now", "now_text", default=None, help="Pretend it is this instant (ISO 8601 with offset)")
def reports_rollup(now_text):
    """Roll every finished hall day up for the elapsed report (the timer worker does it too); print
    how many days were rolled."""
    click.echo(roll_up_once(_instant(now_text)))


calendar_cli = AppGroup("calendar", help="The hall's business calendar.")


@calendar_cli.command("add")
@click.argument("start")
@click.argument("minutes", type=float)
def calendar_add(start, minutes):
    """Print START plus MINUTES working minutes (ISO 8601)."""
    if not 0 <= minutes <= 10_000_000:
        raise click.BadParameter("MINUTES must be between 0 and 10 000 000")
    result = calendar_for(session()).add_minutes(_instant(start), minutes)
    click.echo(result.value.isoformat())
    if not result.confirmed:
        click.echo("calendar_confirmed: false", err=True)


@calendar_cli.command("between")
@click.argument("a")
@click.argument("b")
def calendar_between(a, b):
    """Print the working minutes between two instants."""
    result = calendar_for(session()).between(_instant(a), _instant(b))
    minutes = Decimal(result.value // timedelta(microseconds=1)) / 60_000_000
    click.echo(f"{minutes.normalize():f}")  # exact: 1780800, 304140.5, never 1.7808e+06
    if not result.confirmed:
        click.echo("calendar_confirmed: false", err=True)


@calendar_cli.command("import")
@click.argument("file", type=click.File("rb"))
def calendar_import(file):
    """Load holidays and adjusted working days (CSV: date,kind,name; kind holiday or workday)."""
    with unit_of_work() as db:
        # Read as bytes: a file that is not UTF-8 is refused by name, not with a UnicodeDecodeError traceback.
        written, rearmed = import_calendar_csv(db, CLI_ADMIN, decode_csv(file.read()))
    click.echo(f"imported {written} days; recomputed the timers of {rearmed} running cases")


definitions_cli = AppGroup("definitions", help="Process definitions (versioned data).")


@definitions_cli.command("list")
def definitions_list():
    """List the published versions."""
    for row in store.published(session()):
        click.echo(f"{row.name} v{row.version}  published {row.published_at.isoformat(timespec='seconds')} "
                   f"by {row.published_by}")


@definitions_cli.command("publish")
@click.argument("file", type=click.File("r", encoding="utf-8"))
def definitions_publish(file):
    """Validate and publish a definition (JSON); cases accepted from now on run under it."""
    try:
        document = json.load(file)
    except json.JSONDecodeError as error:
        raise click.ClickException(f"{file.name} is not JSON: {error}") from None
    with unit_of_work() as db:
        definition = store.publish(db, document, published_by="cli")
    click.echo(f"published {definition.name} v{definition.version} with steps "
               f"{', '.join(s.key for s in definition.steps)}")


def _summary_lines(summary: backups.Summary) -> list[str]:
    states = ", ".join(f"{state} {count}" for state, count in sorted(summary.states.items()))
    return [f"cases: {summary.cases}" + (f" ({states})" if states else ""), f"events: {summary.events}"] + (
        [f"chains verified: {summary.chains_verified} of {summary.cases}"] if summary.verified else [])


@click.command("backup")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists")
def backup(path, force):
    """Back up the database to PATH while the hall keeps working (SQLite: online backup; PostgreSQL:
    pg_dump --format=custom, or how to run it when it is not installed)."""
    url = current_app.config["DATABASE_URL"]
    try:
        summary = backups.backup(url, path, force=force)
    except backups.BackupError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"backed up to {path.resolve()} ({path.stat().st_size} bytes, schema {summary.revision})")
    for line in _summary_lines(summary):
        click.echo(line)


def _migrate_to_head(url: str) -> None:
    """Bring a restored database to this code's schema (a backup from before an upgrade)."""
    engine = make_engine(url)
    config = alembic_config()
    config.attributes["engine"] = engine
    try:
        alembic_command.upgrade(config, "head")
    except CommandError as error:  # a revision this code does not know: made by a newer version
        raise backups.BackupError(f"the backup's schema is not one this version knows ({error}): restore it "
                                  "with the version of OneWindow that made it") from None
    finally:
        engine.dispose()


@click.command("restore")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "target_url", default=None, metavar="URL",
              help="The database to restore into (SQLAlchemy URL); default: the app's DATABASE_URL")
@click.option("--force", is_flag=True, help="Replace the contents of a database that already has tables")
def restore(path, target_url, force):
    """Restore the backup PATH into an empty database, migrate it to this version's schema and verify every
    audit chain; exit 1 when a chain does not verify."""
    url = target_url or current_app.config["DATABASE_URL"]
    Database.engine(current_app).dispose()  # hold no connection to a database about to be replaced
    try:
        summary = backups.restore(path, url, force=force, migrate=_migrate_to_head)
    except backups.ChainsBroken as error:
        for line in _summary_lines(error.summary):
            click.echo(line, err=True)
        click.echo(f"Error: {error.detail}", err=True)
        sys.exit(1)
    except backups.BackupError as error:
        raise click.ClickException(error.detail) from None
    click.echo(f"restored {path} into {make_url(url).render_as_string()} (schema {summary.revision})")
    for line in _summary_lines(summary):
        click.echo(line)


@click.command("demo")
@with_appcontext
@click.option("--password", default="demo-pass-2026", show_default=True, help="Password of every demo user")
def demo(password):
    """Seed demo users (one per department and role) and cases in several states."""
    with unit_of_work() as db:
        report = demo_data.seed(db, password)
    for line in report:
        click.echo(line)


def register(app: Flask) -> None:
    for group in (db_cli, users_cli, tokens_cli, audit_cli, timers_cli, reports_cli, calendar_cli, definitions_cli,
                  demo, backup, restore):
        app.cli.add_command(group)
