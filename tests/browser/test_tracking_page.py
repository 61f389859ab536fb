"""The applicant's tracking page on a phone: live updates while clerks act, rating once, no personal data.

Screenshots for docs/images are taken only with ``SCREENSHOTS=1`` (they write into the working tree).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import time_machine
from playwright.sync_api import expect
from sqlalchemy import select

from tests.factories import application, outputs_for
from workflow import operations as ops
from workflow.models import Rating

pytestmark = pytest.mark.browser

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
PHONE = {"width": 390, "height": 844}
ORDER = ("registration", "seal", "bank", "tax", "invoice")
DEPARTMENTS = {"registration": "market_regulation", "seal": "public_security", "tax": "taxation",
               "invoice": "taxation", "bank": "bank"}


@pytest.fixture
def live(app):
    """Refresh every second instead of every 15, so a test sees several rounds."""
    app.config["LIVE_REFRESH_SECONDS"] = 1


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


class Clerks:
    """The hall's clerks acting through the REST API (bearer tokens), as their own systems would."""

    def __init__(self, client, factory):
        self.client, self.factory, self.tokens = client, factory, {}

    def post(self, department: str, path: str, body: dict | None = None):
        if department not in self.tokens:
            self.tokens[department] = self.factory.token("clerk", department)
        response = self.client.post(f"/api/v1/cases{path}", json=body or {},
                                    headers={"Authorization": f"Bearer {self.tokens[department]}"})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def claim(self, case_no: str, step: str):
        return self.post(DEPARTMENTS[step], f"/{case_no}/steps/{step}/claim")

    def complete(self, case_no: str, step: str):
        return self.post(DEPARTMENTS[step], f"/{case_no}/steps/{step}/complete", outputs_for(step))

    def deliver(self, case_no: str):
        return self.post("service_window", f"/{case_no}/deliver", {"method": "counter"})


@pytest.fixture
def clerks(client, factory):
    return Clerks(client, factory)


def _open(page, case_no: str, code: str, lang: str = "en") -> None:
    """Type the number and code into the form, as from the slip (the code in lower case: it still works)."""
    page.goto(f"/track?lang={lang}" if lang == "en" else "/track")
    page.get_by_label("Case number" if lang == "en" else "办件编号").fill(case_no)
    page.get_by_label("Tracking code" if lang == "en" else "查询码").fill(code.lower())
    with page.expect_navigation():  # a test may read the whole page next (README.md, "Tests")
        page.get_by_role("button", name="Show my case" if lang == "en" else "查询").click()


def _step(page, key: str):
    return page.locator(f"li.track-step[data-step={key}]")


def test_an_applicant_watches_the_case_move_and_rates_it_once(phone, factory, clerks, live):
    page = phone
    case = factory.case("in_progress")  # accepted at the window by the factory
    _open(page, case.case_no, case.tracking_code)
    expect(page.get_by_role("heading", level=1)).to_contain_text(case.company_name)
    expect(page.get_by_role("heading", level=1)).to_contain_text(case.case_no)
    expect(page.locator(".track-state")).to_have_text("Being processed")
    expect(_step(page, "registration")).to_contain_text("Market regulation")
    expect(_step(page, "registration")).to_contain_text("Queued at the agency")
    expect(_step(page, "invoice")).to_contain_text("Waiting for earlier steps")
    expect(page.locator(".track-estimate time")).to_have_count(1)
    expect(page.locator(".track-deadline time")).to_have_count(1)
    page.evaluate("window.__mark = true")  # survives only if the page is never reloaded

    clerks.claim(case.case_no, "registration")
    expect(_step(page, "registration")).to_have_attribute("data-state", "in_progress")
    expect(_step(page, "registration")).to_contain_text("Being processed")
    clerks.complete(case.case_no, "registration")
    expect(_step(page, "registration")).to_have_attribute("data-state", "done")
    expect(_step(page, "registration")).to_contain_text(re.compile(r"Done · \d\d-\d\d \d\d:\d\d"))
    expect(_step(page, "seal")).to_contain_text("Queued at the agency")
    for step in ORDER[1:]:
        clerks.claim(case.case_no, step)
        clerks.complete(case.case_no, step)
    expect(page.locator(".track-state")).to_have_text("Ready: everything is done")
    expect(page.locator("li.track-step[data-state=done]")).to_have_count(5)
    assert page.evaluate("window.__mark") is True

    # Handed over: the page says so, and offers the rating after a reload (a form is never swapped in).
    clerks.deliver(case.case_no)
    expect(page.locator(".track-state")).to_have_text("Handed over")
    notice = page.locator("[data-live-changed]")
    expect(notice).to_be_visible()
    assert page.evaluate("window.__mark") is True
    notice.get_by_role("link", name="Reload this page to rate our service.").click()
    form = page.locator("form.rating-form")
    expect(form).to_be_visible()

    # A second tab holds the form too: it will try to rate again after the first has.
    second = page.context.new_page()
    second.goto(page.url)
    expect(second.locator("form.rating-form")).to_be_visible()

    scores = form.get_by_role("group", name=re.compile("Your score"))
    scores.get_by_label("2 Dissatisfied").check()
    form.get_by_label("Comment (optional)").fill("等了很久，窗口说明不清楚。")
    form.get_by_role("button", name="Send my rating").click()
    expect(page.get_by_role("status")).to_have_text("Thank you for rating our service.")
    rating = page.get_by_role("region", name="Your rating")
    expect(rating).to_contain_text(re.compile(r"You rated this case 2/5 \(Dissatisfied\) on \d{4}-\d\d-\d\d \d\d:\d\d\."))
    expect(page.locator("form.rating-form")).to_have_count(0)

    second.get_by_label("5 Very satisfied").check()
    with second.expect_response(lambda r: r.url.endswith("/track/rating?lang=en")) as answer:
        second.get_by_role("button", name="Send my rating").click()
    assert answer.value.status == 409
    expect(second.get_by_role("alert")).to_have_text(
        "This case cannot be rated: only a case whose documents have been handed over can be rated, and only once.")
    expect(second.get_by_role("region", name="Your rating")).to_contain_text("You rated this case 2/5")

    factory.session.expire_all()
    ratings = factory.session.scalars(select(Rating).where(Rating.case_id == case.id)).all()
    assert [(r.score, r.comment) for r in ratings] == [(2, "等了很久，窗口说明不清楚。")]


def test_the_page_shows_no_personal_data(phone, factory):
    body = application()  # what the factory's case was made from
    case = factory.case("in_progress")
    market = factory.clerk("market_regulation")
    ops.claim_step(factory.session, case, "registration", market)
    factory.session.commit()
    for lang in ("zh", "en"):
        response = phone.goto(f"/track?case_no={case.case_no}&code={case.tracking_code}&lang={lang}")
        assert response.status == 200
        assert response.headers["referrer-policy"] == "no-referrer"
        html = phone.content()
        assert case.company_name in html
        people = [body["legal_representative"]] + body["shareholders"]
        secrets = [p["name"] for p in people] + [p["id_number"] for p in people] + [
            body["legal_representative"]["phone"], market.username, body["company"]["address"]]
        assert [secret for secret in secrets if secret in html] == []


def test_chinese_by_default_and_english_by_link(phone, factory):
    case = factory.case("suspended")
    _open(phone, case.case_no, case.tracking_code, lang="zh")
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(phone.get_by_role("heading", name="办理进度")).to_be_visible()
    expect(phone.locator(".track-state")).to_have_text("已中止：等待您补正材料")
    expect(phone.locator(".track-deadline")).to_have_text("暂停计时")
    expect(phone.locator(".track-next")).to_contain_text("等待您补正材料期间暂停计时")
    expect(_step(phone, "registration")).to_contain_text("市场监管")

    phone.get_by_role("link", name="English").click()
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    expect(phone.get_by_role("heading", name="Where your case is")).to_be_visible()
    expect(phone.locator(".track-state")).to_have_text("Paused: waiting for materials from you")
    expect(phone.locator(".track-deadline")).to_have_text("The clock is stopped")
    expect(phone.locator(".track-estimate")).to_have_text("No estimate while the clock is stopped")
    expect(phone.locator(".hint").first).to_contain_text("Working time counts only the hall's opening hours")
    expect(_step(phone, "registration")).to_contain_text("Market regulation")
    # Without ?lang= the next visit is Chinese again: the language is not remembered for the public.
    phone.goto(f"/track?case_no={case.case_no}&code={case.tracking_code}")
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")


def test_materials_to_bring_later_are_counted_not_named(phone, factory):
    case = ops.submit_case(factory.session, factory.window, application())
    ops.accept_case(factory.session, case, factory.window, missing_materials=["股东会决议原件", "租赁合同"])
    factory.session.commit()
    phone.goto(f"/track?case_no={case.case_no}&code={case.tracking_code}&lang=en")
    expect(phone.locator(".track-summary")).to_contain_text(
        "2 items, as agreed at the window when the case was accepted")
    assert "股东会决议原件" not in phone.content()


def test_a_wrong_code_and_an_unknown_number_get_the_same_404_then_429(phone, app, factory):
    app.config["TRACK_MISS_LIMIT"] = "3 per minute"
    case = factory.case("in_progress")
    answers = []
    for number, code in ((case.case_no, "ABCDEFGHJK"), ("KB20991231-9999", case.tracking_code)):
        _open(phone, number, code)
        expect(phone.get_by_role("alert")).to_have_text(
            "No case matches this case number and tracking code. Check both against your acceptance slip and try again.")
        expect(phone.get_by_label("Case number")).to_have_value(number)  # kept; the code is not
        expect(phone.get_by_label("Tracking code")).to_have_value("")
        answers.append(phone.locator("main").inner_html().replace(number, "…"))
    assert answers[0] == answers[1]
    response = phone.goto(f"/track?case_no={case.case_no}&code=WRONGCODE2&lang=en")
    assert response.status == 404
    assert response.headers["referrer-policy"] == "no-referrer"
    response = phone.goto(f"/track?case_no={case.case_no}&code={case.tracking_code}&lang=en")
    assert response.status == 429  # even the right code, once this client has guessed too often
    assert response.headers["referrer-policy"] == "no-referrer" and "retry-after" in response.headers
    expect(phone.get_by_role("heading", name="Too many requests")).to_be_visible()


def test_a_rating_without_a_score_is_refused_beside_the_field_with_the_comment_kept(phone, factory):
    case = factory.case("delivered")
    phone.goto(f"/track?case_no={case.case_no}&code={case.tracking_code}&lang=en")
    form = phone.locator("form.rating-form")
    form.get_by_label("Comment (optional)").fill("办得很快")
    with phone.expect_response(lambda r: "/track/rating" in r.url) as answer:
        form.get_by_role("button", name="Send my rating").click()
    assert answer.value.status == 422
    expect(phone.get_by_role("alert")).to_have_text("The rating was not saved: correct the fields marked below.")
    expect(phone.locator("#score-error")).to_have_text("Choose a score from 1 to 5.")
    expect(phone.get_by_label("Comment (optional)")).to_have_value("办得很快")
    phone.get_by_label("4 Satisfied").check()
    phone.get_by_role("button", name="Send my rating").click()
    expect(phone.get_by_role("region", name="Your rating")).to_contain_text("You rated this case 4/5 (Satisfied)")


def test_a_case_not_yet_delivered_offers_no_rating_and_refuses_a_forged_one(phone, factory):
    case, other = factory.case("ready"), factory.case("delivered")
    phone.goto(f"/track?case_no={case.case_no}&code={case.tracking_code}&lang=en")
    expect(phone.locator(".track-state")).to_have_text("Ready: everything is done")
    expect(phone.locator("form.rating-form")).to_have_count(0)
    forged = {"case_no": case.case_no, "code": case.tracking_code, "score": "5"}
    response = phone.request.post("/track/rating?lang=en", form=forged)
    assert response.status == 400  # no CSRF token: refused before anything is looked at
    phone.goto(f"/track?case_no={other.case_no}&code={other.tracking_code}&lang=en")
    token = phone.locator("form.rating-form input[name=csrf_token]").get_attribute("value")
    response = phone.request.post("/track/rating?lang=en", form=dict(forged, csrf_token=token))
    assert response.status == 409
    assert "only a case whose documents have been handed over can be rated" in response.text()
    response = phone.request.post("/track/rating?lang=en", form=dict(forged, csrf_token=token, code="ABCDEFGHJK"))
    assert response.status == 404
    factory.session.expire_all()
    assert factory.session.scalars(select(Rating)).all() == []


# ------------------------------------------------------------------ screenshots for docs/images

@pytest.mark.skipif(not os.environ.get("SCREENSHOTS"), reason="set SCREENSHOTS=1 to retake docs/images")
def test_screenshots(browser, live_server, factory):
    IMAGES.mkdir(parents=True, exist_ok=True)
    with time_machine.travel("2026-11-23 09:05 +0800", tick=False) as traveller:
        done = factory.case("in_progress", company=dict(application()["company"], name="广州市海珠区琶洲数智科技有限公司"))
        for step, at in (("registration", "10:10"), ("seal", "10:40"), ("bank", "10:55"), ("tax", "11:05"),
                         ("invoice", "11:40")):
            traveller.move_to(f"2026-11-23 {at} +0800")
            factory.finish_steps(done, step)
        ops.deliver_case(factory.session, done, factory.window, method="counter")
        factory.session.commit()
        traveller.move_to("2026-11-24 09:00 +0800")
        shown = factory.case("in_progress", company=dict(application()["company"], name="广州市白云区示例科技有限公司"))
        traveller.move_to("2026-11-24 10:15 +0800")
        factory.finish_steps(shown, "registration")
        traveller.move_to("2026-11-24 10:40 +0800")
        factory.finish_steps(shown, "seal")
        ops.claim_step(factory.session, shown, "tax", factory.clerk("taxation"))
        factory.session.commit()
        traveller.move_to("2026-11-24 10:50 +0800")
        for lang, case, name in (("zh", shown, "track-zh-390.png"), ("en", shown, "track-en-390.png"),
                                 ("zh", done, "track-rate-zh-390.png")):
            context = browser.new_context(base_url=live_server, viewport=PHONE, device_scale_factor=1)
            page = context.new_page()
            page.goto(f"/track?case_no={case.case_no}&code={case.tracking_code}&lang={lang}")
            page.screenshot(path=IMAGES / name, full_page=True)
            context.close()
