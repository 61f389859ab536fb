"""Pages anyone may open without signing in: the check of a printed receipt.

Chinese by default, English with ``?lang=en``. The few strings live here until the pages get
Flask-Babel.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from workflow import receipts

from ..database import session

bp = Blueprint("public", __name__)

TEXTS = {
    "zh": {
        "html_lang": "zh-CN", "site": "企业开办一窗通办", "title": "回执核验",
        "valid": "回执有效", "valid_lead": "本回执由{hall}出具，所载信息与办件记录一致。请核对纸质回执上的以下内容：",
        "invalid": "回执无效", "invalid_lead": "无法核验此回执：二维码或网址不完整、被改动，或不是本中心出具的回执。",
        "invalid_hint": "请向出示回执的企业或{hall}核实。",
        "company": "企业名称", "uscc": "统一社会信用代码", "completed_at": "办结时间", "case_no": "办件编号",
        "time_zone": "（北京时间）",
        "other_lang": "English", "other_code": "en",
    },
    "en": {
        "html_lang": "en", "site": "OneWindow company opening", "title": "Receipt check",
        "valid": "Valid receipt", "valid_lead": "This receipt was issued by {hall} and matches the case record. "
                                                "Check these details against the printed receipt:",
        "invalid": "Not a valid receipt", "invalid_lead": "This receipt cannot be verified: the code or address is "
                                                           "incomplete, was changed, or was not issued by the hall.",
        "invalid_hint": "Please check with the company that showed it, or with {hall}.",
        "company": "Company", "uscc": "Unified social credit code (USCC)", "completed_at": "Completed",
        "case_no": "Case no.", "time_zone": "(China Standard Time, UTC+8)", "other_lang": "中文", "other_code": "zh",
    },
}


def language() -> str:
    return "en" if request.args.get("lang") == "en" else "zh"


@bp.get("/verify/<token>")
def verify(token):
    """Show whether a receipt's token is genuine, with what a bank or landlord needs to compare."""
    result = receipts.verification(session(), current_app.config["SECRET_KEY"], token)
    lang = language()
    hall = current_app.config.get("HALL_NAME", receipts.DEFAULT_HALL)
    page = render_template("public/verify.html", t=TEXTS[lang], lang=lang, hall=hall, result=result, token=token)
    return page, 200 if result else 404
