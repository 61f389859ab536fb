"""The applicant's tracking (contract §4 ``GET /track``) and rating, public: no sign-in, throttled."""
from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import fields, validate

from workflow import tracking
from workflow.errors import NotFound

from .. import limits
from ..database import session
from ..errors import PROBLEM_CONTENT_TYPE, documented
from .schemas.common import HallDateTime, ProblemSchema

blp = Blueprint("track", __name__, url_prefix="/api/v1/track",
                description="The applicant's view of a case, by case number and tracking code (no sign-in)")

UNKNOWN = "no case with this number and tracking code"


class TrackArgs(ma.Schema):
    case_no = fields.String(required=True, validate=validate.Length(1, 20))
    code = fields.String(required=True, validate=validate.Length(1, 64),
                         metadata={"description": "The tracking code on the acceptance slip"})


class Names(ma.Schema):
    zh = fields.String()
    en = fields.String()


class PublicStepSchema(ma.Schema):
    step = fields.String(attribute="key")
    title = fields.Nested(Names)
    department = fields.String()
    department_name = fields.Nested(Names)
    state = fields.String()
    ready_at = HallDateTime(allow_none=True)
    done_at = HallDateTime(allow_none=True)
    deadline = HallDateTime(allow_none=True)
    sla_status = fields.String(allow_none=True)


class RatingOut(ma.Schema):
    score = fields.Integer()
    created_at = HallDateTime()


class TrackSchema(ma.Schema):
    case_no = fields.String()
    company_name = fields.String()
    state = fields.String()
    accepted_at = HallDateTime(allow_none=True)
    ready_at = HallDateTime(allow_none=True)
    delivered_at = HallDateTime(allow_none=True)
    deadline = HallDateTime(allow_none=True, metadata={"description": "The promise: 210 working minutes from acceptance"})
    sla_status = fields.String(allow_none=True)
    paused = fields.Boolean(metadata={"description": "The clock is stopped: the hall waits on the applicant"})
    materials_pending = fields.Integer(metadata={"description": "Materials the applicant is to supply later"})
    calendar_confirmed = fields.Boolean()
    estimate = HallDateTime(allow_none=True, metadata={
        "description": "Expected completion: each open step's recent median duration, in parallel where the "
                       "process allows; null while the clock is stopped or the case will not finish"})
    steps = fields.List(fields.Nested(PublicStepSchema))
    rating = fields.Nested(RatingOut, allow_none=True)
    can_rate = fields.Boolean()


class RatingIn(ma.Schema):
    score = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    comment = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=500))


def found(case_no: str, code: str):
    """The case, or the same 404 for an unknown number and a wrong code (counted as a miss)."""
    case = tracking.find(session(), case_no, code)
    if case is None:
        raise NotFound(UNKNOWN)
    return case


@blp.route("")
@limits.track_lookups
@limits.track_misses
@blp.doc(security=[])
@blp.arguments(TrackArgs, location="query")
@blp.response(200, TrackSchema)
@blp.alt_response(404, schema=ProblemSchema, content_type=PROBLEM_CONTENT_TYPE,
                  description="Unknown case number or wrong code (the same answer)")
@blp.alt_response(429, schema=ProblemSchema, content_type=PROBLEM_CONTENT_TYPE,
                  description="Too many lookups, or too many wrong codes, from this client")
def track(args):
    """A case's states, agencies, deadline and estimated completion; no personal data."""
    return tracking.public_view(session(), found(args["case_no"], args["code"]))


@blp.route("/rating", methods=["POST"])
@limits.ratings
@limits.track_misses
@blp.doc(security=[])
@blp.arguments(TrackArgs, location="query")
@blp.arguments(RatingIn)
@blp.response(201, RatingOut)
@blp.alt_response(409, schema=ProblemSchema, content_type=PROBLEM_CONTENT_TYPE,
                  description="Not delivered yet, or already rated")
@documented(blp, 400, 404, 413, 429)
def rate(args, body):
    """Rate a delivered case once, 1 to 5, with an optional comment (好差评)."""
    return tracking.rate(session(), found(args["case_no"], args["code"]), body["score"], body.get("comment"))
