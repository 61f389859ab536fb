"""One company opening, from the typed application to the mailed receipt, by five people, in Chinese.

The window clerk types the application and accepts it; each agency clerk finds the work in their
own department's queue (in their own browser), claims it and fills the step's own form; the window
clerk downloads the combined receipt and mails it. Nothing is done through the engine or the API:
what is asserted is what the people see on the pages.
"""
from __future__ import annotations

import datetime
import os
import random
import re
import subprocess

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from workflow.demo import registration_outputs
from workflow.identifiers import make_id_number

from .conftest import sign_in

pytestmark = pytest.mark.browser

PDFTOTEXT = "/usr/bin/pdftotext"
CASE_URL = re.compile(r"/cases/(KB\d{8}-\d{4})$")
COMPANY = "广州市天河区一窗通办示范科技有限公司"
OWNER = make_id_number("440106", datetime.date(1988, 5, 20), 321)
PARTNER = make_id_number("440111", datetime.date(1992, 11, 3), 654)
REGISTRATION = registration_outputs(random.Random(11))  # a USCC with a valid GB 32100 check digit
TRACKING_NO = "SF1234567890123"

# The steps' Chinese titles, as the queues, the step cards and the audit trail show them.
TITLES = {"registration": "设立登记", "seal": "刻章备案", "tax": "涉税信息确认", "invoice": "首次申领发票",
          "bank": "银行开户"}


# How each clerk fills their step's own completion form (the group "办理结果").
def _fill_registration(form):
    form.get_by_label("统一社会信用代码").fill(REGISTRATION["uscc"])
    form.get_by_label("营业执照编号").fill(REGISTRATION["licence_no"])


def _fill_seal(form):
    form.get_by_label("备案编号").fill("GA000000123")
    seals = form.get_by_role("group", name="已刻印章")
    seals.get_by_label("公章", exact=True).check()
    seals.get_by_label("财务专用章", exact=True).check()


def _fill_tax(form):
    form.get_by_label("纳税人类型").select_option(label="小规模纳税人")
    form.get_by_label("已发放税务UKey").check()


def _fill_invoice(form):
    form.get_by_label("发票种类").select_option(label="数电普票")
    form.get_by_label("数量", exact=True).fill("25")


def _fill_bank(form):
    form.get_by_label("开户银行").fill("中国工商银行广州天河支行")
    form.get_by_label("账号", exact=True).fill("360200001234567890")


@pytest.fixture
def person(browser, live_server):
    """``person(user, department_name)``: a page in the user's own browser context, signed in at ``/``."""
    contexts = []

    def open_as(user, department_name: str):
        context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        sign_in(page, user.username, PASSWORD)
        # Every clerk lands on their department's work queue, in Chinese, with their name shown.
        expect(page).to_have_url(re.compile(r"/queue$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(f"待办队列 · {department_name}")
        expect(page.locator(".site-header .who")).to_have_text(user.username)  # factory users: name = username
        return page

    yield open_as
    for context in contexts:
        context.close()


def _state(page, value: str, text: str) -> None:
    state = page.locator(".case-state")
    expect(state).to_have_attribute("data-state", value)
    expect(state).to_have_text(text)


def _to_queue(page) -> None:
    """Back to the department's work queue, by the navigation's link."""
    page.get_by_role("navigation", name="工作页面").get_by_role("link", name="待办队列").click()
    expect(page).to_have_url(re.compile(r"/queue$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("待办队列")


def _row(page, case_no: str, subject: str):
    """The queue's row for this case and subject (a step's title, or 整个办件 for the window)."""
    return page.locator("table.list tbody tr").filter(
        has=page.get_by_role("link", name=case_no, exact=True)).filter(has_text=subject)


def _open_from_queue(page, case_no: str, subject: str, state: str) -> None:
    _to_queue(page)
    row = _row(page, case_no, subject)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(state)
    expect(row).to_contain_text(COMPANY)
    row.get_by_role("link", name=case_no, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/cases/{case_no}(#[\w-]+)?$"))  # perhaps at the row's step
    expect(page.get_by_role("heading", level=1)).to_contain_text(case_no)


def _work_step(page, case_no: str, key: str, fill) -> None:
    """Find the step in the department's queue, claim it on the case page, fill its form, complete it."""
    title = TITLES[key]
    _open_from_queue(page, case_no, title, "待认领")
    card = page.locator(f"#step-{key}")
    expect(card.get_by_role("heading", level=3)).to_have_text(title)
    expect(card.locator(".step-state")).to_have_attribute("data-state", "ready")
    card.get_by_role("button", name="认领", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("您已认领该环节。")
    expect(card.locator(".step-state")).to_have_text("已认领")
    fill(card.get_by_role("group", name="办理结果", exact=True))
    card.get_by_role("button", name="办结", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("该环节已办结。")
    expect(card.locator(".step-state")).to_have_attribute("data-state", "done")
    expect(card.locator(".step-state")).to_have_text("已完成")
    expect(card.get_by_role("button")).to_have_count(0)  # nothing left to do on it


def _type_application(page) -> None:
    company = page.get_by_role("group", name="企业信息")
    company.get_by_label("企业名称").fill(COMPANY)
    company.get_by_label("企业类型").select_option(label="有限责任公司")
    company.get_by_label("注册资本（元）").fill("1000000.00")
    company.get_by_label("住所").fill("广州市天河区天河路385号")
    company.get_by_label("经营范围").fill("软件开发；信息技术咨询服务")
    rep = page.get_by_role("group", name="法定代表人")
    rep.get_by_label("姓名").fill("张三")
    rep.get_by_label("身份证号码").fill(OWNER)
    rep.get_by_label("手机号码").fill("13800138000")
    for row, (name, id_number, contribution) in ((1, ("张三", OWNER, "600000.00")),
                                                  (2, ("李四", PARTNER, "400000.00"))):
        holder = page.get_by_role("group", name=f"股东 {row}", exact=True)
        holder.get_by_label("姓名").fill(name)
        holder.get_by_label("身份证号码").fill(id_number)
        holder.get_by_label("认缴出资额（元）").fill(contribution)
    wants = page.get_by_role("group", name="同步办理事项")
    for service in ("刻章备案", "首次申领发票", "银行开户"):  # every service, ticked to start with
        expect(wants.get_by_label(service)).to_be_checked()


def test_five_people_carry_one_typed_application_to_a_mailed_receipt(factory, person):
    window_user = factory.window
    users = {"registration": factory.clerk("market_regulation"), "seal": factory.clerk("public_security"),
             "tax": factory.clerk("taxation"), "invoice": factory.clerk("taxation"), "bank": factory.clerk("bank")}

    # 1. The window clerk types the application in and accepts it.
    window = person(window_user, "综合窗口")
    window.get_by_role("link", name="新办申请").click()
    expect(window).to_have_url(re.compile(r"/applications/new$"))
    expect(window.get_by_role("heading", level=1)).to_have_text("新办申请")
    _type_application(window)
    window.get_by_role("button", name="提交申请").click()
    expect(window).to_have_url(CASE_URL)
    case_no = CASE_URL.search(window.url).group(1)
    expect(window.get_by_role("status")).to_have_text(f"申请已收件，办件编号 {case_no}。")
    expect(window.get_by_role("heading", level=1)).to_have_text(f"{COMPANY} {case_no}")
    _state(window, "submitted", "已提交，待受理")
    # The page shows the applicant's ID numbers masked, never whole.
    expect(window.locator("main")).not_to_contain_text(OWNER)
    expect(window.locator("main")).not_to_contain_text(PARTNER)
    window.get_by_role("button", name="受理", exact=True).click()
    expect(window.get_by_role("status")).to_have_text("已受理，开始计时。")
    _state(window, "in_progress", "办理中")
    expect(window.locator("#step-registration .step-state")).to_have_text("待认领")
    expect(window.locator("#step-tax .step-state")).to_have_text("等待前序环节")

    # Before registration is done, nothing of the case is in the taxation clerk's queue ...
    taxation = person(users["tax"], "税务")
    expect(taxation.get_by_role("link", name=case_no, exact=True)).to_have_count(0)
    expect(taxation.get_by_text("本部门目前没有待办事项。")).to_be_visible()
    # ... and a bank clerk who opens the case can see registration but has no button to claim it.
    bank = person(users["bank"], "银行")
    expect(bank.get_by_role("link", name=case_no, exact=True)).to_have_count(0)
    bank.goto(f"/cases/{case_no}")  # as if from a link a colleague sent
    registration = bank.locator("#step-registration")
    expect(registration.locator(".step-state")).to_have_attribute("data-state", "ready")
    expect(registration.get_by_role("button")).to_have_count(0)
    expect(bank.get_by_role("button", name="认领")).to_have_count(0)
    expect(bank.get_by_role("button", name="受理")).to_have_count(0)

    # 2. Registration first: seal, tax and bank depend on it (invoice on tax).
    market = person(users["registration"], "市场监管")
    _work_step(market, case_no, "registration", _fill_registration)
    expect(market.locator("#step-registration")).to_contain_text(REGISTRATION["uscc"])
    for key in ("seal", "tax", "bank"):
        expect(market.locator(f"#step-{key} .step-state")).to_have_attribute("data-state", "ready")
    expect(market.locator("#step-invoice .step-state")).to_have_attribute("data-state", "waiting")

    police = person(users["seal"], "公安")
    _work_step(police, case_no, "seal", _fill_seal)
    expect(police.locator("#step-seal")).to_contain_text("公章、财务专用章")

    # Now the taxation clerk's queue has the case: tax, not yet invoice (it waits for tax).
    _to_queue(taxation)
    expect(_row(taxation, case_no, "涉税信息确认")).to_have_count(1)
    expect(taxation.locator("table.list tbody tr").filter(
        has=taxation.get_by_role("link", name=case_no, exact=True))).to_have_count(1)
    _work_step(taxation, case_no, "tax", _fill_tax)
    _work_step(taxation, case_no, "invoice", _fill_invoice)
    expect(taxation.locator("#step-invoice")).to_contain_text("数电普票")

    _work_step(bank, case_no, "bank", _fill_bank)
    _state(bank, "ready", "已办结，待领取")

    # 3. The window clerk finds the finished case in the queue, downloads the receipt and mails it.
    _open_from_queue(window, case_no, "整个办件", "已办结，待领取")
    _state(window, "ready", "已办结，待领取")
    link = window.get_by_role("link", name="办结回执（PDF）")
    expect(link).to_have_attribute("href", f"/cases/{case_no}/receipt.pdf")
    with window.expect_response(re.compile(r"/receipt\.pdf$")) as opened:
        link.click()  # chromium shows it in its PDF viewer (Content-Disposition: inline)
    assert opened.value.status == 200
    assert opened.value.headers["content-type"] == "application/pdf"
    expect(window).to_have_url(re.compile(rf"/cases/{case_no}/receipt\.pdf$"))
    # The viewer wraps the file, so its bytes are fetched again with the clerk's own session cookie.
    downloaded = window.request.get(window.url)
    assert (downloaded.status, downloaded.headers["content-type"]) == (200, "application/pdf")
    pdf = downloaded.body()
    assert pdf.startswith(b"%PDF-")
    if os.path.exists(PDFTOTEXT):
        text = subprocess.run([PDFTOTEXT, "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True,
                              check=True, timeout=20).stdout.decode()
        assert COMPANY in text and REGISTRATION["uscc"] in text and case_no in text
    window.go_back()
    expect(window).to_have_url(re.compile(rf"/cases/{case_no}(#[\w-]+)?$"))

    deliver = window.get_by_role("group", name="送达方式")
    expect(deliver.get_by_label("窗口领取")).to_be_checked()
    deliver.get_by_label("邮寄送达").check()
    window.get_by_label("快递单号（邮寄时填写）").fill(TRACKING_NO)
    window.get_by_role("button", name="送达", exact=True).click()
    expect(window.get_by_role("status")).to_have_text("办件已送达。")
    _state(window, "delivered", "已送达")
    expect(window.get_by_role("region", name="办件", exact=True)).to_contain_text(f"邮寄送达，快递单号 {TRACKING_NO}")
    expect(window.get_by_role("heading", name="办件操作")).to_have_count(0)  # nothing is left to do

    # The audit trail: who did each thing, in order.
    trail = window.get_by_role("table", name=re.compile("办件的全部操作"))
    done = trail.locator("tbody tr:is([data-action=submit], [data-action=accept], [data-action=complete], "
                         "[data-action=deliver])")
    order = ("registration", "seal", "tax", "invoice", "bank")
    expect(done.locator("td:nth-of-type(1)")).to_have_text(
        [window_user.username] * 2 + [users[key].username for key in order] + [window_user.username])
    expect(done.locator("td:nth-of-type(2)")).to_have_text(["提交申请", "受理"] + ["办结"] * 5 + ["送达"])
    expect(done.locator("td:nth-of-type(3)")).to_have_text(["—", "—"] + [TITLES[key] for key in order] + ["—"])
    expect(trail.locator("tbody tr").last).to_have_attribute("data-action", "deliver")
