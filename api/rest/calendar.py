"""The hall's calendar: the days an admin entered, and entering more."""
from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from workflow import calendar_days
from workflow.calendar import HALL_TZ
from workflow.clock import utcnow
from workflow.operations.calendar import import_calendar_csv, set_calendar_days

from ..auth import current_actor, require_staff
from ..database import session
from ..errors import body_media_type, documented
from .schemas.common import IDEMPOTENCY_KEY

blp = Blueprint("calendar", __name__, url_prefix="/api/v1/calendar",
                description="Holidays and adjusted working days (admins maintain them)")
blp.before_request(require_staff)


class DaySchema(ma.Schema):
    date = fields.Date(required=True, attribute="day", data_key="date")
    kind = fields.String(required=True, validate=validate.OneOf(calendar_days.KINDS))
    name = fields.String(load_default="", validate=validate.Length(max=64))


class DaysBody(ma.Schema):
    days = fields.List(fields.Nested(DaySchema), required=True, validate=validate.Length(1, 400))


class YearArgs(ma.Schema):
    year = fields.Integer(load_default=lambda: utcnow().astimezone(HALL_TZ).year,  # the hall's year, not the server's
                          validate=validate.Range(2000, 2100))


class DayInfoSchema(ma.Schema):
    date = fields.Date(attribute="day")
    kind = fields.String()
    name = fields.String()
    updated_by = fields.String()


class ImportResult(ma.Schema):
    days = fields.Integer(metadata={"description": "days written"})
    cases_rearmed = fields.Integer(metadata={"description": "running cases whose deadlines were recomputed"})


@blp.route("/days")
class Days(MethodView):
    @blp.arguments(YearArgs, location="query")
    @blp.response(200, DayInfoSchema(many=True))
    @documented(blp, 401)
    def get(self, args):
        """The days entered for a year (the package's days are not listed)."""
        return calendar_days.days_of_year(session(), args["year"])

    @blp.arguments(DaysBody)
    @blp.response(200, ImportResult)
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    @documented(blp, 400, 401, 403, 409, 413)
    def post(self, body):
        """Enter or replace days (admins); running cases' deadlines are recomputed."""
        written, rearmed = set_calendar_days(session(), current_actor(), body["days"])
        return {"days": written, "cases_rearmed": rearmed}


@blp.route("/import", methods=["POST"])
@blp.response(200, ImportResult)
@blp.doc(parameters=[IDEMPOTENCY_KEY],
         requestBody={"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}})
@documented(blp, 401, 403, 409, 413, 422)
@body_media_type("text/csv")
def import_csv():
    """Import the State Council's schedule as CSV (``date,kind,name``), all or nothing (admins)."""
    text = calendar_days.decode_csv(request.get_data())  # get_data(as_text=True) replaces bad bytes silently
    written, rearmed = import_calendar_csv(session(), current_actor(), text)
    return {"days": written, "cases_rearmed": rearmed}
