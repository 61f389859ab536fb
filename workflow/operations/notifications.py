"""Supervisors acknowledge what the timers told them."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ..actors import Actor, Role
from ..clock import utcnow
from ..errors import Forbidden, NotFound
from ..models import Notification


def mark_read(session: Session, notification_id: int, actor: Actor) -> Notification:
    """Mark one notification read, by a supervisor of its department or an admin; once is enough."""
    notification = session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"no notification {notification_id}")
    if not (actor.role is Role.admin or actor.supervises(notification.department)):
        raise Forbidden("this notification is for another department's supervisors")
    if notification.read_at is None:
        notification.read_at, notification.read_by = utcnow(), actor.username
        session.flush()
    return notification
