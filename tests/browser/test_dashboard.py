"""The dashboard: the period filter, the tables behind the charts, their CSV downloads, who sees what.

The hall: one case finished on Monday 16 November (fast, 90 working minutes), one on Thursday 19
November (slow, 360 working minutes, so over the 210-minute promise), and one accepted on Friday 20
November whose registration is still open and long breached, like the case itself. The pages are
seen at 11:00 on Monday the 23rd.
"""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from playwright.sync_api import expect

from tests.factories import PASSWORD
from workflow import timers
from workflow.clock import utcnow

from .conftest import sign_in

pytestmark = pytest.mark.browser

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
TABLES = ("daily", "distribution", "agencies", "within", "breaches", "ratings", "states")


@dataclass
class Hall:
    fast: str  # ready on 2026-11-16 after 90 working minutes
    slow: str  # ready on 2026-11-19 after 360 working minutes
    breached: str  # accepted 2026-11-20, registration breached


def _company(name: str) -> dict:
    return {"name": name, "kind": "llc", "registered_capital": "1000000.00", "address": "广州市越秀区东风中路1号",
            "business_scope": "软件开发"}


def finished_case(factory, traveller, start: str, stages: tuple[str, str, str], name: str):
    """A case accepted at ``start`` whose steps finish at the three stage times (registration; seal, tax and
    bank; invoice), all on the same day as ``start``."""
    traveller.move_to(start)
    case = factory.case("in_progress", company=_company(name))
    day = start[:10]
    for at, keys in zip(stages, (("registration",), ("seal", "tax", "bank"), ("invoice",))):
        traveller.move_to(f"{day} {at} +0800")
        factory.finish_steps(case, *keys)
        factory.session.commit()
    return case


@pytest.fixture
def hall(factory):
    with time_machine.travel("2026-11-16 09:00 +0800", tick=False) as traveller:
        fast = finished_case(factory, traveller, "2026-11-16 09:00 +0800", ("09:30", "10:00", "10:30"),
                             "广州市越秀区快速示例有限公司")
        slow = finished_case(factory, traveller, "2026-11-19 08:59 +0800", ("10:30", "14:00", "16:30"),
                             "广州市越秀区慢速示例有限公司")
        traveller.move_to("2026-11-20 10:00 +0800")
        breached = factory.case("in_progress", company=_company("广州市越秀区逾期示例有限公司"))
    with time_machine.travel("2026-11-23 11:00 +0800", tick=False):
        while timers.fire_due(factory.session, utcnow()):
            factory.session.commit()
        factory.session.commit()
    with time_machine.travel("2026-11-23 11:00 +0800", tick=True):  # the server's clock too
        yield Hall(fast.case_no, slow.case_no, breached.case_no)


def table(page, key: str) -> list[list[str]]:
    """The rows of a dashboard table as the CSV has them: its ``data-csv`` where given, else the text."""
    return page.locator(f"table[data-table={key}] tbody tr").evaluate_all(
        """rows => rows.map(row => [...row.cells].map(cell =>
             cell.hasAttribute("data-csv") ? cell.getAttribute("data-csv") : cell.textContent.trim()))""")


def column(page, key: str, name: str) -> list[str]:
    keys = page.locator(f"table[data-table={key}] thead th").evaluate_all("ths => ths.map(th => th.dataset.key)")
    return [row[keys.index(name)] for row in table(page, key)]


def test_the_period_filter_changes_every_figure(page, factory, hall):
    admin = factory.actor("admin", None)
    sign_in(page, admin.username, PASSWORD, path="/?lang=en")
    expect(page).to_have_url(re.compile(r"/dashboard$"))  # the admins' home
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(page.locator("#period-from")).to_have_value("2026-10-25")  # the last 30 days
    expect(page.locator("#period-to")).to_have_value("2026-11-23")
    daily = {row[0]: row[1:] for row in table(page, "daily")}
    assert len(daily) == 30 and daily["2026-11-16"] == daily["2026-11-19"] == ["1", "1"]
    assert daily["2026-11-20"] == ["1", "0"] and daily["2026-11-23"] == ["0", "0"]
    assert {row[0]: row[2] for row in table(page, "distribution")} == {
        str(m): ("1" if m in (90, 360) else "0") for m in range(0, 390, 30)}
    assert column(page, "within", "day") == ["2026-11-16", "2026-11-19"]
    assert column(page, "within", "within_target_pct") == ["100", "0"]
    assert column(page, "agencies", "steps") == ["2", "2", "4", "2"]  # registration; seal; tax and invoice; bank
    assert column(page, "breaches", "case_no") == [hall.breached] * 2  # its registration, and the case itself
    # Each chart is an image with a name and a description, drawn without script.
    for key in ("daily", "distribution", "agencies", "within"):
        svg = page.locator(f"#chart-{key}-wide")
        expect(svg).to_be_visible()
        expect(svg).to_have_attribute("role", "img")
        assert page.locator(f"#chart-{key}-wide-title").text_content()
        assert page.locator(f"#chart-{key}-wide-desc").text_content()
    assert page.locator("main svg script, main svg style").count() == 0
    expect(page.locator("#chart-distribution-wide .promise-line")).to_have_count(1)

    page.locator("#period-from").fill("2026-11-18")
    with page.expect_navigation():  # column() reads the DOM as it is: the new figures must have loaded
        page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/dashboard\?from=2026-11-18&to=2026-11-23$"))
    assert column(page, "daily", "day") == [f"2026-11-{d}" for d in range(18, 24)]
    assert column(page, "within", "day") == ["2026-11-19"]  # the fast case finished before the period
    assert column(page, "distribution", "cases") == ["0"] * 12 + ["1"]
    assert column(page, "agencies", "steps") == ["1", "1", "2", "1"]
    assert column(page, "breaches", "case_no") == [hall.breached] * 2  # open breaches, whatever the period

    page.goto("/dashboard?from=2026-11-24&to=2026-11-30")  # nothing yet: no tables, no CSV links
    expect(page.locator("#within .empty")).to_have_text("No case became ready in this period.")
    expect(page.locator("#agencies .empty")).to_be_visible()


def test_bad_periods_come_back_with_the_error_beside_the_field(page, factory, hall):
    sign_in(page, factory.actor("admin", None).username, PASSWORD, path="/?lang=en")
    response = page.goto("/dashboard?from=2026-13-01&to=2026-11-23")
    assert response.status == 422
    expect(page.locator("#period-from-error")).to_contain_text("Enter a date as YYYY-MM-DD")
    expect(page.locator("#period-from")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#period-from")).to_have_value("")  # a date input cannot hold what was typed
    expect(page.locator("table")).to_have_count(0)
    assert page.goto("/dashboard?from=2026-11-23&to=2026-11-01").status == 422
    expect(page.locator("#period-to-error")).to_have_text("The end must not be before the start.")
    assert page.goto("/dashboard?from=2024-01-01&to=2026-11-23").status == 422
    expect(page.locator("#period-from-error")).to_have_text("Choose at most 366 days.")
    page.goto("/dashboard?lang=zh&from=x")
    expect(page.locator("#period-from-error")).to_contain_text("请按“年-月-日”")


def test_each_csv_download_is_the_table_shown(page, factory, hall):
    sign_in(page, factory.actor("admin", None).username, PASSWORD, path="/dashboard?from=2026-11-16&to=2026-11-23")
    expect(page.get_by_role("heading", level=1)).to_have_text("统计总览")
    links = page.locator(".csv-link a")
    expect(links).to_have_count(len(TABLES))
    for key in TABLES:
        link = page.locator(f"#{key} .csv-link a")
        with page.expect_download() as info:
            link.click()
        download = info.value
        assert download.suggested_filename == f"onewindow-{key}-2026-11-16-2026-11-23.csv"
        raw = Path(download.path()).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        keys = page.locator(f"table[data-table={key}] thead th").evaluate_all("ths => ths.map(th => th.dataset.key)")
        assert rows[0] == keys, key
        assert rows[1:] == table(page, key), key
    breaches = table(page, "breaches")
    assert any("市场监管" in row and "设立登记" in row for row in breaches)
    assert any("综合窗口" in row and "整个办件" in row for row in breaches)
    shown = page.locator("table[data-table=breaches] tbody th").all_text_contents()
    assert [row[0] for row in breaches] == [f"{text.strip().replace(' ', 'T')}:00+08:00" for text in shown]


def test_a_supervisor_sees_only_their_agency_and_a_clerk_is_refused(browser, live_server, factory, hall):
    supervisor = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
    page = supervisor.new_page()
    sign_in(page, factory.actor("supervisor", "taxation").username, PASSWORD,
            path="/dashboard?lang=en&from=2026-11-16&to=2026-11-16")
    expect(page).to_have_url(re.compile(r"/dashboard\?lang=en&from=2026-11-16&to=2026-11-16$"))
    expect(page.locator(".lead").first).to_contain_text("Taxation")
    assert column(page, "agencies", "agency") == ["Taxation"]
    assert column(page, "agencies", "steps") == ["2"]  # tax and invoice of the fast case
    expect(page.locator("#breaches .empty")).to_have_text("No breach is open.")  # registration's breach: not theirs
    assert column(page, "daily", "opened")  # the hall's case figures are the same for everyone
    with page.expect_download() as info:
        page.locator("#agencies .csv-link a").click()
    assert Path(info.value.path()).read_text("utf-8-sig").splitlines()[1:] == ["Taxation,2,30,30,30,100"]
    market = browser.new_context(base_url=live_server)
    other = market.new_page()
    sign_in(other, factory.actor("supervisor", "market_regulation").username, PASSWORD, path="/dashboard")
    assert column(other, "breaches", "case_no") == [hall.breached]
    supervisor.close()
    market.close()

    clerk = browser.new_context(base_url=live_server)
    page = clerk.new_page()
    sign_in(page, factory.clerk("taxation").username, PASSWORD)
    expect(page).to_have_url(re.compile(r"/queue$"))
    expect(page.get_by_role("link", name="统计总览")).to_have_count(0)
    for path in ("/dashboard", "/dashboard.csv?table=daily", "/audit"):
        assert page.goto(path).status == 403, path
    clerk.close()


def test_the_dashboard_fits_a_phone(browser, live_server, factory, hall):
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, factory.actor("admin", None).username, PASSWORD)
    expect(page.locator("#chart-daily-narrow")).to_be_visible()
    expect(page.locator("#chart-daily-wide")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


@pytest.mark.skipif(not os.environ.get("SCREENSHOTS"), reason="set SCREENSHOTS=1 to retake docs/images")
def test_screenshots_of_the_dashboard(browser, live_server, factory, month):
    """docs/images/dashboard-{zh,en}-1280.png and dashboard-zh-390.png, on a month of the hall's work."""
    admin = factory.actor("admin", None)
    for lang, width, name in (("zh", 1280, "dashboard-zh-1280.png"), ("en", 1280, "dashboard-en-1280.png"),
                              ("zh", 390, "dashboard-zh-390.png")):
        context = browser.new_context(base_url=live_server, locale="zh-CN" if lang == "zh" else "en-US",
                                      viewport={"width": width, "height": 800 if width > 500 else 844})
        page = context.new_page()
        sign_in(page, admin.username, PASSWORD, path=f"/?lang={lang}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.screenshot(path=IMAGES / name, full_page=True)
        context.close()


@pytest.fixture
def month(factory):
    """Four weeks of a hall's work: 2 to 4 cases a working day, most in time, some not; ratings; breaches."""
    import random

    from workflow import operations as ops, tracking

    rng = random.Random(11)
    with time_machine.travel("2026-10-26 09:00 +0800", tick=False) as traveller:
        day = datetime(2026, 10, 26)
        while day < datetime(2026, 11, 23):
            if day.weekday() < 5:
                for number in range(rng.randint(2, 4)):
                    start = day.replace(hour=9, minute=5) + timedelta(minutes=40 * number)
                    paces = [rng.choice((20, 30, 40, 50, 70, 110)) for _ in range(3)]
                    stages, at = [], start
                    for pace in paces:
                        at += timedelta(minutes=pace)
                        stages.append(at.strftime("%H:%M"))
                    case = finished_case(factory, traveller, start.strftime("%Y-%m-%d %H:%M +0800"), tuple(stages),
                                         f"广州市示例{day:%m%d}{number}科技有限公司")
                    if rng.random() < 0.5:
                        ops.deliver_case(factory.session, case, factory.window, method="counter")
                        tracking.rate(factory.session, case, rng.choice((5, 5, 5, 4, 4, 3, 2)))
                        factory.session.commit()
            day += timedelta(days=1)
        traveller.move_to("2026-11-23 09:10 +0800")
        for name in ("广州市示例逾期一有限公司", "广州市示例逾期二有限公司"):
            factory.case("in_progress", company=_company(name))
        traveller.move_to("2026-11-23 11:00 +0800")
        while timers.fire_due(factory.session, utcnow()):
            factory.session.commit()
        factory.session.commit()
    with time_machine.travel("2026-11-23 11:05 +0800", tick=True):
        yield
