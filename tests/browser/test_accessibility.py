"""Accessibility of the staff pages and their error pages, measured in chromium.

Keyboard alone from sign-in to a claimed step, with a visible focus ring at every stop; no sideways
scrolling at 390 px and a name on every control; WCAG AA contrast computed in the page; the error
pages in the site's layout and language. The checks run on a hall seen at a fixed instant, so every
time-limit badge (on track, warning, breached, not started, stopped) is on some page.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import time_machine
from playwright.sync_api import expect
from werkzeug.exceptions import BadRequest, MethodNotAllowed, RequestEntityTooLarge, TooManyRequests

from tests.factories import PASSWORD
from workflow import errors as wf, operations as ops

from .conftest import sign_in

browser_test = pytest.mark.browser
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}

# ------------------------------------------------------------------ what the page measures

FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el), box = el.getBoundingClientRect();
  return {tag: el.tagName.toLowerCase(), id: el.id, href: el.getAttribute("href"),
          text: (el.innerText || el.value || "").trim().slice(0, 40),
          focusVisible: el.matches(":focus-visible"), outlineStyle: style.outlineStyle,
          outlineWidth: parseFloat(style.outlineWidth), outlineColor: style.outlineColor,
          surround: window.__a11y.background(el.parentElement),
          inView: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
                  && box.top < innerHeight && box.left < innerWidth};
}"""

# Installed in every page: colour parsing, WCAG relative luminance and the effective background
# (the element's own and its ancestors' background colours, composed until an opaque one).
HELPERS = """
window.__a11y = (() => {
  const parse = (value) => {
    const m = /rgba?\\(([^)]*)\\)/.exec(value || "");
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const channel = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = (c) => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const background = (el) => {
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    return layers.reverse().reduce((base, layer) => over(layer, base), [255, 255, 255, 1]);
  };
  const ratio = (fg, bg) => {
    const [a, b] = [luminance(over(fg, bg)), luminance(bg)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  };
  return {parse, background, ratio};
})();
"""

CONTRAST = """() => {
  const {parse, background, ratio} = window.__a11y;
  const failures = [];
  let checked = 0;
  const seen = (el) => {
    if (!el.checkVisibility({visibilityProperty: true, opacityProperty: true})) return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && box.bottom + scrollY > 0 && box.right + scrollX > 0;
  };
  const large = (style) => {
    const size = parseFloat(style.fontSize), weight = parseInt(style.fontWeight, 10);
    return size >= 24 || (size >= 18.66 && weight >= 700);
  };
  const check = (el, fg, bg, style, what) => {
    checked += 1;
    const need = large(style) ? 3 : 4.5, got = ratio(fg, bg);
    if (got < need) failures.push({what, text: (el.textContent || el.value || "").trim().slice(0, 50),
      cls: el.className && el.className.baseVal !== undefined ? el.className.baseVal : el.className,
      color: style.color, background: `rgb(${bg.slice(0, 3).join(", ")})`, ratio: +got.toFixed(2), need});
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (["SCRIPT", "STYLE", "TITLE", "DESC", "svg"].includes(el.tagName) || el.matches(":disabled") || !seen(el)) continue;
    const style = getComputedStyle(el);
    const bg = background(el instanceof SVGElement ? el.closest("figure, div, section") : el);
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (el instanceof SVGElement) {
      if (el.tagName === "text" && ownText) check(el, parse(style.fill), bg, style, "svg text");
      continue;
    }
    if (ownText || (el.matches("input:not([type=checkbox]):not([type=radio]), select, textarea") && el.value)) {
      check(el, parse(style.color), bg, style, "text");
    }
    for (const pseudo of ["::before", "::after"]) {
      const p = getComputedStyle(el, pseudo);
      if (p.content && !["none", "normal", '""'].includes(p.content) && p.display !== "none") {
        check(el, parse(p.color), bg, p, "text" + pseudo);
      }
    }
  }
  return {checked, failures};
}"""

# A status badge: a text label (never colour alone), and a border 3:1 against what surrounds it.
BADGES = """() => [...document.querySelectorAll(".status")].map((el) => {
  const {parse, background, ratio} = window.__a11y;
  const style = getComputedStyle(el), icon = getComputedStyle(el, "::before").content;
  return {cls: el.className, label: el.textContent.trim(), icon: icon === "none" ? "" : icon,
          border: +ratio(parse(style.borderTopColor), background(el.parentElement)).toFixed(2),
          borderWidth: parseFloat(style.borderTopWidth)};
})"""

UNNAMED_CONTROLS = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")].map((el) => {
  let name = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
    .map((id) => (document.getElementById(id) || {}).textContent || "").join(" ").trim();
  name = name || (el.getAttribute("aria-label") || "").trim();
  name = name || [...(el.labels || [])].map((label) => label.textContent).join(" ").trim();
  name = name || (el.getAttribute("title") || "").trim();
  return {id: el.id, name: el.name, type: el.type, label: name};
})"""

SIDEWAYS = """() => ({scrollWidth: document.documentElement.scrollWidth, innerWidth,
  widest: [...document.body.querySelectorAll("*")].filter((el) => el.getBoundingClientRect().right > innerWidth + 0.5
      && !el.closest(".table-wrap")).slice(0, 5).map((el) => el.tagName.toLowerCase() + "." + el.className)})"""


def _measure(page, script):
    page.evaluate(HELPERS)
    return page.evaluate(script)


def assert_contrast(page) -> int:
    result = _measure(page, CONTRAST)
    assert result["failures"] == [], page.url
    return result["checked"]


def assert_fits_and_names_every_control(page) -> int:
    sideways = page.evaluate(SIDEWAYS)
    assert sideways["scrollWidth"] <= sideways["innerWidth"], (page.url, sideways)
    controls = page.evaluate(UNNAMED_CONTROLS)
    assert [c for c in controls if not c["label"]] == [], page.url
    return len(controls)


# ------------------------------------------------------------------ a hall at 10:40 on a Monday

@dataclass
class Hall:
    breached: str   # a case accepted last Friday: its registration is long overdue
    warning: str    # accepted at 09:25 today: 75 of registration's 90 minutes used
    on_track: str   # accepted at 10:20
    claimed: str    # registration done at 09:00; taxation has claimed its tax step
    submitted: str  # waiting at the window to be accepted
    suspended: str


def _company(name: str) -> dict:
    return {"name": name, "kind": "llc", "registered_capital": "1000000.00",
            "address": "广州市天河区天河路1号", "business_scope": "软件开发"}


@pytest.fixture
def hall(factory):
    """Cases in every kind of time-limit state; the test then runs at Monday 10:40, Beijing time."""
    with time_machine.travel("2026-11-20 10:00 +0800", tick=False) as traveller:
        breached = factory.case("in_progress", company=_company("广州市天河区逾期示例有限公司"))
        suspended = factory.case("suspended", company=_company("广州市天河区暂停示例有限公司"))
        traveller.move_to("2026-11-23 09:00 +0800")
        claimed = factory.case("in_progress", company=_company("广州市天河区认领示例有限公司"))
        factory.finish_steps(claimed, "registration")
        ops.claim_step(factory.session, claimed, "tax", factory.clerk("taxation"))
        factory.session.commit()
        traveller.move_to("2026-11-23 09:25 +0800")
        warning = factory.case("in_progress", company=_company("广州市天河区预警示例有限公司"))
        traveller.move_to("2026-11-23 10:20 +0800")
        on_track = factory.case("in_progress", company=_company("广州市天河区正常示例有限公司"))
        traveller.move_to("2026-11-23 10:30 +0800")
        submitted = factory.case("submitted", company=_company("广州市天河区新办示例有限公司"))
    with time_machine.travel("2026-11-23 10:40 +0800", tick=True):
        yield Hall(breached.case_no, warning.case_no, on_track.case_no, claimed.case_no, submitted.case_no,
                   suspended.case_no)


@pytest.fixture
def open_as(browser, live_server, factory):
    """A page at a viewport for a user (signed in) or for nobody (``None``); closed at the end."""
    contexts = []

    def open_page(user, viewport=NARROW):
        context = browser.new_context(base_url=live_server, viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        if user is not None:
            sign_in(page, user.username, PASSWORD)
            expect(page.locator("form.signout")).to_be_attached()
        return page

    yield open_page
    for context in contexts:
        context.close()


# ------------------------------------------------------------------ (a) the keyboard alone

def _assert_focus_ring(page) -> dict:
    focus = _measure(page, FOCUS)
    assert focus is not None, "the focus left the page"
    assert focus["focusVisible"] and focus["inView"], focus
    assert focus["outlineStyle"] not in ("none", "hidden") and focus["outlineWidth"] >= 2, focus
    ring = page.evaluate("([c, s]) => window.__a11y.ratio(window.__a11y.parse(c), s)",
                         [focus["outlineColor"], focus["surround"]])
    assert ring >= 3, focus  # WCAG 1.4.11: the ring against what surrounds the control
    return focus


def _tab_to(page, matches, limit: int = 40) -> dict:
    """Press Tab until ``matches(focus)``, checking the focus ring at every stop on the way."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = _assert_focus_ring(page)
        if matches(focus):
            return focus
    raise AssertionError(f"not reached in {limit} Tab presses")


@browser_test
def test_the_keyboard_alone_signs_in_opens_a_case_and_claims_a_step(page, live_server, factory):
    case = factory.case("in_progress")
    clerk = factory.clerk("market_regulation")
    page.goto("/")
    assert _assert_focus_ring(page)["id"] == "username"  # the form starts in the username
    page.keyboard.type(clerk.username)
    assert _assert_focus_ring(page)["id"] == "username"
    page.keyboard.press("Tab")
    assert _assert_focus_ring(page)["id"] == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(live_server + "/queue")
    # The address changes when the answer starts to arrive; a Tab pressed before the new page has
    # loaded lands on no element at all (seen once in CI under load), so wait for the page.
    page.wait_for_load_state("load")

    # The skip link is the first stop and takes the next Tab straight into the page's content.
    skip = _tab_to(page, lambda f: True, limit=1)
    assert skip["href"] == "#main"
    page.keyboard.press("Enter")
    # The table's scrolling region, then the case's link (which may point at the step's card).
    link = _tab_to(page, lambda f: f["tag"] == "a" and f["href"].startswith(f"/cases/{case.case_no}"), limit=10)
    assert link["text"] == case.case_no
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(f"{live_server}/cases/{case.case_no}")))
    page.wait_for_load_state("load")

    claim = _tab_to(page, lambda f: f["tag"] == "button" and f["text"] == "认领")
    assert page.evaluate("() => document.activeElement.closest('article').id") == "step-registration"
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("您已认领该环节。")
    expect(page.locator("#step-registration .step-state")).to_have_attribute("data-state", "in_progress")
    assert claim["outlineWidth"] >= 2
    # The completion form that appears is reachable and labelled too.
    field = _tab_to(page, lambda f: f["id"] == "registration-uscc", limit=60)
    assert field["tag"] == "input"


# ------------------------------------------------------------------ (b) 390 px, every control named

@browser_test
def test_every_page_fits_390_px_and_every_control_has_a_name(open_as, factory, hall):
    pages = [
        (factory.window, ["/queue", f"/cases/{hall.submitted}", f"/cases/{hall.suspended}", "/applications/new"]),
        (factory.clerk("taxation"), ["/queue", f"/cases/{hall.claimed}", "/dashboard"]),  # the last: a 403
        (factory.actor("supervisor", "market_regulation"), ["/board", f"/cases/{hall.warning}"]),
        (factory.actor("admin", None), ["/dashboard", "/board", "/cases/NOPE"]),
        (None, ["/", "/?lang=en", "/nowhere"]),
    ]
    controls = 0
    for user, paths in pages:
        page = open_as(user)
        for path in paths:
            page.goto(path)
            controls += assert_fits_and_names_every_control(page)
    page.goto("/")
    with page.expect_navigation():  # the checks read the DOM as it is: the answer must have loaded
        page.get_by_role("button").click()  # an empty sign-in: errors beside the fields, still in 390 px
    controls += assert_fits_and_names_every_control(page)
    assert controls > 30  # the checks did meet the forms


# ------------------------------------------------------------------ (c) contrast

@browser_test
def test_text_and_badges_meet_wcag_aa_contrast_at_both_widths(open_as, factory, hall):
    market = open_as(factory.clerk("market_regulation"), WIDE)
    taxation = open_as(factory.clerk("taxation"), WIDE)
    window = open_as(factory.window, WIDE)
    nobody = open_as(None, WIDE)
    checked = 0
    for viewport in (WIDE, NARROW):
        for page in (market, taxation, window, nobody):
            page.set_viewport_size(viewport)
        market.goto("/queue")  # breached, warning and on-track rows
        checked += assert_contrast(market)
        badges = [b for b in _measure(market, BADGES) if "status-none" not in b["cls"]]  # (a stopped clock)
        assert {b["cls"].split("status-")[1] for b in badges} == {"breached", "warning", "on_track"}
        assert len({b["label"] for b in badges}) == 3
        for badge in badges:
            assert badge["label"] and badge["icon"], badge  # a word and a symbol, not colour alone
            assert badge["borderWidth"] >= 1 and badge["border"] >= 3, badge
        window.goto("/queue")  # clocks not started and stopped
        checked += assert_contrast(window)
        assert "none" in {b["cls"].split("status-")[1] for b in _measure(window, BADGES)}
        for path in (f"/cases/{hall.claimed}", "/cases/NOPE", "/dashboard"):  # a case page, a 404, a 403
            taxation.goto(path)
            checked += assert_contrast(taxation)
        for path in ("/?lang=en", "/nowhere", "/"):
            nobody.goto(path)
            checked += assert_contrast(nobody)
        with nobody.expect_navigation():
            nobody.get_by_role("button").click()  # empty fields: the errors beside them
        checked += assert_contrast(nobody)
    assert checked > 400


# ------------------------------------------------------------------ (d) error pages

def _error_page(page, status: int, heading: str, link: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator(".error-code")).to_contain_text(str(status))
    home = page.get_by_role("link", name=link)
    expect(home).to_have_attribute("href", "/")
    # Styled: the site's stylesheet and header, not a bare browser page.
    assert page.evaluate("() => getComputedStyle(document.querySelector('.error-panel')).backgroundColor") \
        == "rgb(255, 255, 255)"
    expect(page.locator("header.site-header .lang-switch")).to_be_visible()


@browser_test
def test_error_pages_are_styled_in_the_pages_language_with_a_way_home(open_as, factory, live_server):
    clerk = open_as(factory.clerk("taxation"), WIDE)
    response = clerk.goto("/cases/KB20990101-0001")
    assert response.status == 404 and response.headers["content-type"].startswith("text/html")
    expect(clerk.locator("html")).to_have_attribute("lang", "zh-CN")
    _error_page(clerk, 404, "页面不存在", "返回我的首页")
    expect(clerk).to_have_title(re.compile("^404 页面不存在"))
    expect(clerk.get_by_role("link", name="待办队列")).to_be_visible()  # signed in: the staff menu

    response = clerk.goto("/dashboard")  # a clerk at the admins' page
    assert response.status == 403
    _error_page(clerk, 403, "您无权访问此页面", "返回我的首页")
    clerk.get_by_text("技术信息").click()
    expect(clerk.locator(".error-detail [lang=en]")).to_contain_text("this page is not for your role")

    assert clerk.goto("/dashboard?lang=en").status == 403
    expect(clerk.locator("html")).to_have_attribute("lang", "en")
    _error_page(clerk, 403, "This page is not for you", "Back to my home page")
    assert clerk.goto("/cases/KB20990101-0001").status == 404  # English is remembered
    _error_page(clerk, 404, "Page not found", "Back to my home page")
    clerk.get_by_role("link", name="Back to my home page").click()
    expect(clerk).to_have_url(live_server + "/queue")

    nobody = open_as(None, NARROW)
    assert nobody.goto("/nowhere").status == 404
    _error_page(nobody, 404, "页面不存在", "前往登录页")
    expect(nobody.locator("form.signout")).to_have_count(0)
    assert nobody.goto("/signout?lang=en").status == 405
    _error_page(nobody, 405, "This address cannot be used that way", "Go to the sign-in page")

    api = clerk.request.get("/api/v1/cases/NOPE", headers={"Authorization": f"Bearer {factory.token()}"})
    assert api.status == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["status"] == 404


@browser_test
@pytest.mark.skipif(not os.environ.get("SCREENSHOTS"), reason="set SCREENSHOTS=1 to retake docs/images")
def test_screenshots_of_the_error_pages(open_as, factory):
    """docs/images/error-404-zh-390.png and error-403-en-1280.png, seen by a taxation clerk."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    for viewport, path, name in ((NARROW, "/cases/KB20990101-0001", "error-404-zh-390.png"),
                                 (WIDE, "/dashboard?lang=en", "error-403-en-1280.png")):
        page = open_as(factory.clerk("taxation"), viewport)
        page.goto(path)
        page.screenshot(path=IMAGES / name, full_page=True)


# Every status a page can answer with, raised the way the app raises it; no browser needed.
ERRORS = {
    400: lambda: BadRequest("The CSRF token is missing."),
    401: lambda: wf.Unauthenticated("no credentials"),
    403: lambda: wf.Forbidden("this page is not for your role"),
    404: lambda: wf.NotFound("case KB20990101-0001 not found"),
    405: lambda: MethodNotAllowed(["POST"]),
    409: lambda: wf.IllegalAction("cannot accept a delivered case", state="delivered"),
    412: lambda: wf.PreconditionFailed("the case is at version 3", version=3),
    413: lambda: RequestEntityTooLarge(),
    422: lambda: wf.Invalid({"reason": ["is required"]}),
    429: lambda: TooManyRequests(),
    500: lambda: ZeroDivisionError("division by zero"),
}
HEADINGS = {400: ("请求无法处理", "The request could not be used"), 401: ("请先登录", "Sign in first"),
            403: ("您无权访问此页面", "This page is not for you"), 404: ("页面不存在", "Page not found"),
            405: ("不能以这种方式打开此地址", "This address cannot be used that way"),
            409: ("办件状态已变化", "The case has moved on"), 412: ("页面已过期", "The page was out of date"),
            413: ("提交的内容过大", "Too much was sent"),
            422: ("提交的内容有误", "Some of what was sent is not valid"),
            429: ("请求过于频繁", "Too many requests"), 500: ("系统出现错误", "Something went wrong on our side")}


@pytest.fixture
def raising_client(app, factory):
    """A signed-in clerk's client of an app with a page and an API address raising each status.

    500s are answered, not raised (``PROPAGATE_EXCEPTIONS`` is on under ``TESTING``).
    """
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def raise_error(status):
        raise ERRORS[status]()

    app.add_url_rule("/raise/<int:status>", "raise_page", raise_error)
    app.add_url_rule("/api/v1/raise/<int:status>", "raise_api", raise_error)
    client = app.test_client()
    with client.session_transaction() as cookie:  # Flask-Login's session keys
        cookie["_user_id"] = str(factory.clerk("taxation").user_id)
        cookie["_fresh"] = True
    return client


@pytest.mark.parametrize("status", sorted(ERRORS))
def test_every_error_status_has_a_page_in_both_languages_and_the_api_keeps_problem_json(raising_client, status):
    for lang, heading in zip(("zh", "en"), HEADINGS[status]):
        response = raising_client.get(f"/raise/{status}?lang={lang}")
        assert response.status_code == status
        assert response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert f"<h1 id=\"error-heading\">{heading}</h1>" in html
        assert 'href="/static/css/site.css"' in html and 'href="/" rel="home"' in html
        # A server error asks nothing more of the database (no staff menu) and never shows the exception.
        assert ('class="site-nav"' in html) is (status != 500)
        assert "division by zero" not in html
        if status == 405:
            assert response.headers["Allow"]  # the page keeps what the status needs
    api = raising_client.get(f"/api/v1/raise/{status}")
    assert (api.status_code, api.mimetype) == (status, "application/problem+json")
    assert api.get_json()["status"] == status


def test_a_body_over_the_limit_gets_the_413_page(client):
    response = client.post("/", data={"username": "x" * (1024 * 1024 + 1)})
    assert response.status_code == 413
    assert "提交的内容过大" in response.get_data(as_text=True)
