"""Notifications for supervisors: SLA warnings and breaches of their department."""
from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from workflow import queries

from ..auth import current_actor, require_staff
from ..database import session
from .schemas.common import HallDateTime

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


@blp.route("")
class Notifications(MethodView):
    @blp.response(200, NotificationSchema(many=True))
    def get(self):
        """The newest 100 notifications of the caller's department (all departments for admins)."""
        rows = queries.notifications_for(session(), current_actor())
        return [dict(id=n.id, case_no=no, subject=n.subject, kind=n.kind, message=n.message,
                     created_at=n.created_at, read_at=n.read_at) for n, no in rows]
