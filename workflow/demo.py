"""Demo data for a first look: one user per department and role, and cases in several states."""
from __future__ import annotations

import datetime
import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import accounts, operations as ops
from .actors import Actor
from .identifiers import make_id_number, make_uscc
from .models import User

DEPARTMENTS = ("service_window", "market_regulation", "public_security", "taxation", "bank")
SHORT = {"service_window": "window", "market_regulation": "market", "public_security": "police",
         "taxation": "tax", "bank": "bank"}
# Display names, so the pages and receipts look like a real hall's (the logins stay short ASCII).
PEOPLE = {"window1": "王芳", "window_sup": "陈静", "market1": "李明", "market_sup": "赵磊", "police1": "刘洋",
          "police_sup": "孙涛", "tax1": "周婷", "tax_sup": "吴刚", "bank1": "郑丽", "bank_sup": "黄伟",
          "admin": "管理员"}
NAMES = ("广州市白云区示例科技有限公司", "广州市天河区云帆贸易有限公司", "广州市越秀区岭南文化传播有限公司",
         "广州市海珠区珠江餐饮管理有限公司", "广州市番禺区星河智能制造有限公司", "广州市黄埔区新港物流有限公司",
         "广州市荔湾区西关茶艺有限公司")
STEP_OUTPUTS = {
    "seal": lambda rng: {"filing_no": f"GA{rng.randrange(10**9):09d}", "seals": ["company", "finance", "invoice"]},
    "tax": lambda rng: {"taxpayer_type": "small_scale", "ukey_issued": True},
    "invoice": lambda rng: {"invoice_kind": "digital_ordinary", "quantity": 25},
    "bank": lambda rng: {"bank_name": "中国工商银行广州白云支行", "account_no": f"3602{rng.randrange(10**14):014d}"},
}


def application(rng: random.Random, name: str, wants: dict | None = None) -> dict:
    """A valid application with generated (checksum-valid, fictitious) identity numbers."""
    birth = datetime.date(1970, 1, 1) + datetime.timedelta(days=rng.randrange(12000))
    owner = make_id_number("440111", birth, rng.randrange(1, 999))
    partner = make_id_number("440106", birth + datetime.timedelta(days=400), rng.randrange(1, 999))
    return {
        "company": {"name": name, "kind": "llc", "registered_capital": "1000000.00",
                    "address": "广州市白云区云城西路888号", "business_scope": "软件开发；信息技术咨询服务"},
        "legal_representative": {"name": "张三", "id_number": owner, "phone": "13800138000"},
        "shareholders": [{"name": "张三", "id_number": owner, "contribution": "600000.00"},
                         {"name": "李四", "id_number": partner, "contribution": "400000.00"}],
        "wants": wants if wants is not None else {"seal": True, "invoice": True, "bank": True},
        "channel": "window",
    }


def registration_outputs(rng: random.Random) -> dict:
    body = "MA" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(6))
    return {"uscc": make_uscc("9", "1", "440111", body), "licence_no": f"440111{rng.randrange(10**9):09d}"}


def seed(session: Session, password: str) -> list[str]:
    """Create the demo users and cases unless they exist; return what was done, line by line."""
    if session.scalar(select(User.id).where(User.username == "window1")) is not None:
        return ["demo data already present"]
    rng = random.Random(2026)
    report = []
    staff: dict[tuple[str, str], Actor] = {}
    for department in DEPARTMENTS:
        for role, suffix in (("clerk", "1"), ("supervisor", "_sup")):
            username = f"{SHORT[department]}{suffix}"
            user = accounts.create_user(session, username, password, role, department, display_name=PEOPLE[username])
            staff[(department, role)] = user.as_actor()
            report.append(f"user {user.username:12} {role:10} {department}")
    admin = accounts.create_user(session, "admin", password, "admin", display_name=PEOPLE["admin"])
    report.append(f"user {admin.username:12} admin")

    window = staff[("service_window", "clerk")]

    def clerk(department):
        return staff[(department, "clerk")]

    def run(case, *steps):
        for key in steps:
            step = case.step(key)
            ops.claim_step(session, case, key, clerk(step.department))
            outputs = registration_outputs(rng) if key == "registration" else STEP_OUTPUTS[key](rng)
            ops.complete_step(session, case, key, clerk(step.department), outputs)

    cases = [ops.submit_case(session, window, application(rng, name)) for name in NAMES]
    submitted, claimed, parallel, suspended, ready, delivered, rejected = cases
    for case in cases[1:6]:
        ops.accept_case(session, case, window)
    ops.claim_step(session, claimed, "registration", clerk("market_regulation"))
    run(parallel, "registration", "tax")
    run(suspended, "registration")
    ops.suspend_case(session, suspended, window, reason="补充股东会决议原件")
    run(ready, "registration", "seal", "tax", "invoice", "bank")
    run(delivered, "registration", "seal", "tax", "invoice", "bank")
    ops.deliver_case(session, delivered, window, method="counter")
    ops.reject_case(session, rejected, window, reason="名称与已登记企业重名")
    for case in cases:
        report.append(f"case {case.case_no} {case.state.value:12} tracking code {case.tracking_code}  {case.company_name}")
    report.append(f"every demo user's password: {password}")
    return report
