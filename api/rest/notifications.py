"""Notifications for supervisors: SLA warnings and breaches of their department."""
from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from workflow import operations as ops, queries
from workflow.models import Case

from ..auth import current_actor, require_staff
from ..database import session
from ..errors import documented
from .schemas.common import IDEMPOTENCY_KEY, HallDateTime

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications",
                description="What supervisors are told: SLA warnings and breaches")
blp.before_request(require_staff)


class NotificationSchema(ma.Schema):
    id = fields.Integer()
    case_no = fields.String()
    subject = fields.String(metadata={"description": '"case" or a step key'})
    kind = fields.String()
    message = fields.String()
    created_at = HallDateTime()
    read_at = HallDateTime(allow_none=True)
    read_by = fields.String(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "Why it happened, as a supervisor recorded it"})


class ReadBody(ma.Schema):
    reason = fields.String(validate=validate.Length(max=500),
                           metadata={"description": "Optional: why the breach happened (shown in the reports); "
                                                    "replaces an earlier reason"})


def _dump(notification, case_no: str) -> dict:
    return dict(id=notification.id, case_no=case_no, subject=notification.subject, kind=notification.kind,
                message=notification.message, created_at=notification.created_at, read_at=notification.read_at,
                read_by=notification.read_by, reason=notification.reason)


@blp.route("")
class Notifications(MethodView):
    @blp.response(200, NotificationSchema(many=True))
    @documented(blp, 401, 403)
    def get(self):
        """The newest 100 notifications of the caller's department (all departments for admins)."""
        rows = queries.notifications_for(session(), current_actor())
        return [_dump(n, no) for n, no in rows]


# Ids beyond the databases' 64-bit integers are no notification (404), not an overflow in the query (500).
@blp.route(f"/<int(min=1, max={2**63 - 1}):notification_id>/read", methods=["POST"])
@blp.arguments(ReadBody, required=False)
@blp.response(200, NotificationSchema)
@blp.doc(parameters=[IDEMPOTENCY_KEY])
@documented(blp, 400, 401, 403, 404, 409, 413)
def read(body, notification_id):
    """Mark a notification read, optionally saying why it happened (a supervisor of its department, or an admin)."""
    db = session()
    notification = ops.mark_read(db, notification_id, current_actor(), reason=body.get("reason"))
    return _dump(notification, db.get(Case, notification.case_id).case_no)
