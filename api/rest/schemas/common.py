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
    version = ma.fields.Integer(metadata={"description": "The case's current version, on 412"})
    valid = ma.fields.Boolean(metadata={"description": "false, on 404 for a receipt's token"})
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()),
                            metadata={"description": "Messages per field path, on 422"})


# Request headers the API reads, for the OpenAPI document (contract section 4).
IDEMPOTENCY_KEY = {"in": "header", "name": "Idempotency-Key", "required": False,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                   "description": "A repeat with the same key (same user, 24 hours) returns the first response "
                                  "and changes nothing; the key used for another request is a 422"}
IF_MATCH = {"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
            "description": 'The case\'s version as the caller saw it ("5", from the ETag); 412 when it has moved on'}
