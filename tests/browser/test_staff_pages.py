"""Signing in, the role homes, the language switch and sign-out, in a real browser."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

from .conftest import sign_in

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("role", "department", "home", "heading"), [
    ("clerk", "taxation", "/queue", "待办队列 · 税务"),
    ("clerk", "service_window", "/queue", "待办队列 · 综合窗口"),
    ("supervisor", "market_regulation", "/board", "超时督办 · 市场监管"),
    ("admin", None, "/dashboard", "统计总览"),
])
def test_each_role_lands_on_its_home(page, live_server, factory, role, department, home, heading):
    user = factory.actor(role, department)
    sign_in(page, user.username, PASSWORD)
    expect(page).to_have_url(live_server + home)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    page.goto("/")  # signed in, the sign-in page sends you home again
    expect(page).to_have_url(live_server + home)


def test_wrong_passwords_are_refused_then_lock_the_account(page, live_server, factory):
    user = factory.clerk("taxation")
    sign_in(page, user.username, "not the password")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("用户名或密码错误。")
    expect(page).to_have_url(live_server + "/")
    expect(page.get_by_label("用户名")).to_have_value(user.username)
    for _ in range(4):  # the fifth wrong password in a row locks
        page.get_by_label("密码").fill("still not it")
        page.get_by_role("button", name="登录").click()
    expect(alert).to_contain_text("连续5次密码错误，账号已锁定，请15分钟后再试。")
    page.get_by_label("密码").fill(PASSWORD)  # even the right password waits out the lock
    page.get_by_role("button", name="登录").click()
    expect(alert).to_contain_text("账号已锁定")
    expect(page).to_have_url(live_server + "/")


def test_an_unknown_user_reads_like_a_wrong_password_and_empty_fields_say_what_is_missing(page, factory):
    sign_in(page, "nobody-here", "whatever")
    expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误。")
    page.goto("/?lang=en")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#username-error")).to_have_text("Enter your username.")
    expect(page.locator("#password-error")).to_have_text("Enter your password.")
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")


def test_english_is_chosen_once_and_kept_until_switched_back(page, live_server, factory):
    user = factory.clerk("taxation")
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff sign-in")
    sign_in(page, user.username, PASSWORD)  # back at a plain "/": English is remembered
    expect(page.get_by_role("heading", level=1)).to_have_text("Work queue · Taxation")
    page.goto("/queue")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("link", name="中文").click()
    expect(page).to_have_url(live_server + "/queue?lang=zh")
    expect(page.get_by_role("heading", level=1)).to_have_text("待办队列 · 税务")
    page.goto("/queue")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def test_sign_out_ends_the_session(page, live_server, factory):
    user = factory.actor("supervisor", "taxation")
    sign_in(page, user.username, PASSWORD)
    expect(page).to_have_url(live_server + "/board")
    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(live_server + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("工作人员登录")
    page.goto("/board")
    expect(page).to_have_url(re.compile(re.escape(live_server) + r"/\?next=%2Fboard$"))
    sign_in(page, user.username, PASSWORD, path="/?next=%2Fboard")  # and back where it wanted to go
    expect(page).to_have_url(live_server + "/board")


def test_a_taxation_clerk_sees_taxation_steps_only(page, factory):
    at_market = factory.case("in_progress", company={**_company("广州市天河区云帆贸易有限公司")})
    at_tax = factory.case("in_progress")
    factory.finish_steps(at_tax, "registration")
    factory.session.commit()
    sign_in(page, factory.clerk("taxation").username, PASSWORD)
    table = page.get_by_role("table", name=re.compile("待办事项 1 项"))
    expect(table).to_be_visible()
    row = table.get_by_role("row", name=re.compile(at_tax.case_no))
    expect(row).to_contain_text("涉税信息确认")
    expect(row).to_contain_text("待认领")
    expect(row).to_contain_text("正常")
    expect(page.get_by_text(at_market.case_no)).to_have_count(0)
    expect(page.get_by_text("设立登记")).to_have_count(0)


def _company(name: str) -> dict:
    return {"name": name, "kind": "llc", "registered_capital": "1000000.00",
            "address": "广州市天河区天河路1号", "business_scope": "贸易"}
