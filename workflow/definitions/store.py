"""Published definitions in the database: the current version, any earlier one, publishing."""
from __future__ import annotations

import json
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import DefinitionError
from ..models import ProcessDefinition
from . import DEFAULT_NAME, Definition, packaged, parse


@lru_cache(maxsize=64)
def _parsed(name: str, version: int, document_json: str) -> Definition:
    return parse(json.loads(document_json))


def _load(row: ProcessDefinition) -> Definition:
    # Published versions never change, so the parsed form is cached per process.
    return _parsed(row.name, row.version, json.dumps(row.document, sort_keys=True))


def current(session: Session, name: str = DEFAULT_NAME) -> Definition:
    """The newest published version; the packaged default is published on first use."""
    row = session.scalar(
        select(ProcessDefinition).where(ProcessDefinition.name == name)
        .order_by(ProcessDefinition.version.desc()).limit(1)
    )
    if row is None:
        return publish(session, packaged(name), published_by="system", race_ok=True)
    return _load(row)


def get(session: Session, name: str, version: int) -> Definition:
    """A specific published version (the one a case was accepted under).

    Remembered for the session's lifetime: a published version never changes, and a timer sweep or
    a case list asks for the same one many times.
    """
    remembered = session.info.setdefault("definitions", {})
    key = (name, version)
    if key not in remembered:
        row = session.scalar(
            select(ProcessDefinition).where(ProcessDefinition.name == name, ProcessDefinition.version == version)
        )
        if row is None:
            raise LookupError(f"definition {name} v{version} is not published")
        remembered[key] = _load(row)
    return remembered[key]


def publish(session: Session, document: dict, published_by: str, race_ok: bool = False) -> Definition:
    """Validate and publish a new version; it must be newer than every published one."""
    definition = parse(document)
    newest = session.scalar(
        select(func.max(ProcessDefinition.version)).where(ProcessDefinition.name == definition.name)
    )
    if newest is not None and definition.version <= newest:
        raise DefinitionError(f"version {definition.version} is not newer than published version {newest}")
    try:
        with session.begin_nested():
            session.add(ProcessDefinition(name=definition.name, version=definition.version,
                                          document=document, published_by=published_by))
    except IntegrityError:
        if not race_ok:
            raise DefinitionError(f"version {definition.version} was published meanwhile") from None
        return get(session, definition.name, definition.version)
    return definition


def published(session: Session) -> list[ProcessDefinition]:
    """Every published version, oldest first."""
    return list(session.scalars(select(ProcessDefinition).order_by(ProcessDefinition.name,
                                                                   ProcessDefinition.version)))
