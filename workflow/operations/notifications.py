"""Supervisors acknowledge what the timers told them, and say why a breach happened."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ..actors import Actor, Role
from ..clock import utcnow
from ..errors import Forbidden, NotFound
from ..models import Notification
from ._common import require_text


def mark_read(session: Session, notification_id: int, actor: Actor, reason: str | None = None) -> Notification:
    """Mark one notification read, by a supervisor of its department or an admin; once is enough.

    ``reason`` records why it happened (a breach's cause, for the reports). It may come with the first
    acknowledgement or later, and replaces an earlier one; who read it first and when stay as they were.
    """
    notification = session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"no notification {notification_id}")
    if not (actor.role is Role.admin or actor.supervises(notification.department)):
        raise Forbidden("this notification is for another department's supervisors")
    if reason is not None:
        notification.reason = require_text(reason, "reason")
    if notification.read_at is None:
        notification.read_at, notification.read_by = utcnow(), actor.username
    session.flush()
    return notification
