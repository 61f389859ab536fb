"""The engine's messages in the page's language: one mechanism, each page its own wording.

The engine speaks plain English (``"is required"``, ``"must be at most 500 characters"``); a page
says the same thing in Chinese or English and in its own context ("write what the hall found" for a
reply, "choose a score" for a rating). Each page keeps a table of exact messages and, where the
engine puts a value in its message, regular-expression patterns; this module applies them.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping


def say(message: str, table: Mapping[str, object], patterns: Iterable = (),
        unknown: Callable[[str], str] | None = None) -> str:
    """``message`` as the page says it: from ``table``, else the first matching pattern (its named
    groups filled in), else ``unknown(message)`` — by default the message as it is."""
    if message in table:
        return str(table[message])
    for pattern, text in patterns:
        match = pattern.fullmatch(message)
        if match:
            return text % match.groupdict()
    return message if unknown is None else unknown(message)


def said(errors: Mapping[str, object], table: Mapping[str, object], patterns: Iterable = (),
         unknown: Callable[[str], str] | None = None) -> dict[str, list[str]]:
    """A 422's ``errors`` (field path → message or messages), each message said as the page says it."""
    patterns = tuple(patterns)
    return {field: [say(str(m), table, patterns, unknown) for m in (ms if isinstance(ms, list) else [ms])]
            for field, ms in errors.items()}
