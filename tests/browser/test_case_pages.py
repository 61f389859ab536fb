"""The case page: one case carried from acceptance to delivery by five people, through the pages alone."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, outputs_for
from workflow import operations as ops, queries

from .conftest import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def people(browser, live_server):
    """A signed-in page (own browser context, English) per user; closed at the end."""
    contexts = []

    def open_as(user):
        context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        sign_in(page, user.username, PASSWORD, path="/?lang=en")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        return page

    yield open_as
    for context in contexts:
        context.close()


def _state(page, value: str, text: str) -> None:
    state = page.locator(".case-state")
    expect(state).to_have_attribute("data-state", value)
    expect(state).to_have_text(text)


def _claim_and_complete(page, case_no: str, key: str, fill) -> None:
    page.goto(f"/cases/{case_no}")
    card = page.locator(f"#step-{key}")
    card.get_by_role("button", name="Claim", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("You claimed the step.")
    card = page.locator(f"#step-{key}")
    expect(card.locator(".step-state")).to_have_attribute("data-state", "in_progress")
    fill(card.get_by_role("group", name="Results of this step"))
    card.get_by_role("button", name="Complete", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("The step is complete.")
    expect(page.locator(f"#step-{key} .step-state")).to_have_attribute("data-state", "done")


def test_five_people_carry_a_case_from_acceptance_to_delivery(factory, people):
    case = factory.case("submitted")
    no = case.case_no
    window = people(factory.window)
    window.goto(f"/cases/{no}")
    _state(window, "submitted", "Submitted, not yet accepted")
    window.get_by_label("Materials to supply later (optional)").fill("股东会决议原件")
    window.get_by_role("button", name="Accept", exact=True).click()
    expect(window.get_by_role("status")).to_have_text("The case was accepted; its clock has started.")
    _state(window, "in_progress", "In progress")
    expect(window.get_by_text("股东会决议原件")).to_be_visible()

    registration = outputs_for("registration")

    def fill_registration(form):
        form.get_by_label("Unified social credit code").fill(registration["uscc"])
        form.get_by_label("Licence number").fill(registration["licence_no"])

    def fill_seal(form):
        form.get_by_label("Filing number").fill("GA000000123")
        seals = form.get_by_role("group", name="Seals made")
        seals.get_by_label("Company seal").check()
        seals.get_by_label("Finance seal").check()

    def fill_tax(form):
        form.get_by_label("Taxpayer type").select_option("small_scale")
        form.get_by_label("Tax UKey issued").check()

    def fill_invoice(form):
        form.get_by_label("Invoice kind").select_option("digital_ordinary")
        form.get_by_label("Quantity").fill("25")

    def fill_bank(form):
        form.get_by_label("Bank").fill("中国工商银行广州白云支行")
        form.get_by_label("Account number").fill("360200001234567890")

    _claim_and_complete(people(factory.clerk("market_regulation")), no, "registration", fill_registration)
    _claim_and_complete(people(factory.clerk("public_security")), no, "seal", fill_seal)
    taxation = people(factory.clerk("taxation"))
    _claim_and_complete(taxation, no, "tax", fill_tax)
    _claim_and_complete(taxation, no, "invoice", fill_invoice)
    bank = people(factory.clerk("bank"))
    _claim_and_complete(bank, no, "bank", fill_bank)
    _state(bank, "ready", "Ready to hand over")
    expect(bank.locator("#step-registration")).to_contain_text(registration["uscc"])
    expect(bank.locator("#step-seal")).to_contain_text("Company seal, Finance seal")

    window.goto(f"/cases/{no}")
    _state(window, "ready", "Ready to hand over")
    assert window.request.get(f"/cases/{no}/receipt.pdf").headers["content-type"] == "application/pdf"
    window.get_by_role("button", name="Deliver", exact=True).click()
    expect(window.get_by_role("status")).to_have_text("The case was delivered.")
    _state(window, "delivered", "Delivered")
    trail = window.get_by_role("table", name=re.compile("Every action on the case"))
    expect(trail.locator("tbody tr[data-action=complete]")).to_have_count(5)
    expect(trail.locator("tbody tr").last).to_contain_text("Deliver")
    expect(window.get_by_role("img", name=re.compile("one bar per step"))).to_be_visible()


def test_a_taxation_clerk_cannot_claim_registration_even_by_a_forged_post(factory, people):
    case = factory.case("in_progress")
    version = case.version
    page = people(factory.clerk("taxation"))
    page.goto(f"/cases/{case.case_no}")
    card = page.locator("#step-registration")
    expect(card.locator(".step-state")).to_have_attribute("data-state", "ready")
    expect(card.get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("button", name="Claim")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(f"/cases/{case.case_no}/steps/registration/claim",
                                 form={"csrf_token": token, "version": str(version)})
    assert response.status == 403
    factory.session.expire_all()
    again = ops.get_case(factory.session, case.case_no)
    assert (again.version, again.step("registration").state.value) == (version, "ready")
    assert [e.action for e in queries.case_events(factory.session, again)].count("claim") == 0


def test_a_double_submit_completes_the_step_once_and_says_the_case_moved_on(factory, people):
    case = factory.case("in_progress")
    clerk = factory.clerk("market_regulation")
    ops.claim_step(factory.session, case, "registration", clerk)
    factory.session.commit()
    first = people(clerk)
    second = first.context.new_page()  # the same clerk, the same form open in a second tab
    for page in (first, second):
        page.goto(f"/cases/{case.case_no}")
    registration = outputs_for("registration")
    form = first.locator("#step-registration")
    form.get_by_label("Unified social credit code").fill("91440101MA5CXXXX0")
    form.get_by_label("Licence number").fill(registration["licence_no"])
    with first.expect_response(lambda r: r.request.method == "POST") as invalid:
        form.get_by_role("button", name="Complete", exact=True).click()
    assert invalid.value.status == 422
    field = first.locator("#step-registration").get_by_label("Unified social credit code")
    expect(field).to_have_value("91440101MA5CXXXX0")  # what was typed is kept, the error beside it
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(first.locator("#registration-uscc-error")).to_be_visible()
    for page in (first, second):
        form = page.locator("#step-registration")
        form.get_by_label("Unified social credit code").fill(registration["uscc"])
        form.get_by_label("Licence number").fill(registration["licence_no"])
    first.locator("#step-registration").get_by_role("button", name="Complete", exact=True).click()
    expect(first.get_by_role("status")).to_have_text("The step is complete.")
    with second.expect_response(lambda r: r.request.method == "POST") as stale:
        second.locator("#step-registration").get_by_role("button", name="Complete", exact=True).click()
    assert stale.value.status == 412
    expect(second.get_by_role("alert")).to_contain_text("This case has moved on")
    expect(second.locator("#step-registration .step-state")).to_have_attribute("data-state", "done")
    factory.session.expire_all()
    events = queries.case_events(factory.session, ops.get_case(factory.session, case.case_no))
    assert [(e.action, e.step) for e in events].count(("complete", "registration")) == 1
