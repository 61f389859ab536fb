"""``flask --app wsgi …`` commands (contract section 3). Each command owns its transaction."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from workflow import accounts, audit, demo as demo_data
from workflow.actors import Role
from workflow.errors import WorkflowError

from .database import Database, session

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


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
        user = accounts.create_user(db, name, password, role, department, display_name)
    click.echo(f"created {user.role.value} {user.username}" + (f" ({user.department})" if user.department else ""))


tokens_cli = AppGroup("tokens", help="API tokens.")


@tokens_cli.command("create")
@click.argument("name")
@click.option("--label", default="cli")
def tokens_create(name, label):
    """Print a new API token for NAME (the last line of output)."""
    with unit_of_work() as db:
        token = accounts.create_token(db, name, label)
    click.echo(token)


audit_cli = AppGroup("audit", help="The audit trail.")


@audit_cli.command("verify")
def audit_verify():
    """Check every case's hash chain; name the first event that does not match."""
    broken = audit.verify(session())
    for link in broken:
        click.echo(f"case {link.case_no}: event {link.event_id} (#{link.seq}) {link.reason}", err=True)
    if broken:
        sys.exit(1)
    click.echo("every chain verifies")


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
    for group in (db_cli, users_cli, tokens_cli, audit_cli, demo):
        app.cli.add_command(group)
