"""Turning marshmallow's nested error messages into one flat map of field paths; the free-text rule."""
from __future__ import annotations

import marshmallow as ma
from marshmallow.exceptions import SCHEMA

from .errors import Invalid


def flatten(messages, prefix: str = "") -> dict[str, list[str]]:
    """``{"a": {"b": ["x"]}, "c": {0: {"d": ["y"]}}}`` → ``{"a.b": ["x"], "c.0.d": ["y"]}``."""
    if isinstance(messages, dict) and prefix and messages and set(messages) <= {"key", "value"}:
        # A Dict field reports {"key": [...], "value": [...]} for one entry: that entry is the field.
        return {prefix: [str(m) for part in messages.values() for m in _as_list(part)]}
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = "" if key == SCHEMA else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name or "_schema")
            flat.update(flatten(value, path))
        return flat
    if isinstance(messages, str):
        messages = [messages]
    return {prefix or "_schema": [str(m) for m in messages]}


def _as_list(part) -> list:
    if isinstance(part, dict):
        return [m for value in part.values() for m in _as_list(value)]
    return part if isinstance(part, list) else [part]


def load(schema: ma.Schema, data) -> dict:
    """Load ``data`` with ``schema`` or raise Invalid naming every bad field."""
    try:
        return schema.load(data)
    except ma.ValidationError as err:
        raise Invalid(flatten(err.messages)) from None


class StrictBoolean(ma.fields.Boolean):
    """JSON true or false only: "yes", 1 or "false" are mistakes worth reporting, not guessing."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def has_control_characters(text: str) -> bool:
    """Free text's rule: no control characters but tab, CR and LF (PostgreSQL refuses NUL outright)."""
    return any(ord(c) < 32 and c not in "\t\n\r" for c in text)
