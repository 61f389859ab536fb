"""The real app on a free localhost port, driven by Debian's chromium through Playwright.

Playwright's own browsers are never downloaded (`playwright install` fails on this network): the
tests launch /usr/bin/chromium, which `make test` installs (TEST_DEBS). The fixtures (`browser`,
`live_server`, `page`) are in tests/conftest.py, shared with tests/security/.
"""
from __future__ import annotations

import os

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"no chromium at {CHROMIUM} (make install-test installs it)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def sign_in(page, username: str, password: str, path: str = "/") -> None:
    """Fill and send the sign-in form at ``path``, and wait for the page it leads to to load.

    A click returns once the next page has begun to arrive, not once it has loaded: a test reading the
    DOM right after it can find the page half parsed (README.md, "Tests": BROWSER_TRICKLE)."""
    page.goto(path)
    page.get_by_label("用户名").or_(page.get_by_label("Username")).fill(username)
    page.get_by_label("密码").or_(page.get_by_label("Password")).fill(password)
    with page.expect_navigation():
        page.locator("form.form button[type=submit]").click()
