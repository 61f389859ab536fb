"""The window clerk's new-application form: typed in chromium, checked by the engine, one case per form."""
from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.factories import PASSWORD
from workflow.identifiers import make_id_number
from workflow.models import Case

from .conftest import sign_in

pytestmark = pytest.mark.browser

OWNER = make_id_number("440106", datetime.date(1990, 3, 7), 123)
PARTNER = make_id_number("440111", datetime.date(1985, 12, 31), 456)
BAD_CHECK = OWNER[:-1] + ("1" if OWNER[-1] != "1" else "2")
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
CASE_URL = re.compile(r"/cases/(KB\d{8}-\d{4})$")


def _fill(page, *, rep_id=OWNER, phone="13800138000", contributions=("600000.00", "400000.00")):
    page.goto("/applications/new")
    company = page.get_by_role("group", name="企业信息")
    company.get_by_label("企业名称").fill("广州市白云区示例科技有限公司")
    company.get_by_label("企业类型").select_option(label="有限责任公司")
    company.get_by_label("注册资本（元）").fill("1000000.00")
    company.get_by_label("住所").fill("广州市白云区云城西路888号")
    company.get_by_label("经营范围").fill("软件开发")
    rep = page.get_by_role("group", name="法定代表人")
    rep.get_by_label("姓名").fill("张三")
    rep.get_by_label("身份证号码").fill(rep_id)
    rep.get_by_label("手机号码").fill(phone)
    # Rows 1 and 3: an empty row between them is ignored, and errors still land on the right row.
    for row, (name, id_number, contribution) in ((1, ("张三", OWNER, contributions[0])),
                                                  (3, ("李四", PARTNER, contributions[1]))):
        group = page.get_by_role("group", name=f"股东 {row}", exact=True)
        group.get_by_label("姓名").fill(name)
        group.get_by_label("身份证号码").fill(id_number)
        group.get_by_label("认缴出资额（元）").fill(contribution)
    page.get_by_label("首次申领发票").uncheck()


def test_a_window_clerk_types_an_application_and_gets_a_case(page, live_server, factory):
    sign_in(page, factory.window.username, PASSWORD)
    page.get_by_role("link", name="新办申请").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("新办申请")
    _fill(page)
    expect(page.get_by_label("刻章备案")).to_be_checked()  # the services are ticked to start with
    page.get_by_role("button", name="提交申请").click()
    expect(page).to_have_url(CASE_URL)  # the case page; it may not exist yet (another engineer builds it)
    case_no = CASE_URL.search(page.url).group(1)

    case = factory.session.scalar(select(Case).where(Case.case_no == case_no))
    assert case.state.value == "submitted" and case.channel == "window"
    assert case.company_name == "广州市白云区示例科技有限公司" and case.company_kind == "llc"
    application = case.application
    assert application["company"]["registered_capital"] == "1000000.00"
    assert application["legal_representative"] == {"name": "张三", "id_number": OWNER, "phone": "13800138000"}
    assert [(s["name"], s["id_number"], s["contribution"]) for s in application["shareholders"]] == [
        ("张三", OWNER, "600000.00"), ("李四", PARTNER, "400000.00")]
    assert application["wants"] == {"seal": True, "invoice": False, "bank": True}
    assert {s.key: s.state.value for s in case.steps}["invoice"] == "skipped"


def test_every_error_is_in_chinese_beside_its_field_and_nothing_typed_is_lost(page, live_server, factory):
    sign_in(page, factory.window.username, PASSWORD)
    _fill(page, rep_id=BAD_CHECK, phone="12800138000", contributions=("600000.00", "300000.00"))
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="提交申请").click()
    assert navigation.value.status == 422

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("申请未能提交，有 3 处需要修改")
    expect(summary.get_by_role("link")).to_have_count(3)
    rep = page.get_by_role("group", name="法定代表人")
    expect(rep.get_by_label("身份证号码")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-legal-representative-id-number-error")).to_have_text("身份证号码校验位不符，请核对是否输错。")
    expect(page.locator("#f-legal-representative-phone-error")).to_have_text("手机号码应以 13 至 19 开头。")
    expect(page.locator("#f-shareholders-error")).to_have_text(
        "股东出资额合计 900000.00 元，与注册资本 1000000.00 元不一致。")
    expect(summary.get_by_role("link", name=re.compile("法定代表人 · 身份证号码"))).to_have_attribute(
        "href", "#f-legal-representative-id-number")

    # Everything typed is still there, the ID numbers included, in the rows it was typed in.
    expect(page.get_by_label("企业名称")).to_have_value("广州市白云区示例科技有限公司")
    expect(page.get_by_label("企业类型")).to_have_value("llc")
    expect(page.get_by_label("注册资本（元）")).to_have_value("1000000.00")
    expect(page.get_by_label("经营范围")).to_have_value("软件开发")
    expect(rep.get_by_label("身份证号码")).to_have_value(BAD_CHECK)
    expect(rep.get_by_label("手机号码")).to_have_value("12800138000")
    row3 = page.get_by_role("group", name="股东 3", exact=True)
    expect(row3.get_by_label("身份证号码")).to_have_value(PARTNER)
    expect(row3.get_by_label("认缴出资额（元）")).to_have_value("300000.00")
    expect(page.get_by_role("group", name="股东 2", exact=True).get_by_label("姓名")).to_have_value("")
    expect(page.get_by_label("首次申领发票")).not_to_be_checked()
    expect(page.get_by_label("银行开户")).to_be_checked()
    assert factory.session.scalar(select(func.count()).select_from(Case)) == 0


def test_the_form_is_for_the_window_only(page, live_server, factory, client):
    assert client.get("/applications/new").status_code == 302  # signed out: to the sign-in page
    sign_in(page, factory.clerk("taxation").username, PASSWORD)
    expect(page.get_by_role("link", name="新办申请")).to_have_count(0)
    assert page.goto("/applications/new").status == 403


def _token(html: str, name: str) -> str:
    return re.search(rf'name="{name}"[^>]* value="([^"]+)"', html).group(1)


def test_submitting_one_form_twice_makes_one_case(client, factory):
    html = client.get("/").get_data(as_text=True)
    client.post("/", data={"csrf_token": _token(html, "csrf_token"), "username": factory.window.username,
                           "password": PASSWORD})
    html = client.get("/applications/new").get_data(as_text=True)
    form = {"csrf_token": _token(html, "csrf_token"), "form_id": _token(html, "form_id"),
            "company.name": "广州市白云区示例科技有限公司", "company.kind": "llc",
            "company.registered_capital": "1000000", "company.address": "广州市白云区云城西路888号",
            "company.business_scope": "软件开发", "legal_representative.name": "张三",
            "legal_representative.id_number": OWNER, "legal_representative.phone": "13800138000",
            "shareholders.0.name": "张三", "shareholders.0.id_number": OWNER, "shareholders.0.contribution": "1000000",
            "wants.seal": "1", "wants.bank": "1", "channel": "window"}
    first = client.post("/applications/new", data=form)
    assert first.status_code == 303 and CASE_URL.search(first.location)
    with client.session_transaction() as cookie:
        assert cookie["_flashes"][-1][1] == f"申请已收件，办件编号 {CASE_URL.search(first.location).group(1)}。"
    second = client.post("/applications/new", data=form)
    assert (second.status_code, second.location) == (303, first.location)
    # Even a request that never saw the first one's cookie (a racing double click) finds it in the database.
    with client.session_transaction() as cookie:
        cookie["new_application_forms"] = {form["form_id"]: None}
    third = client.post("/applications/new", data=form)
    assert (third.status_code, third.location) == (303, first.location)
    assert factory.session.scalar(select(func.count()).select_from(Case)) == 1


@pytest.mark.skipif(not os.environ.get("SCREENSHOTS"), reason="set SCREENSHOTS=1 to retake docs/images")
def test_screenshots(browser, live_server, factory):
    IMAGES.mkdir(parents=True, exist_ok=True)
    clerk = factory.window
    for viewport, name, errors in (({"width": 1280, "height": 800}, "new-application-errors-1280.png", True),
                                   ({"width": 390, "height": 844}, "new-application-390.png", False)):
        context = browser.new_context(base_url=live_server, viewport=viewport)
        page = context.new_page()
        sign_in(page, clerk.username, PASSWORD)
        if errors:
            _fill(page, rep_id=BAD_CHECK, phone="12800138000", contributions=("600000.00", "300000.00"))
            page.get_by_role("button", name="提交申请").click()
            expect(page.get_by_role("alert")).to_be_visible()
        else:
            page.goto("/applications/new")
        page.screenshot(path=IMAGES / name, full_page=True)
        context.close()
