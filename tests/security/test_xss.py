"""XSS: every free text an applicant, a clerk, a supervisor or an admin can enter is shown as text.

The free texts come from the application schema (company name, address, business scope, the legal
representative's and shareholders' names), the clerks' actions (materials to supply later, reasons
for rejecting, suspending, withdrawing and refusing, the mail's tracking number), the steps' string
outputs (licence number, filing number, bank), the supervisors' reason for a breach, the applicant's
rating comment, and the admins' users (username, display name), token labels, calendar day names and
process definitions (the process's, steps' and departments' titles, shown to the public and printed).

Each is filled with a payload that breaks out of text, of quoted and unquoted attributes, of a
textarea and a title, opens a script, an ``<img onerror>``, an ``<svg onload>``, a ``javascript:``
URL and a template expression (three payloads, ``FAMILIES``, each in every field: one set of cases per
family), tagged with the field's code. Then every page that shows them (case
pages, queues, the board, the audit viewer, the dashboard, the public tracking and verification
pages, the admin pages, and pages that echo what was typed: a refused form, a search, a 404) is
opened in chromium with the Content-Security-Policy bypassed — so that escaping is what is tested,
not the CSP standing behind it — and must show each payload literally, run no dialog and hold no
element, attribute or URL the payloads would have made. The receipt and the acceptance slip must
print each payload as text.
"""
from __future__ import annotations

import io
import json
import os
import re
from datetime import date, timedelta
from importlib import resources
from urllib.parse import quote, urlencode

import pytest
import time_machine
from pypdf import PdfReader

from tests.browser.conftest import CHROMIUM
from tests.factories import PASSWORD, application
from workflow import accounts, calendar_days, operations as ops, queries, receipts, timers
from workflow.actors import Role
from workflow.clock import utcnow
from workflow.definitions import store
from workflow.identifiers import make_id_number, make_uscc
from workflow.models import User

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no chromium at {CHROMIUM}")]

SECRET = "test"  # the tests' SECRET_KEY (tests/conftest.py)

# Three families, so that each field meets every trick within its length limit (64 for names).
FAMILIES = {
    "attribute": lambda tag: f"""'"><img src=x onerror=alert('{tag}')>""",
    "script": lambda tag: f"</textarea></title><script>alert('{tag}')</script>",
    "url": lambda tag: f"javascript:alert('{tag}')//{{{{7*7}}}}<svg onload=alert('{tag}')>",
}
NAMES = tuple(FAMILIES)


def payloads(family: str):
    """The payload of each field, by the field's code. Usernames (u1 … u7) take the family without a
    slash whatever the family: they are a URL segment on the admin pages."""
    make = FAMILIES[family]
    return lambda code: FAMILIES["attribute"](code) if re.fullmatch(r"u\d", code) else make(code)


def hostile_definition(session) -> dict[str, str]:
    """Publish a version of the process whose titles and department names (admins' text, shown to
    staff, to the public and in the documents) are payloads; return them as "step <key> <lang>",
    "department <key> <lang>" and "p<lang>" (the process)."""
    document = json.loads(resources.files("workflow.definitions").joinpath("company_opening.json").read_text())
    document["version"] = store.current(session).version + 1
    texts = {}

    def named(key: str, code: str, number: int) -> dict:
        for language, shift in (("zh", 1), ("en", 0)):
            texts[f"{key}{language}"] = payloads(NAMES[(number + shift) % len(NAMES)])(f"{code}{language[0]}")
        return {"zh": texts[f"{key}zh"], "en": texts[f"{key}en"]}

    document["title"] = named("p", "p", 0)
    for number, step in enumerate(document["steps"]):
        step["title"] = named(f"step {step['key']} ", f"t{number}", number)
    for number, key in enumerate(document["departments"]):
        document["departments"][key] = named(f"department {key} ", f"a{number}", number)
    store.publish(session, document, published_by="xss-test")
    session.commit()
    return texts


class Staff:
    """A user of each kind, username and display name payloads (display names of every family)."""

    ROLES = (("u1", "clerk", "service_window"), ("u2", "clerk", "market_regulation"),
             ("u3", "clerk", "public_security"), ("u4", "clerk", "taxation"), ("u5", "clerk", "bank"),
             ("u6", "supervisor", "market_regulation"), ("u7", "admin", None))

    def __init__(self, session, display=None):
        """``display(code)`` gives the display names ("u1d" …); by default, payloads of every family."""
        text = payloads("attribute")
        self._display = display or self._families
        first = None
        self.actors = {}
        for code, role, department in self.ROLES:
            display = self._display(code + "d")
            if first is None:  # argon2 takes half a second a hash: one for all, the password is the same
                first = accounts.create_user(session, text(code), PASSWORD, role, department, display_name=display)
            else:
                session.add(User(username=text(code), display_name=display, role=Role(role), department=department,
                                 password_hash=first.password_hash))
            session.flush()
            self.actors[code] = accounts.get_user(session, text(code)).as_actor()
        session.commit()
        self.window, self.boss, self.admin = self.actors["u1"], self.actors["u6"], self.actors["u7"]
        self.clerks = {self.actors[code].department: self.actors[code] for code in ("u2", "u3", "u4", "u5")}

    @staticmethod
    def _families(code: str) -> str:
        return payloads(NAMES[(int(code[1]) - 1) % len(NAMES)])(code)

    def text(self, code: str) -> str:
        """A staff member's username (u1 …) or display name (u1d …) as stored."""
        return self._display(code) if code.endswith("d") else payloads("attribute")(code)


def _outputs(text, step: str) -> dict:
    return {
        "registration": {"uscc": make_uscc("9", "1", "440111", "MA5T3B2C"), "licence_no": text("ln")},
        "seal": {"filing_no": text("fn"), "seals": ["company", "finance"]},
        "tax": {"taxpayer_type": "small_scale", "ukey_issued": True},
        "invoice": {"invoice_kind": "digital_ordinary", "quantity": 25},
        "bank": {"bank_name": text("bn"), "account_no": "360212345678901234"},
    }[step]


def hostile_application(text, **overrides) -> dict:
    owner = make_id_number("440106", date(1990, 3, 7), 123)
    partner = make_id_number("440111", date(1985, 12, 31), 456)
    return application(
        company={"name": text("cn"), "kind": "llc", "registered_capital": "1000000.00",
                 "address": text("ad"), "business_scope": text("bs")},
        legal_representative={"name": text("lr"), "id_number": owner, "phone": "13800138000"},
        shareholders=[{"name": text("s1"), "id_number": owner, "contribution": "600000.00"},
                      {"name": text("s2"), "id_number": partner, "contribution": "400000.00"}],
        **overrides)


def submit(session, staff: Staff, text):
    return ops.submit_case(session, staff.window, hostile_application(text))


def finish(session, staff: Staff, text, case):
    """Accepted with materials to supply later, every step done by its clerk with text outputs."""
    ops.accept_case(session, case, staff.window, missing_materials=[text("m1"), text("m2")])
    while ready := [s for s in case.steps if s.state.value == "ready"]:
        for step in ready:
            clerk = staff.clerks[step.department]
            ops.claim_step(session, case, step.key, clerk)
            ops.complete_step(session, case, step.key, clerk, _outputs(text, step.key))
    session.commit()
    return case


def finished_case(session, text):
    """A ready case whose every printed text is a payload (``text(code)``, display names included):
    what the receipt and the slip are made from. Returns the staff and the case."""
    staff = Staff(session, display=text)
    return staff, finish(session, staff, text, submit(session, staff, text))


class Cases:
    """One family's cases: A done and mailed, C rejected, D refused, E withdrawn, G waiting, and F
    accepted two weeks ago, suspended and resumed, breached, the breach explained by the supervisor."""

    def __init__(self, session, staff: Staff, text, day: date):
        self.text = text
        self.a = finish(session, staff, text, submit(session, staff, text))
        self.c = submit(session, staff, text)
        ops.reject_case(session, self.c, staff.window, reason=text("rr"))
        self.d = submit(session, staff, text)
        ops.accept_case(session, self.d, staff.window)
        ops.claim_step(session, self.d, "registration", staff.clerks["market_regulation"])
        ops.refuse_step(session, self.d, "registration", staff.clerks["market_regulation"], reason=text("fr"))
        self.e = submit(session, staff, text)
        ops.withdraw_case(session, self.e, staff.window, reason=text("wr"))
        self.g = submit(session, staff, text)
        with time_machine.travel(utcnow() - timedelta(days=14), tick=False):
            self.f = submit(session, staff, text)
            ops.accept_case(session, self.f, staff.window)
            ops.claim_step(session, self.f, "registration", staff.clerks["market_regulation"])
            ops.suspend_case(session, self.f, staff.window, reason=text("sr"))
            ops.resume_case(session, self.f, staff.window)
            session.commit()
        while timers.fire_due(session, utcnow()):
            session.commit()
        breach = next(n for n, case_no in queries.notifications_for(session, staff.boss)
                      if n.kind == "sla_breach" and n.subject == "registration" and case_no == self.f.case_no)
        ops.mark_read(session, breach.id, staff.boss, reason=text("br"))
        # The admins' texts: a calendar day's name and a token's label.
        calendar_days.save_days(session, [{"day": day, "kind": "holiday", "name": text("cd")}],
                                by=staff.admin.username)
        accounts.create_token(session, staff.clerks["taxation"].username, label=text("tl"))
        session.commit()

    def applicant(self) -> list[str]:
        return [self.text(c) for c in ("cn", "ad", "bs", "lr", "s1", "s2")]


# ---------------------------------------------------------------- the browser

# What a payload would have made of the page had it been markup: handlers, foreign scripts, frames,
# javascript: URLs, the <img src=x> and <svg onload>.
INJECTED = """() => {
  const all = [...document.querySelectorAll('*')];
  const url = el => ['href', 'src', 'action', 'formaction', 'data', 'xlink:href']
      .map(a => el.getAttribute(a) || '').find(v => /^\\s*javascript:/i.test(v));
  return [
    ...all.filter(el => [...el.attributes].some(a => a.name.toLowerCase().startsWith('on'))),
    ...[...document.scripts].filter(s => !s.src.startsWith(location.origin + '/static/')),
    ...all.filter(el => ['IFRAME', 'OBJECT', 'EMBED'].includes(el.tagName)),
    ...all.filter(url),
    ...document.querySelectorAll('img[src="x"]'),
  ].map(el => el.outerHTML.slice(0, 120));
}"""


class Browser:
    """One signed-in (or anonymous) chromium context with the CSP off, recording every dialog."""

    def __init__(self, chromium, base_url):
        self.context = chromium.new_context(base_url=base_url, bypass_csp=True, viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.pages = 0
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))

    def sign_in(self, username: str) -> None:
        self.page.goto("/?lang=en")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.submit(self.page.locator("form.form button[type=submit]"), 200)
        assert "/?" not in self.page.url and not self.page.url.endswith("/"), f"sign-in failed: {self.page.url}"

    def check(self, path: str | None, shows=(), status: int | None = None) -> str:
        """Open ``path`` (or check the page as it is): it shows each of ``shows`` as text, ran no dialog
        and holds nothing a payload made. Returns the page's text."""
        if path is not None:
            response = self.page.goto(path)
            if status is not None:
                assert response.status == status, (path, response.status)
        self.page.wait_for_load_state("load")
        self.pages += 1
        where = path or self.page.url
        text = self.page.evaluate("document.documentElement.textContent")
        missing = [value for value in shows if value not in text]
        assert not missing, f"{where} does not show as text: {missing}"
        assert self.page.evaluate(INJECTED) == [], f"{where} holds markup made by a payload"
        assert self.dialogs == [], f"{where}: a payload ran: {self.dialogs}"
        return text

    def submit(self, button, status: int) -> None:
        """Click a form's button and wait for the answer (the page it redirects to, if it does)."""
        with self.page.expect_navigation() as navigation:
            button.click()
        assert navigation.value.status == status, (self.page.url, navigation.value.status)

    def close(self):
        self.context.close()


def pdf_text(data: bytes) -> str:
    """The document's text with all white space removed: a long payload wraps over lines."""
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def _printed(document: bytes, values) -> list[str]:
    text = pdf_text(document)
    return [value for value in values if re.sub(r"\s+", "", value) not in text]


# ---------------------------------------------------------------- the test

def test_every_free_text_is_shown_as_text_on_every_page_and_document(browser, live_server, client, factory):
    session = factory.session
    process = hostile_definition(session)
    steps = ("registration", "seal", "tax", "invoice", "bank")
    agencies = ("market_regulation", "public_security", "taxation", "bank")
    step_titles = {lang: [process[f"step {key} {lang}"] for key in steps] for lang in ("zh", "en")}
    agency_names = {lang: [process[f"department {key} {lang}"] for key in agencies] for lang in ("zh", "en")}
    staff = Staff(session)
    families = {name: Cases(session, staff, payloads(name), date(2027, 1, 1 + i)) for i, name in enumerate(NAMES)}
    everyone = [staff.text(f"u{i}") for i in range(1, 8)] + [staff.text(f"u{i}d") for i in range(1, 8)]
    token = _token(session, staff.window)

    # The documents print every text as text (A is ready: its slip and receipt).
    for cases in families.values():
        t, a = cases.text, cases.a
        slip = client.get(f"/api/v1/cases/{a.case_no}/slip.pdf", headers={"Authorization": f"Bearer {token}"})
        receipt = client.get(f"/api/v1/cases/{a.case_no}/receipt.pdf", headers={"Authorization": f"Bearer {token}"})
        assert slip.status_code == receipt.status_code == 200
        assert _printed(slip.data, [t(c) for c in ("cn", "ad", "lr", "s1", "s2", "m1", "m2")] + [staff.text("u1d")]
                        + step_titles["zh"] + step_titles["en"] + agency_names["zh"]) == []
        assert _printed(receipt.data, [t(c) for c in ("cn", "ad", "lr", "ln", "fn", "bn")]
                        + [staff.text(c) for c in ("u2d", "u3d", "u4d", "u5d")]
                        + step_titles["zh"] + step_titles["en"] + agency_names["zh"]) == []
        ops.deliver_case(session, a, staff.window, method="mail", tracking_no=t("tn"))
        session.commit()

    browsers = []
    try:
        # The applicant: the tracking page, rating A through it (refused first: the comment typed back),
        # the receipt's verification page, and a case number that is not one (echoed back).
        public = Browser(browser, live_server)
        browsers.append(public)
        for cases in families.values():
            t, a = cases.text, cases.a
            track = "/track?" + urlencode({"case_no": a.case_no, "code": a.tracking_code, "lang": "en"})
            public.check(track, [t("cn")] + step_titles["en"] + agency_names["en"])
            comment = public.page.locator("#rating-comment")
            public.page.locator("input[name=score][value='1']").check()
            comment.evaluate("el => el.removeAttribute('maxlength')")  # as a hostile client would
            comment.fill(t("rc") + "。" * 500)  # over 500 characters: refused, typed back
            public.submit(public.page.get_by_role("button", name="Send my rating"), 422)
            public.check(None, [t("cn")])
            assert comment.input_value() == t("rc") + "。" * 500
            comment.fill(t("rc"))
            public.page.locator("input[name=score][value='1']").check()
            public.submit(public.page.get_by_role("button", name="Send my rating"), 200)  # after the redirect
            public.check(None, [t("cn")])
            assert public.page.get_by_role("heading", name="Your rating").is_visible()
            public.check(f"/verify/{receipts.sign_case_no(SECRET, a.case_no)}?lang=en", [t("cn")])
            public.check("/track?" + urlencode({"case_no": t("tq")[:40], "code": t("tc"), "lang": "en"}), status=404)
            assert public.page.locator("input[name=case_no]").input_value() == t("tq")[:40]

        # The window: its queue, every case page, a refused action's reason typed back, a 404 echoing a
        # case number, and the new application form refusing a bad ID number with the texts typed back.
        window = Browser(browser, live_server)
        browsers.append(window)
        window.sign_in(staff.window.username)
        window.check("/queue?lang=en", [cases.text("cn") for cases in families.values()])
        for cases in families.values():
            t = cases.text
            window.check(f"/cases/{cases.a.case_no}?lang=en", cases.applicant() + [
                t(c) for c in ("m1", "m2", "ln", "fn", "bn", "tn")] + everyone[:5] + everyone[8:12]
                + step_titles["en"] + agency_names["en"])
            window.check(f"/cases/{cases.c.case_no}?lang=en", [t("cn"), t("rr")])
            window.check(f"/cases/{cases.d.case_no}?lang=en", [t("cn"), t("fr"), staff.text("u2")])
            window.check(f"/cases/{cases.e.case_no}?lang=en", [t("cn"), t("wr")])
            window.check(f"/cases/{cases.g.case_no}?lang=en", cases.applicant())
            window.check(f"/cases/{cases.f.case_no}?lang=en", [t("cn"), staff.text("u2d")])
            reason = window.page.locator("#suspend-reason")
            reason.fill(t("st") + "。" * 500)  # over 500 characters: refused, typed back
            window.submit(window.page.locator("form", has=reason).get_by_role("button"), 422)
            window.check(None, [t("cn")])
            assert window.page.locator("#suspend-reason").input_value() == t("st") + "。" * 500
            window.check(f"/cases/{quote(t('cq').replace('/', ''), safe='')}?lang=en", [t("cq").replace("/", "")],
                         status=404)
            window.page.goto("/applications/new?lang=en")
            typed = {"company.name": t("cn"), "company.address": t("ad"), "company.business_scope": t("bs"),
                     "legal_representative.name": t("lr"), "shareholders.0.name": t("s1"),
                     "legal_representative.id_number": t("id")[:18]}
            for name, value in typed.items():
                window.page.locator(f"[name='{name}']").fill(value)
            window.submit(window.page.get_by_role("button", name="Submit application"), 422)
            window.check(None)
            assert "/applications/new" in window.page.url
            for name, value in typed.items():
                assert window.page.locator(f"[name='{name}']").input_value() == value, name

        # Market regulation: its queue holds the Fs' registrations, claimed by the clerk.
        market = Browser(browser, live_server)
        browsers.append(market)
        market.sign_in(staff.clerks["market_regulation"].username)
        market.check("/queue?lang=en", [cases.text("cn") for cases in families.values()] + [
            staff.text("u2d"), process["step registration en"], process["department market_regulation en"]])

        # The supervisor: the board (the Fs late, the As' poor ratings and their comments), the audit
        # viewer with searches echoed back, the dashboard's open breaches with the reasons given.
        boss = Browser(browser, live_server)
        browsers.append(boss)
        boss.sign_in(staff.boss.username)
        boss.check("/board?lang=en", [cases.text(c) for cases in families.values() for c in ("cn", "rc")]
                   + [staff.text("u2d")])
        boss.check("/audit?" + urlencode({"case_no": families["url"].a.case_no, "lang": "en"}), everyone[:5])
        boss.check("/dashboard?lang=en", [cases.text("br") for cases in families.values()] + [staff.text("u2"),
                                                                                                  staff.text("u6")])
        for cases in families.values():
            t = cases.text
            boss.check("/audit?" + urlencode({"actor": t("aq"), "case_no": t("an")[:20], "lang": "en"}))
            assert boss.page.locator("#audit-actor").input_value() == t("aq")
            boss.check("/dashboard?" + urlencode({"from": t("df"), "lang": "en"}), status=422)

        # The admin: users, one user's tokens, the calendar's day names, the board of every department.
        admin = Browser(browser, live_server)
        browsers.append(admin)
        admin.sign_in(staff.admin.username)
        admin.check("/admin/users?lang=en", everyone)
        admin.check(f"/admin/users/{quote(staff.clerks['taxation'].username, safe='')}?lang=en",
                    [staff.text("u4"), staff.text("u4d")] + [cases.text("tl") for cases in families.values()])
        admin.check("/admin/calendar?year=2027&lang=en", [cases.text("cd") for cases in families.values()])
        admin.check("/board?lang=en", [cases.text(c) for cases in families.values() for c in ("cn", "rc")])
        admin.check("/admin/definitions?lang=en", [process["pen"]] + step_titles["en"] + agency_names["en"])
    finally:
        for b in browsers:
            b.close()
    print(f"{sum(b.pages for b in browsers)} pages checked, {3 * 2} documents")


def _token(session, actor) -> str:
    token = accounts.create_token(session, actor.username)
    session.commit()
    return token
