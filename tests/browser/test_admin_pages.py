"""The administrators' pages in a real browser: accounts and tokens, the calendar, the process definitions."""
from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
import time_machine
from playwright.sync_api import expect

from tests.factories import PASSWORD, csrf_token
from workflow import accounts, demo
from workflow.definitions import packaged

from .conftest import sign_in
from .test_accessibility import BADGES, HELPERS, assert_contrast, assert_fits_and_names_every_control
from .test_sessions import signed_in

browser = pytest.mark.browser
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture
def admin_page(page, factory):
    """A page signed in as an admin, in Chinese (the default)."""
    sign_in(page, factory.actor("admin", None).username, PASSWORD)
    page.wait_for_url("**/dashboard")
    return page


def _api(client, token: str) -> int:
    return client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code


@browser
def test_an_admin_creates_an_account_and_its_owner_signs_in(admin_page, browser, live_server):
    page = admin_page
    page.locator(".site-nav").get_by_role("link", name="系统管理").click()
    page.wait_for_url("**/admin")
    page.get_by_role("link", name="用户", exact=True).click()
    form = page.locator("#create form")
    form.get_by_role("button", name="创建账号").click()  # empty: every problem beside its field
    expect(page.locator("#new-username-error")).to_have_text("请输入 1 至 64 个字符。")
    expect(page.locator("#new-department-error")).to_have_text("经办人员和主管须选择所属部门。")
    expect(page.locator("#new-password-error")).to_have_text("密码至少需要 8 个字符。")
    form.get_by_label("用户名").fill("tax7")
    form.get_by_label("显示名称").fill("周七")
    form.get_by_label("角色").select_option("clerk")
    form.get_by_label("部门").select_option(label="税务")
    form.get_by_label("初始密码").fill("first-pass-7")
    form.get_by_role("button", name="创建账号").click()
    page.wait_for_url("**/admin/users/tax7")
    expect(page.get_by_role("status")).to_have_text("账号 tax7 已创建，现在即可登录。")
    page.get_by_role("link", name="用户", exact=True).first.click()
    row = page.locator("table.accounts tbody tr", has_text="tax7")
    expect(row).to_contain_text("周七")
    expect(row).to_contain_text("税务")
    expect(row).to_contain_text("已启用")

    other = browser.new_context(base_url=live_server).new_page()
    sign_in(other, "tax7", "first-pass-7")
    other.wait_for_url("**/queue")
    expect(other.get_by_role("heading", level=1)).to_have_text("待办队列 · 税务")
    other.context.close()


@browser
def test_a_disabled_account_is_signed_out_and_its_token_refused(admin_page, browser, live_server, factory, client):
    clerk = factory.clerk("bank")
    token = factory.token("clerk", "bank")
    assert _api(client, token) == 200
    theirs = browser.new_context(base_url=live_server).new_page()
    sign_in(theirs, clerk.username, PASSWORD)
    theirs.wait_for_url("**/queue")

    page = admin_page
    page.goto("/admin/users")
    page.locator("table.accounts tbody tr", has_text=clerk.username).get_by_role("button", name="停用").click()
    expect(page.get_by_role("status")).to_contain_text(f"{clerk.username} 已停用")
    expect(page.locator("table.accounts tbody tr", has_text=clerk.username)).to_contain_text("已停用")

    theirs.reload()  # signed out on the next request
    theirs.wait_for_url(re.compile(r"/\?next=%2Fqueue$"))
    theirs.get_by_label("用户名").fill(clerk.username)
    theirs.get_by_label("密码").fill(PASSWORD)
    theirs.get_by_role("button", name="登录").click()
    expect(theirs.get_by_role("alert")).to_contain_text("此账号已停用")
    assert _api(client, token) == 401

    page.goto(f"/admin/users/{clerk.username}")
    expect(page.locator("table.tokens")).to_contain_text("账号停用期间失效")
    page.get_by_role("button", name="启用此账号").click()
    expect(page.get_by_role("status")).to_have_text(f"{clerk.username} 已重新启用，可以登录。")
    assert _api(client, token) == 200
    theirs.context.close()


@browser
def test_a_reset_password_works_and_lifts_the_lockout(admin_page, browser, live_server, factory):
    clerk = factory.clerk("taxation")
    for _ in range(accounts.MAX_FAILED_LOGINS):
        accounts.sign_in(factory.session, clerk.username, "wrong")
    factory.session.commit()

    page = admin_page
    page.goto("/admin/users")
    expect(page.locator("table.accounts tbody tr", has_text=clerk.username).locator("time")).to_have_count(1)
    page.goto(f"/admin/users/{clerk.username}")
    form = page.locator("form", has=page.get_by_label("新密码", exact=True))
    form.get_by_label("新密码", exact=True).fill("a fresh password")
    form.get_by_label("再次输入新密码").fill("a fresh passw0rd")
    form.get_by_role("button", name="重置密码").click()
    expect(page.locator("#password-password-again-error")).to_have_text("两次输入的密码不一致。")
    expect(page.get_by_label("新密码", exact=True)).to_have_value("")  # a password is never sent back
    page.get_by_label("新密码", exact=True).fill("a fresh password")
    page.get_by_label("再次输入新密码").fill("a fresh password")
    page.get_by_role("button", name="重置密码").click()
    expect(page.get_by_role("status")).to_contain_text("密码已重置，账号锁定已解除")
    expect(page.locator("dl.facts")).to_contain_text("未锁定")
    expect(page.locator("table.admin-log")).to_contain_text("重置密码")

    theirs = browser.new_context(base_url=live_server).new_page()
    sign_in(theirs, clerk.username, "a fresh password")
    theirs.wait_for_url("**/queue")
    theirs.context.close()


@browser
def test_a_token_is_shown_once_works_and_stops_when_revoked(admin_page, factory, client):
    clerk = factory.clerk("market_regulation")
    page = admin_page
    page.goto(f"/admin/users/{clerk.username}?lang=en")
    expect(page.get_by_text("No API tokens were issued to this account.")).to_be_visible()
    page.get_by_label("Label of a new token").fill("registry sync")
    page.get_by_role("button", name="Issue a token").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API token issued")
    expect(page.get_by_role("alert")).to_contain_text("this is the only time it is shown")
    token = page.get_by_label("Token", exact=True).input_value()
    assert token.startswith(accounts.TOKEN_PREFIX)
    assert _api(client, token) == 200

    with page.expect_navigation():  # page.content() below reads the page as it is
        page.get_by_role("link", name=f"I have copied it: back to {clerk.username}").click()
    row = page.locator("table.tokens tbody tr", has_text="registry sync")
    expect(row).to_contain_text("In use")
    assert token not in page.content()  # never shown again
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_have_text(
        f"The token registry sync of {clerk.username} is revoked; it no longer works.")
    expect(row).to_contain_text("Revoked")
    expect(row.get_by_role("button")).to_have_count(0)
    assert _api(client, token) == 401
    expect(page.locator("table.admin-log tbody tr")).to_have_count(2)


GOOD = "date,kind,name\n2027-02-06,workday,春节调休\n2027-02-08,holiday,春节\n"
BAD = "date,kind,name\n2027-05-01,holiday,劳动节\n2027-05-32,holiday,x\n2027-05-03,rest,\n"


def _upload(page, text: str) -> None:
    page.locator("#import-file").set_input_files(files=[{"name": "days.csv", "mimeType": "text/csv",
                                                          "buffer": text.encode("utf-8")}])
    page.get_by_role("button", name="导入文件").click()


@browser
def test_a_calendar_file_is_imported_whole_or_not_at_all(admin_page):
    page = admin_page
    page.goto("/admin/calendar?year=2027")
    expect(page.get_by_role("heading", level=1)).to_have_text("2027 年节假日日历")
    feb6 = page.locator("td[data-date='2027-02-06']")
    expect(feb6).to_have_attribute("data-kind", "unconfirmed")
    expect(feb6).to_contain_text("?")

    _upload(page, BAD)
    errors = page.locator("#import-errors")
    expect(errors).to_contain_text("文件中有 2 行错误")
    expect(errors).to_contain_text("第 3 行")
    expect(errors).to_contain_text("“2027-05-32”不是 YYYY-MM-DD 格式的日期。")
    expect(errors).to_contain_text("第 4 行")
    expect(errors).to_contain_text("类型“rest”既不是")
    expect(page.locator("td[data-date='2027-05-01']")).to_have_attribute("data-kind", "unconfirmed")  # line 2 too
    expect(page.get_by_text("本年度尚未录入任何日期。")).to_be_visible()

    _upload(page, GOOD)
    expect(page.get_by_role("status")).to_contain_text("已导入 2 天")
    expect(page).to_have_url(re.compile(r"/admin/calendar\?year=2027$"))
    expect(feb6).to_have_attribute("data-kind", "workday")
    expect(feb6).to_contain_text("班")
    expect(feb6.locator(".visually-hidden")).to_have_text("调休上班, 春节调休")
    expect(page.locator("td[data-date='2027-02-08']")).to_have_attribute("data-kind", "holiday")
    expect(page.locator("table.entered-days tbody tr")).to_have_count(2)


@browser
def test_a_day_is_added_and_a_bad_one_is_refused_beside_its_fields(admin_page):
    page = admin_page
    page.goto("/admin/calendar?year=2027&lang=en")
    form = page.locator("#add-day form")
    form.get_by_role("button", name="Save the day").click()
    expect(page.locator("#day-date-error")).to_have_text("Enter the date, written YYYY-MM-DD.")
    form = page.locator("#add-day form")
    form.get_by_label("Date").fill("2027-10-01")
    form.get_by_label("Kind").select_option("holiday")
    form.get_by_label("Name").fill("国庆节")
    form.get_by_role("button", name="Save the day").click()
    expect(page.get_by_role("status")).to_contain_text("2027-10-01 is saved as Holiday (no work).")
    day = page.locator("td[data-date='2027-10-01']")
    expect(day).to_have_attribute("data-kind", "holiday")
    expect(day).to_have_attribute("title", "2027-10-01 · Holiday · 国庆节")
    expect(page.locator("table.entered-days")).to_contain_text("国庆节")


def _version_2() -> str:
    document = copy.deepcopy(packaged())
    document["version"] = 2
    document["departments"]["social_security"] = {"zh": "人社", "en": "Social security"}
    document["steps"].append({
        "key": "social_security", "title": {"zh": "社保登记", "en": "Social security"},
        "department": "social_security", "needs": ["registration"], "optional": False, "target_minutes": 45,
        "outputs": {"insurance_no": {"type": "string"}},
    })
    return json.dumps(document, ensure_ascii=False, indent=2)


@browser
def test_the_process_is_drawn_and_a_new_version_applies_to_cases_accepted_after(admin_page, factory):
    before = factory.case("in_progress")
    page = admin_page
    page.goto("/admin/definitions?lang=en")
    svg = page.locator("figure.dag svg")
    expect(svg.locator(".dag-step")).to_have_count(5)
    expect(svg.locator(".dag-edge")).to_have_count(4)
    expect(svg.locator(".dag-step[data-step=invoice]")).to_contain_text("Taxation")
    expect(svg.locator(".dag-edge[data-from=tax][data-to=invoice]")).to_have_count(1)
    expect(svg.locator(".dag-optional")).to_have_count(3)

    textarea = page.get_by_label("Definition (JSON)")
    assert json.loads(textarea.input_value())["version"] == 2  # the current one, numbered next
    textarea.fill('{"name": "company_opening", "version": 2}')
    page.get_by_role("button", name="Publish this version").click()
    expect(page.locator("#document-error")).to_contain_text("The engine refused this definition: malformed")
    page.get_by_label("Definition (JSON)").fill(_version_2())
    page.get_by_role("button", name="Publish this version").click()
    expect(page.get_by_role("status")).to_contain_text("Version 2 is published.")
    current = page.locator("table.versions tbody tr", has_text="Current")
    expect(current.locator("th a")).to_have_text("v2")
    expect(page.locator("table.versions tbody tr")).to_have_count(2)
    expect(svg.locator(".dag-step")).to_have_count(6)
    expect(svg.locator(".dag-edge")).to_have_count(5)
    expect(svg.locator(".dag-step[data-step=social_security]")).to_contain_text("45 min")

    after = factory.case("in_progress")
    assert after.definition_version == 2 and "social_security" in [s.key for s in after.steps]
    assert before.definition_version == 1 and "social_security" not in [s.key for s in before.steps]
    page.goto("/admin/definitions?version=1&lang=en")
    expect(svg.locator(".dag-step")).to_have_count(5)


@browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_admin_pages_fit_name_every_control_and_meet_contrast(browser, live_server, factory, width):
    admin = factory.actor("admin", None)
    clerk = factory.clerk("bank")
    accounts.create_token(factory.session, clerk.username, "teller", by=admin)
    accounts.disable_user(factory.session, admin, factory.actor("supervisor", "bank").username)
    factory.session.commit()
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 800})
    page = context.new_page()
    sign_in(page, admin.username, PASSWORD)
    page.wait_for_url("**/dashboard")
    badges = []
    for path in ("/admin", "/admin/users", f"/admin/users/{clerk.username}", "/admin/calendar",
                 "/admin/calendar?year=2027&lang=en", "/admin/definitions"):
        page.goto(path)
        assert_fits_and_names_every_control(page)
        assert_contrast(page)
        page.evaluate(HELPERS)
        badges += page.evaluate(BADGES)
    page.goto("/admin/users")
    with page.expect_navigation():  # assert_contrast reads the DOM as it is: the answer must have loaded
        page.locator("#create form button[type=submit]").click()  # the errors beside the fields
    assert_contrast(page)
    context.close()
    assert {"account-active", "account-disabled", "token-live", "version-current"} <= {
        cls for badge in badges for cls in badge["cls"].split()}
    for badge in badges:
        assert badge["label"] and badge["icon"], badge  # a word and a symbol, not colour alone
        assert badge["borderWidth"] >= 1 and badge["border"] >= 3, badge


ADMIN_PAGES = ["/admin", "/admin/users", "/admin/users/{me}", "/admin/calendar", "/admin/calendar?year=2027",
               "/admin/definitions"]
ADMIN_POSTS = ["/admin/users", "/admin/users/{me}/disable", "/admin/users/{me}/enable", "/admin/users/{me}/password",
               "/admin/users/{me}/tokens", "/admin/tokens/1/revoke", "/admin/calendar/days", "/admin/calendar/import",
               "/admin/definitions"]


@pytest.mark.parametrize("who", [("clerk", "taxation"), ("supervisor", "service_window")], ids=lambda w: w[0])
def test_only_admins_may_open_or_post_to_the_admin_pages(client, factory, who):
    for path in ADMIN_PAGES:
        assert client.get(path.format(me="x")).status_code == 302  # anonymous: to the sign-in page
    user = factory.actor(*who)
    signed_in(client, user.username)
    token = csrf_token(client, "/queue")
    for path in ADMIN_PAGES:
        response = client.get(path.format(me=user.username))
        assert response.status_code == 403 and response.mimetype == "text/html", path
    for path in ADMIN_POSTS:
        response = client.post(path.format(me=user.username), data={"csrf_token": token, "password": "12345678",
                                                                      "password_again": "12345678"})
        assert response.status_code == 403, path
    assert accounts.get_user(factory.session, user.username).active


@browser
@pytest.mark.skipif(not os.environ.get("SCREENSHOTS"), reason="set SCREENSHOTS=1 to retake docs/images")
def test_screenshots_of_the_admin_pages(browser, live_server, factory):
    with time_machine.travel("2026-11-23 09:00 +0800", tick=False):
        demo.seed(factory.session, PASSWORD)
        admin = accounts.get_user(factory.session, "admin").as_actor()
        accounts.disable_user(factory.session, admin, "police_sup")
        factory.session.commit()
    with time_machine.travel("2026-11-23 11:05 +0800", tick=True):
        for _ in range(accounts.MAX_FAILED_LOGINS):  # someone locked out, to show it
            accounts.sign_in(factory.session, "bank1", "wrong")
        factory.session.commit()
        for path, lang, name in (("/admin/users", "zh", "admin-users-zh-1280.png"),
                                 ("/admin/calendar", "zh", "admin-calendar-zh-1280.png"),
                                 ("/admin/definitions", "en", "admin-definitions-en-1280.png")):
            context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
            page = context.new_page()
            sign_in(page, "admin", PASSWORD, path=f"/?lang={lang}")
            page.wait_for_url("**/dashboard")
            page.goto(path)
            page.screenshot(path=IMAGES / name, full_page=True)
            context.close()
