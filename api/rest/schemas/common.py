"""Fields shared by the API's schemas."""
import marshmallow as ma

from workflow.calendar import HALL_TZ


class HallDateTime(ma.fields.DateTime):
    """Stored in UTC, shown in the hall's time zone: ISO 8601 with its +08:00 offset."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(HALL_TZ).isoformat()


class ReasonSchema(ma.Schema):
    reason = ma.fields.String(required=True, metadata={"description": "Why; shown in the audit trail"})


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details."""

    type = ma.fields.String()
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    state = ma.fields.String(metadata={"description": "The current state, on 409 for an illegal action"})
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()),
                            metadata={"description": "Messages per field path, on 422"})
