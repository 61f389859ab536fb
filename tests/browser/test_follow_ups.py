"""A poor rating on the tracking page becomes a follow-up on the supervisors' board, closed with a reply."""
from __future__ import annotations

import re

import pytest
import time_machine
from playwright.sync_api import expect
from sqlalchemy import select

from tests.factories import PASSWORD
from workflow import tracking
from workflow.models import FollowUp

from .conftest import sign_in

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}
COMMENT = "窗口工作人员没有说明需要补交什么材料。"
REPLY = "已电话回访申请人，说明了补交材料的要求，并已提醒窗口工作人员。"


def _context(browser, live_server, viewport=WIDE):
    context = browser.new_context(base_url=live_server, viewport=viewport)
    context.set_default_timeout(10_000)
    return context


def _follow_ups(page):
    return page.get_by_role("region", name="Follow-ups of poor ratings")


def test_a_poor_rating_is_followed_up_on_the_board_and_closed_with_a_reply(browser, live_server, factory):
    boss = factory.actor("supervisor", "market_regulation")
    with time_machine.travel("2026-11-23 10:00 +0800", tick=False) as traveller:  # a Monday morning
        case = factory.case("delivered")

        applicant = _context(browser, live_server, PHONE)
        page = applicant.new_page()
        page.goto(f"/track?case_no={case.case_no}&code={case.tracking_code}&lang=en")
        page.get_by_label("1 Very dissatisfied").check()
        page.get_by_label("Comment (optional)").fill(COMMENT)
        page.get_by_role("button", name="Send my rating").click()
        expect(page.get_by_role("status")).to_have_text("Thank you for rating our service.")
        expect(page.get_by_role("region", name="Your rating")).to_contain_text(
            "The hall's supervisors will look into what went wrong within 5 working days.")
        applicant.close()

        staff = _context(browser, live_server)
        page = staff.new_page()
        sign_in(page, boss.username, PASSWORD, path="/?lang=en")
        page.wait_for_url("**/board")
        items = _follow_ups(page).locator("li.follow-up-item")
        expect(items).to_have_count(1)
        item = items.first
        expect(item.get_by_role("link", name=case.case_no)).to_have_attribute("href", f"/cases/{case.case_no}")
        expect(item).to_contain_text("Rated 1/5")
        expect(item.locator("blockquote")).to_have_text(COMMENT)
        # Five working days of 7 hours from Monday 10:00: the next Monday at 10:00, Beijing time.
        expect(item.locator(".follow-up-due")).to_have_text("Due by 2026-11-30 10:00")
        expect(item.get_by_text("Overdue")).to_have_count(0)

        # An empty reply is refused beside the field; nothing is closed.
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            item.get_by_role("button", name=f"Close {case.case_no}").click()
        assert answer.value.status == 422
        item = _follow_ups(page).locator("li.follow-up-item").first
        reply = item.get_by_label(f"Reply {case.case_no}")
        expect(reply).to_have_attribute("aria-invalid", "true")
        expect(item.locator(".field-error")).to_have_text("Write what the hall found and did.")

        traveller.move_to("2026-12-01 09:00 +0800")  # a working day past the due date
        page.goto("/board?lang=en")
        item = _follow_ups(page).locator("li.follow-up-item").first
        expect(item.locator(".follow-up-due .status")).to_have_text("Overdue")  # a word, not only a colour

        item.get_by_label(f"Reply {case.case_no}").fill(REPLY)
        item.get_by_role("button", name=f"Close {case.case_no}").click()
        expect(page.get_by_role("status")).to_have_text("The follow-up was closed with your reply.")
        expect(_follow_ups(page).locator("li.follow-up-item")).to_have_count(0)
        expect(_follow_ups(page)).to_contain_text("No follow-ups are open.")

        # The case's audit trail has the applicant's rating and the supervisor's closing.
        page.goto(f"/cases/{case.case_no}")
        trail = page.locator("table.audit tbody")
        expect(trail.locator("tr[data-action=rate]")).to_have_count(1)
        expect(trail.locator("tr[data-action=rate]")).to_contain_text("applicant")
        expect(trail.locator("tr[data-action=follow_up_closed]")).to_have_count(1)
        expect(trail.locator("tr[data-action=follow_up_closed]")).to_contain_text(boss.username)
        staff.close()

    factory.session.expire_all()
    follow_up = factory.session.scalar(select(FollowUp).where(FollowUp.case_id == case.id))
    assert (follow_up.closed_by, follow_up.reply) == (boss.username, REPLY)


def test_admins_see_follow_ups_a_second_close_is_refused_and_clerks_may_not_close(browser, live_server, factory):
    admin = factory.actor("admin", None)
    boss = factory.actor("supervisor", "taxation")
    clerk = factory.clerk("taxation")
    poor, fine = factory.case("delivered"), factory.case("delivered")
    tracking.rate(factory.session, poor, 2, None)
    tracking.rate(factory.session, fine, 4, "很好")  # 3 and above open no follow-up
    factory.session.commit()

    contexts = [_context(browser, live_server) for _ in range(3)]
    pages = [context.new_page() for context in contexts]
    for page, user in zip(pages, (admin, boss, clerk)):
        sign_in(page, user.username, PASSWORD, path="/?lang=en")
    by_admin, by_boss, by_clerk = pages
    for page in (by_admin, by_boss):
        page.goto("/board?lang=en")
        items = _follow_ups(page).locator("li.follow-up-item")
        expect(items).to_have_count(1)
        expect(items.first).to_contain_text(poor.case_no)
        expect(items.first).to_contain_text("No comment was given.")
        expect(page.get_by_text(fine.case_no)).to_have_count(0)

    follow_up_id = int(_follow_ups(by_admin).locator("li.follow-up-item").first.get_attribute("data-follow-up"))
    token = by_clerk.locator("input[name=csrf_token]").first.get_attribute("value")
    response = by_clerk.request.post(f"/board/follow-ups/{follow_up_id}/close", form={"csrf_token": token,
                                                                                     "reply": "我来处理"})
    assert response.status == 403

    _follow_ups(by_admin).get_by_label(re.compile("^Reply")).fill("已回访。")
    _follow_ups(by_admin).get_by_role("button", name=re.compile("^Close")).click()
    expect(by_admin.get_by_role("status")).to_have_text("The follow-up was closed with your reply.")

    _follow_ups(by_boss).get_by_label(re.compile("^Reply")).fill("我也回访了。")
    with by_boss.expect_response(lambda r: r.request.method == "POST") as answer:
        _follow_ups(by_boss).get_by_role("button", name=re.compile("^Close")).click()
    assert answer.value.status == 409
    expect(by_boss.get_by_role("alert")).to_have_text(
        "Someone else closed this follow-up first; it is no longer on the board.")
    expect(_follow_ups(by_boss).locator("li.follow-up-item")).to_have_count(0)
    for context in contexts:
        context.close()

    factory.session.expire_all()
    follow_up = factory.session.get(FollowUp, follow_up_id)
    assert (follow_up.closed_by, follow_up.reply) == (admin.username, "已回访。")
