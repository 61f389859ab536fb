"""The one source of the current time.

Always Python's clock, never the database's ``now()``, so that tests can travel in time
(contract section 2).
"""
from datetime import datetime, timezone


def utcnow() -> datetime:
    """Return the current instant as an aware UTC datetime."""
    return datetime.now(timezone.utc)
