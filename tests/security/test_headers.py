"""Security headers on every response, and the Content-Security-Policy seen working in chromium.

The policy (api/security.py) allows scripts and styles from the app's own files only. The browser
tests open the main pages of every audience and the Swagger UI, listening for any
``securitypolicyviolation`` event and any CSP message on the console: a page that still needed an
inline script or style would show one. They also inject an inline script and an ``onclick``
handler into a page and see that neither runs, and frame a page from another origin and see it
refused.
"""
from __future__ import annotations

import os
import re

import pytest

from api.security import SHARED_FILES
from tests.browser.conftest import CHROMIUM, sign_in
from tests.factories import PASSWORD, csrf_token, sign_in as sign_in_client
from workflow import receipts

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def assert_secure(response, where: str) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives.get("script-src") == ["'self'"], f"{where}: {policy!r}"
    assert directives.get("frame-ancestors") == ["'none'"], f"{where}: {policy!r}"
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, f"{where}: {policy!r}"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, f"{where}: {name} is {response.headers.get(name)!r}"
    assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), where


def assert_not_stored(response, where: str) -> None:
    """What a signed-in user is shown stays out of caches (the back button after signing out)."""
    assert "no-store" in response.headers.get("Cache-Control", ""), f"{where}: {response.headers.get('Cache-Control')!r}"


def placeholder_path(rule) -> str:
    """The rule's path with every variable filled in (an unknown case, step or token: 404s are fine)."""
    def fill(match):
        converter, name = match.group(1) or "", match.group(2)
        if converter.startswith("any("):
            return converter[4:].split(",")[0].strip().strip("'\"")
        if converter == "int":
            return "1"
        if name == "filename":
            return "js/live.js" if rule.endpoint == "static" else "swagger-ui.css"
        return "KB20260101-0001" if name == "case_no" else "x"
    return re.sub(r"<(?:([^:>]+):)?(\w+)>", fill, rule.rule)


def test_every_rule_answers_with_the_security_headers_signed_in_or_not(app, client, factory):
    """Every rule and method of the url_map, anonymous and as an admin: 200, 302, 400, 401, 403, 404
    and 409 answers alike carry the headers."""
    admin = factory.actor("admin", None)
    signed_in = app.test_client()
    assert sign_in_client(signed_in, admin.username).status_code == 302
    seen = set()
    for rule in app.url_map.iter_rules():
        path = placeholder_path(rule)
        for method in sorted(rule.methods - {"OPTIONS"}):
            for who, caller in (("anonymous", client), ("admin", signed_in)):
                response = caller.open(path, method=method)
                response.close()
                assert_secure(response, f"{method} {path} as {who} ({response.status_code})")
                if who == "admin" and rule.endpoint not in SHARED_FILES:
                    assert_not_stored(response, f"{method} {path} as {who} ({response.status_code})")
                seen.add(response.status_code)
    assert {200, 302, 400, 401, 404} <= seen  # the answers checked include refusals and errors
    assert_secure(client.get("/no/such/page"), "an unknown page")
    assert_secure(client.get("/api/v1/no/such/thing"), "an unknown API path")


def test_staff_answers_are_not_stored_and_shared_files_are_cached(app, client, factory):
    """A token's answers (REST) are never stored; the stylesheet a signed-in browser fetches is
    the same for everybody and stays cacheable; an anonymous page keeps its own caching."""
    token = factory.token("clerk", "market_regulation")
    case = factory.case("in_progress")
    for path in ("/api/v1/cases", f"/api/v1/cases/{case.case_no}", "/api/v1/cases/KB20260101-0001"):
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (200, 404)
        assert_not_stored(response, f"GET {path} with a token ({response.status_code})")
    signed_in = app.test_client()
    clerk = factory.clerk("market_regulation")
    assert sign_in_client(signed_in, clerk.username).status_code == 302
    assert_not_stored(signed_in.get(f"/cases/{case.case_no}"), "the case page")
    stylesheet = signed_in.get("/static/css/site.css")
    stylesheet.close()
    assert stylesheet.status_code == 200 and "no-store" not in stylesheet.headers.get("Cache-Control", "")
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")  # the sign-in page, anonymous
    # What used to say no-store itself: the page showing a new token once, and the figures' CSV export.
    admin = app.test_client()
    assert sign_in_client(admin, factory.actor("admin", None).username).status_code == 302
    csrf = csrf_token(admin, f"/admin/users/{clerk.username}")
    issued = admin.post(f"/admin/users/{clerk.username}/tokens", data={"label": "cache", "csrf_token": csrf})
    assert issued.status_code == 200
    assert_not_stored(issued, "the page showing a new token")
    export = admin.get("/dashboard.csv", query_string={"table": "states"})
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert_not_stored(export, "the CSV export")


def test_the_tracking_pages_keep_no_referrer(client):
    response = client.get("/track")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert_secure(response, "/track")


# ---------------------------------------------------------------- in chromium

browser_test = pytest.mark.browser
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no chromium at {CHROMIUM}")

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


class Watcher:
    """Every CSP violation a context's pages report, by event and on the console."""

    def __init__(self, context):
        self.console: list[str] = []
        context.add_init_script(WATCH)
        context.on("console", lambda message: self.console.append(message.text)
                   if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text else None)

    def visit(self, page, path: str, status: int = 200) -> list[str]:
        response = page.goto(path)
        assert response.status == status, f"{path}: {response.status}"
        page.wait_for_load_state("networkidle")
        return [f"{path}: {v}" for v in page.evaluate("window.__csp")]


def watched_context(browser, live_server, username: str | None = None):  # noqa: F811
    """A browser context whose CSP violations are watched, with its page; signed in as ``username``."""
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(10_000)
    watcher = Watcher(context)
    page = context.new_page()
    if username is not None:
        sign_in(page, username, PASSWORD)
        page.wait_for_url(re.compile(r"/(queue|board|dashboard)$"))
    return context, page, watcher


@browser_test
@needs_chromium
@pytest.mark.slow
def test_the_main_pages_run_without_a_csp_violation(browser, live_server, app, factory):  # noqa: F811
    case = factory.case("in_progress")
    delivered = factory.case("delivered")
    token = receipts.sign_case_no(app.config["SECRET_KEY"], factory.case("ready").case_no)
    visits = {  # who → (path, status): every audience's pages, a form with errors, the error pages
        None: [("/", 200), ("/track", 200), (f"/track?case_no={case.case_no}&code={case.tracking_code}", 200),
               (f"/track?case_no={delivered.case_no}&code={delivered.tracking_code}", 200),  # the rating form
               (f"/track?case_no={case.case_no}&code=WRONG", 404), (f"/verify/{token}", 200),
               ("/verify/forged", 404), ("/queue", 200)],  # (the last: sent on to the sign-in page)
        factory.window.username: [("/queue", 200), ("/applications/new", 200), (f"/cases/{case.case_no}", 200),
                                  ("/admin", 403), ("/cases/KB20000101-0001", 404)],
        factory.actor("supervisor", "market_regulation").username: [("/board", 200), (f"/cases/{case.case_no}", 200)],
        factory.actor("admin", None).username: [("/dashboard", 200), ("/dashboard?from=x", 422), ("/audit", 200),
                                                ("/admin", 200), ("/admin/users", 200),
                                                (f"/admin/users/{factory.window.username}", 200),
                                                ("/admin/calendar", 200), ("/admin/definitions", 200)],
    }
    violations, console, pages = [], [], 0
    for username, paths in visits.items():
        context, page, watcher = watched_context(browser, live_server, username)  # noqa: F811
        for path, status in paths:
            violations += watcher.visit(page, path, status)
            pages += 1
        console += watcher.console
        context.close()
    assert pages == sum(len(paths) for paths in visits.values()) == 23
    assert violations == [] and console == []


@browser_test
@needs_chromium
def test_the_swagger_ui_works_under_the_policy(browser, live_server):  # noqa: F811
    context, page, watcher = watched_context(browser, live_server)  # noqa: F811
    violations = watcher.visit(page, "/api/v1/docs")
    # Swagger UI drew the operations from /api/v1/openapi.json: its scripts ran.
    page.get_by_text("/api/v1/cases/{case_no}/accept").first.wait_for()
    assert page.locator(".opblock").count() > 20
    context.close()
    assert violations == [] and watcher.console == []


@browser_test
@needs_chromium
def test_an_injected_inline_script_or_handler_does_not_run(browser, live_server):  # noqa: F811
    """What an escaping bug would let in is still refused by the browser."""
    context, page, watcher = watched_context(browser, live_server)  # noqa: F811
    assert watcher.visit(page, "/track") == []
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.__ran = 'script'";
        document.body.appendChild(script);
        const button = document.createElement("button");
        button.id = "injected";
        button.textContent = "x";
        button.setAttribute("onclick", "window.__ran = 'handler'");
        document.body.appendChild(button);
    }""")
    page.click("#injected")
    assert page.evaluate("window.__ran === undefined")
    reported = page.evaluate("window.__csp")
    context.close()
    assert len(reported) == 2 and all(v.startswith("script-src") for v in reported), reported


@browser_test
@needs_chromium
def test_another_site_cannot_frame_a_page(browser, live_server):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()  # noqa: F811
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    # about:blank is another origin than the app; the frame is refused by frame-ancestors 'none'.
    page.set_content(f'<iframe id="f" src="{live_server}/"></iframe>')
    page.wait_for_timeout(500)
    framed = page.frames[1]
    assert 'name="csrf_token"' not in framed.content()  # the sign-in form never arrived: an error page
    context.close()
    assert any("frame-ancestors" in text for text in messages), messages
