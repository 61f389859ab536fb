"""Cases: submit, list, read, and the window's actions; the steps' actions; the audit trail."""
from __future__ import annotations

import json
import math

from flask import request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from workflow import operations as ops, queries, timers

from ..auth import current_actor, require_staff
from ..database import session
from ..errors import documented
from .schemas.cases import (AcceptSchema, ApplicationBody, CaseListArgs, CaseSchema, CreatedCaseSchema, DeliverSchema,
                            EventSchema, OutputsSchema, ReassignSchema)
from .schemas.common import IDEMPOTENCY_KEY, IF_MATCH, ReasonSchema

blp = Blueprint("cases", __name__, url_prefix="/api/v1/cases",
                description="Company-opening cases (办件), their steps (环节) and audit trail")
blp.before_request(require_staff)

STEP_PATH = "/<case_no>/steps/<step>"
# What every action on a case may answer besides 200 (400 for a body that is not a JSON object, even
# where none is expected), and the headers it reads.
ACTION_PROBLEMS = (400, 401, 403, 404, 409, 412, 413, 422)
ACTION_HEADERS = [IF_MATCH, IDEMPOTENCY_KEY]


def case_action(view):
    """Decorator (under ``@blp.response``): document an action's headers and its possible problems."""
    return blp.doc(parameters=ACTION_HEADERS)(documented(blp, *ACTION_PROBLEMS)(view))


def if_match() -> int | None:
    """The version an ``If-Match`` header expects (``"5"``, ``W/"5"`` or ``5``); None without one."""
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    # isdigit alone takes "²" and "٣" too, which int() then refuses: a 500 instead of a 412.
    return int(text) if text.isascii() and text.isdigit() else -1  # never a real version: 412


def etag(case) -> dict:
    return {"ETag": f'"{case.version}"'}


def act(operation, case_no: str, *args, **kwargs):
    """Lock the case, run one operation as the caller, answer with the whole case and its ETag."""
    db = session()
    case = ops.get_case(db, case_no, lock=True)
    operation(db, case, *args, current_actor(), expected_version=if_match(), **kwargs)
    return timed(case), etag(case)


def timed(case):
    return timers.with_timing(session(), [case])[0]


PAGINATION = (f"JSON: total (counted up to {queries.COUNT_LIMIT}), total_is_exact (false when more match), "
              "page, per_page, total_pages")


@blp.route("")
class Cases(MethodView):
    @blp.arguments(CaseListArgs, location="query")
    @blp.response(200, CaseSchema(many=True), headers={"X-Pagination": {"description": PAGINATION}})
    @documented(blp, 401)
    def get(self, args):
        """List cases (filters: state, step, department, q; paginated)."""
        found = queries.list_cases(session(), **args)
        items = timers.with_timing(session(), found.items)
        pages = {"total": found.total, "total_is_exact": found.total_is_exact, "page": args["page"],
                 "per_page": args["per_page"], "total_pages": max(1, math.ceil(found.total / args["per_page"]))}
        return items, {"X-Pagination": json.dumps(pages)}

    @blp.arguments(ApplicationBody)
    @blp.response(201, CreatedCaseSchema)
    @blp.alt_response(422, description="Every bad field named; nothing stored")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    @documented(blp, 400, 401, 403, 409, 413)
    def post(self, application):
        """Submit an application (window staff): creates a case in state submitted."""
        case = ops.submit_case(session(), current_actor(), application)
        headers = etag(case)
        headers["Location"] = url_for("cases.CaseById", case_no=case.case_no)
        return timed(case), headers


@blp.route("/<case_no>")
class CaseById(MethodView):
    @blp.response(200, CaseSchema)
    @documented(blp, 401, 404)
    def get(self, case_no):
        """Read a case with its steps and outputs."""
        case = ops.get_case(session(), case_no)
        return timed(case), etag(case)


@blp.route("/<case_no>/events")
class CaseEvents(MethodView):
    @blp.response(200, EventSchema(many=True))
    @documented(blp, 401, 404)
    def get(self, case_no):
        """The case's audit trail, oldest first."""
        db = session()
        return queries.case_events(db, ops.get_case(db, case_no))


@blp.route("/<case_no>/accept", methods=["POST"])
@blp.arguments(AcceptSchema, required=False)
@blp.response(200, CaseSchema)
@case_action
def accept(body, case_no):
    """受理: accept the application and start the clock (window staff)."""
    return act(ops.accept_case, case_no, missing_materials=body.get("missing_materials"))


@blp.route("/<case_no>/reject", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, CaseSchema)
@case_action
def reject(body, case_no):
    """不予受理: refuse the application, with a reason (window staff)."""
    return act(ops.reject_case, case_no, reason=body["reason"])


@blp.route("/<case_no>/suspend", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, CaseSchema)
@case_action
def suspend(body, case_no):
    """Stop the clock while waiting on the applicant (window staff or a supervisor)."""
    return act(ops.suspend_case, case_no, reason=body["reason"])


@blp.route("/<case_no>/resume", methods=["POST"])
@blp.response(200, CaseSchema)
@case_action
def resume(case_no):
    """Restart the clock (window staff or a supervisor)."""
    return act(ops.resume_case, case_no)


@blp.route("/<case_no>/withdraw", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, CaseSchema)
@case_action
def withdraw(body, case_no):
    """The applicant withdrew (window staff)."""
    return act(ops.withdraw_case, case_no, reason=body["reason"])


@blp.route("/<case_no>/deliver", methods=["POST"])
@blp.arguments(DeliverSchema)
@blp.response(200, CaseSchema)
@case_action
def deliver(body, case_no):
    """一窗通取: hand over at the counter or by mail (window staff)."""
    return act(ops.deliver_case, case_no, method=body["method"], tracking_no=body.get("tracking_no"))


@blp.route(f"{STEP_PATH}/claim", methods=["POST"])
@blp.response(200, CaseSchema)
@case_action
def claim(case_no, step):
    """Claim a ready step (its department's clerks)."""
    return act(ops.claim_step, case_no, step)


@blp.route(f"{STEP_PATH}/release", methods=["POST"])
@blp.response(200, CaseSchema)
@case_action
def release(case_no, step):
    """Give a claimed step back to the department's queue."""
    return act(ops.release_step, case_no, step)


@blp.route(f"{STEP_PATH}/reassign", methods=["POST"])
@blp.arguments(ReassignSchema)
@blp.response(200, CaseSchema)
@case_action
def reassign(body, case_no, step):
    """Hand a claimed step to another clerk of its department (the department's supervisors)."""
    return act(ops.reassign_step, case_no, step, assignee=body["assignee"])


@blp.route(f"{STEP_PATH}/complete", methods=["POST"])
@blp.arguments(OutputsSchema)
@blp.response(200, CaseSchema)
@case_action
def complete(outputs, case_no, step):
    """Complete a step with its output fields (see the process definition)."""
    return act(ops.complete_step, case_no, step, outputs=outputs)


@blp.route(f"{STEP_PATH}/refuse", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, CaseSchema)
@case_action
def refuse(body, case_no, step):
    """不予登记 and the like: refuse the step; the case is rejected."""
    return act(ops.refuse_step, case_no, step, reason=body["reason"])
