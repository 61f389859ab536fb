"""Pages that keep themselves current, and the supervisor's board: notifications and reassignment."""
from __future__ import annotations

import re

import pytest
import time_machine
from playwright.sync_api import expect

from tests.factories import PASSWORD
from workflow import accounts, operations as ops, timers
from workflow.clock import utcnow

from .conftest import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def live(app):
    """Refresh every second instead of every 15, so a test sees several rounds."""
    app.config["LIVE_REFRESH_SECONDS"] = 1


def _mark(page) -> None:
    """Leave a mark in the window: if it survives, the page was never reloaded."""
    page.evaluate("window.__notReloaded = true")


def _still_marked(page) -> bool:
    return page.evaluate("window.__notReloaded === true")


def test_work_arriving_and_being_claimed_shows_in_the_queue_without_a_reload(page, factory, live):
    taxation = factory.clerk("taxation")
    sign_in(page, taxation.username, PASSWORD, path="/?lang=en")
    page.wait_for_url("**/queue")
    expect(page.get_by_text("Nothing is waiting for your department.")).to_be_visible()
    _mark(page)

    case = factory.case("in_progress")
    factory.finish_steps(case, "registration")  # the tax step becomes ready
    factory.session.commit()
    row = page.locator("tbody tr", has_text=case.case_no)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Waiting to be claimed")
    expect(row.locator(".remaining")).to_have_text(re.compile(r"^\d+ min left$"))

    ops.claim_step(factory.session, case, "tax", taxation)
    factory.session.commit()
    expect(row).to_contain_text("Claimed")
    expect(row).to_contain_text(taxation.username)  # the holder's display name is the username here
    assert _still_marked(page)


def test_the_case_page_shows_others_actions_and_keeps_what_is_being_typed(page, factory, live):
    case = factory.case("in_progress")
    sign_in(page, factory.window.username, PASSWORD, path=f"/cases/{case.case_no}?lang=en")
    reason = page.locator("#suspend-reason")
    reason.fill("缺少股东会决议原件")
    _mark(page)
    notice = page.locator("[data-live-changed]")
    expect(notice).to_be_hidden()

    market = factory.clerk("market_regulation")
    ops.claim_step(factory.session, case, "registration", market)
    factory.session.commit()
    facts = page.locator("#step-registration dl")
    expect(facts.locator(".step-state")).to_have_attribute("data-state", "in_progress")
    expect(facts).to_contain_text(market.username)
    expect(notice).to_be_visible()
    expect(notice.get_by_role("link", name="Reload it before acting.")).to_be_visible()
    expect(page.locator("table.audit tbody tr[data-action=claim]")).to_have_count(1)
    expect(reason).to_have_value("缺少股东会决议原件")
    assert _still_marked(page)


def test_a_supervisor_sees_the_breach_on_the_board_reads_it_and_hands_the_step_to_another_clerk(
        browser, live_server, factory):
    market = factory.clerk("market_regulation")
    boss = factory.actor("supervisor", "market_regulation")
    colleague = accounts.create_user(factory.session, "market-colleague", PASSWORD, "clerk", "market_regulation",
                                     display_name="李四")
    factory.session.commit()
    with time_machine.travel("2026-11-23 09:00 +0800", tick=False) as traveller:
        case = factory.case("in_progress")
        ops.claim_step(factory.session, case, "registration", market)
        factory.session.commit()
        traveller.move_to("2026-11-23 11:00 +0800")  # 120 working minutes of a 90-minute target
        while timers.fire_due(factory.session, utcnow()):
            factory.session.commit()
        factory.session.commit()

        context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
        page = context.new_page()
        sign_in(page, boss.username, PASSWORD, path="/?lang=en")
        page.wait_for_url("**/board")
        row = page.locator("tbody tr", has_text=case.case_no)
        expect(row).to_contain_text("Breached")
        expect(row).to_contain_text("30 min over")
        expect(row).to_contain_text(market.username)
        notices = page.get_by_role("region", name="Notifications")
        expect(notices.locator("li[data-kind=sla_breach]")).to_have_count(1)
        expect(notices.locator("li[data-kind=sla_warning]")).to_have_count(1)
        notices.locator("li[data-kind=sla_breach]").get_by_role("button", name=re.compile("Mark as read")).click()
        expect(page.get_by_role("status")).to_have_text("Marked as read.")
        expect(notices.locator("li[data-kind=sla_breach]")).to_have_count(0)

        row.get_by_role("link", name=case.case_no).click()
        page.wait_for_url(f"**/cases/{case.case_no}#step-registration")
        card = page.locator("#step-registration")
        card.get_by_label("Hand to").select_option("market-colleague")
        card.get_by_role("button", name="Reassign").click()
        expect(page.get_by_role("status")).to_have_text("The step was handed to another clerk.")
        expect(page.locator("#step-registration dl")).to_contain_text("李四")
        trail = page.locator("table.audit tbody tr[data-action=reassign]")
        expect(trail).to_have_count(1)
        context.close()

    factory.session.expire_all()
    assert case.step("registration").assignee_id == colleague.id


def test_a_clerk_is_not_offered_reassignment_and_a_forged_post_changes_nothing(page, factory, client):
    case = factory.case("in_progress")
    market = factory.clerk("market_regulation")
    ops.claim_step(factory.session, case, "registration", market)
    factory.session.commit()
    accounts.create_user(factory.session, "market-other", PASSWORD, "clerk", "market_regulation")
    factory.session.commit()
    sign_in(page, market.username, PASSWORD, path=f"/cases/{case.case_no}?lang=en")
    expect(page.locator("#step-registration").get_by_role("button", name="Complete")).to_be_visible()
    expect(page.locator("#step-registration").get_by_role("button", name="Reassign")).to_have_count(0)
    version = case.version
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(f"/cases/{case.case_no}/steps/registration/reassign",
                                 form={"csrf_token": token, "version": str(version), "assignee": "market-other"})
    assert response.status == 403
    factory.session.expire_all()
    assert case.step("registration").assignee_id == market.user_id and case.version == version
