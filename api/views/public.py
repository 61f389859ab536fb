"""Pages anyone may open without signing in: the check of a printed receipt.

Chinese by default, English with ``?lang=en`` (Flask-Babel; the catalogue is ``translations/``).
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

from workflow import receipts

from ..database import session

bp = Blueprint("public", __name__)


@bp.get("/verify/<token>")
def verify(token):
    """Show whether a receipt's token is genuine, with what a bank or landlord needs to compare."""
    result = receipts.verification(session(), current_app.config["SECRET_KEY"], token)
    hall = current_app.config.get("HALL_NAME", receipts.DEFAULT_HALL)
    page = render_template("public/verify.html", hall=hall, result=result, token=token)
    return page, 200 if result else 404
