"""The administrators' log: who created, disabled, enabled an account, reset its password, issued
or revoked its tokens, and when.

Case actions have their own hash-chained trail (``events``); these actions change no case, so they
are kept here, one row each, never updated.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..db import Base, JSONType, UTCDateTime


class AdminEvent(Base):
    __tablename__ = "admin_events"
    __table_args__ = (Index("ix_admin_events_subject_at", "subject", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # a username, or "cli" for the command line
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(64))  # the username acted on
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
