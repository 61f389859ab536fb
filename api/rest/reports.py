"""Reports for supervisors and admins: elapsed working time, breaches and their reasons, ratings."""
from __future__ import annotations

from datetime import timedelta

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from workflow import reports
from workflow.calendar import HALL_TZ
from workflow.clock import utcnow

from ..auth import current_actor, require_staff
from ..database import session
from ..errors import documented
from .schemas.common import HallDateTime

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports",
                description="Elapsed working time, breaches and ratings (supervisors and admins)")
blp.before_request(require_staff)

DEFAULT_DAYS = 30
MAX_DAYS = 366


@blp.before_request
def _supervisors_and_admins():
    reports.scope(current_actor())  # clerks: 403


def _own_department() -> str | None:
    return reports.scope(current_actor())


class PeriodArgs(ma.Schema):
    start = fields.Date(data_key="from", metadata={"description": "First hall date (Asia/Shanghai), inclusive; "
                                                                  "default 29 days before `to`"})
    end = fields.Date(data_key="to", metadata={"description": "Last hall date, inclusive; default today"})

    @ma.post_load
    def _period(self, data, **_):
        end = data.get("end") or utcnow().astimezone(HALL_TZ).date()  # the hall's today, not the server's
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise ma.ValidationError("must not be after to", "from")
        if (end - start).days + 1 > MAX_DAYS:
            raise ma.ValidationError(f"the period must be at most {MAX_DAYS} days", "to")
        return {**data, "start": start, "end": end}


class ElapsedArgs(PeriodArgs):
    group_by = fields.String(load_default="step", validate=validate.OneOf(reports.GROUPS))


class FiguresSchema(ma.Schema):
    group = fields.String(metadata={"description": "step key, department, clerk's username or hall date"})
    count = fields.Integer()
    median_minutes = fields.Float(allow_none=True)
    p90_minutes = fields.Float(allow_none=True)
    max_minutes = fields.Float(allow_none=True)
    within_target_pct = fields.Float(allow_none=True, metadata={"description": "0–100, one decimal"})


class BreachSchema(ma.Schema):
    at = HallDateTime()
    case_no = fields.String()
    subject = fields.String(metadata={"description": '"case" or a step key'})
    department = fields.String()
    clerk = fields.String(allow_none=True, metadata={"description": "Username of the step's holder"})
    target_minutes = fields.Integer(allow_none=True)
    used_minutes = fields.Float(allow_none=True, metadata={"description": "When the breach was recorded"})
    reason = fields.String(allow_none=True, metadata={"description": "Why, as the acknowledging supervisor said"})
    acknowledged_by = fields.String(allow_none=True)


class RatingSummarySchema(ma.Schema):
    count = fields.Integer()
    average = fields.Float(allow_none=True)
    by_score = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": '"1" to "5"'})
    low = fields.Integer(metadata={"description": "Ratings of 1 or 2"})
    follow_ups_open = fields.Integer()
    follow_ups_overdue = fields.Integer()


@blp.route("/elapsed")
class Elapsed(MethodView):
    @blp.arguments(ElapsedArgs, location="query")
    @blp.response(200, FiguresSchema(many=True))
    @documented(blp, 401, 403)
    def get(self, args):
        """Elapsed working minutes per step, department, clerk or day: count, median, p90, max, within target."""
        department = None if args["group_by"] == "day" else _own_department()
        return reports.elapsed(session(), start=args["start"], end=args["end"], group_by=args["group_by"],
                               department=department)


@blp.route("/breaches")
class Breaches(MethodView):
    @blp.arguments(PeriodArgs, location="query")
    @blp.response(200, BreachSchema(many=True))
    @documented(blp, 401, 403)
    def get(self, args):
        """The breaches recorded in the period, newest first, with the reasons supervisors gave."""
        return reports.breaches(session(), start=args["start"], end=args["end"], department=_own_department())


@blp.route("/ratings")
class Ratings(MethodView):
    @blp.arguments(PeriodArgs, location="query")
    @blp.response(200, RatingSummarySchema)
    @documented(blp, 401, 403)
    def get(self, args):
        """The applicants' ratings in the period, and the follow-ups open and overdue now."""
        return reports.ratings(session(), start=args["start"], end=args["end"])
