"""Documents: a case's combined receipt and acceptance slip (PDF, staff), and the public check of a
receipt's token (no sign-in: a bank or landlord follows the QR code printed on it)."""
from __future__ import annotations

from urllib.parse import urlencode

import marshmallow as ma
from flask import Response, current_app, url_for
from flask_smorest import Blueprint

from pdf import render
from workflow import operations as ops, receipts

from .. import limits
from ..auth import require_staff
from ..database import session
from ..errors import PROBLEM_CONTENT_TYPE, documented, problem
from .schemas.common import ProblemSchema

blp = Blueprint("documents", __name__, url_prefix="/api/v1/cases",
                description="Documents of a case: the combined receipt and the acceptance slip (PDF)")
blp.before_request(require_staff)

verify_blp = Blueprint("verify", __name__, url_prefix="/api/v1/verify",
                       description="Public check of a printed receipt (no sign-in)")

PDF = {"type": "string", "format": "binary"}


class VerificationSchema(ma.Schema):
    valid = ma.fields.Boolean()
    case_no = ma.fields.String()
    company_name = ma.fields.String()
    uscc = ma.fields.String(metadata={"description": "统一社会信用代码"})
    completed_at = ma.fields.String(metadata={"description": "When the case was completed (ISO 8601, +08:00)"})


def hall() -> str:
    return current_app.config.get("HALL_NAME", receipts.DEFAULT_HALL)


def pdf_response(content: bytes, case_no: str, document: str) -> Response:
    response = Response(content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{case_no}-{document}.pdf"'
    return response


def verify_url(case_no: str) -> str:
    """The public page that checks this case's receipt, as printed on it."""
    token = receipts.sign_case_no(current_app.config["SECRET_KEY"], case_no)
    return url_for("public.verify", token=token, _external=True)


def track_url(case) -> str:
    """The applicant's tracking page (contract section 5), with the case number and its code."""
    query = urlencode({"case_no": case.case_no, "code": case.tracking_code})
    # url_for, like the verification URL: with SERVER_NAME set, the printed address is the hall's
    # public one whatever Host header the request came with.
    return f"{url_for('public.track', _external=True)}?{query}"


@blp.route("/<case_no>/receipt.pdf")
@blp.response(200, PDF, content_type="application/pdf",
              description="The combined receipt, PDF/A-3b with the case data attached as JSON")
@blp.alt_response(409, schema=ProblemSchema, content_type=PROBLEM_CONTENT_TYPE,
                  description="The case is not ready or delivered")
@documented(blp, 401, 404)
def receipt(case_no):
    """The combined receipt (办结回执) of a ready or delivered case."""
    case = ops.get_case(session(), case_no)
    data = receipts.receipt_data(session(), case, hall=hall())
    return pdf_response(render.render_receipt(data, verify_url(case.case_no)), case.case_no, "receipt")


@blp.route("/<case_no>/slip.pdf")
@blp.response(200, PDF, content_type="application/pdf", description="The acceptance slip, PDF/A-3b")
@blp.alt_response(409, schema=ProblemSchema, content_type=PROBLEM_CONTENT_TYPE,
                  description="The case has not been accepted")
@documented(blp, 401, 404)
def slip(case_no):
    """The acceptance slip (受理通知书) of an accepted case."""
    case = ops.get_case(session(), case_no)
    data = receipts.slip_data(session(), case, hall=hall())
    return pdf_response(render.render_slip(data, track_url(case)), case.case_no, "slip")


@verify_blp.route("/<token>")
@limits.verifications
@verify_blp.doc(security=[])  # public: no bearer token
@verify_blp.response(200, VerificationSchema)
@verify_blp.alt_response(404, schema=ProblemSchema, content_type=PROBLEM_CONTENT_TYPE,
                         description="Forged, changed or unknown token: valid is false")
@documented(verify_blp, 429)
def verify(token):
    """Check a receipt's token: the company, its USCC and when the case was completed."""
    result = receipts.verification(session(), current_app.config["SECRET_KEY"], token)
    if result is None:
        return problem(404, "this token does not belong to a receipt issued by the hall", valid=False)
    return result
