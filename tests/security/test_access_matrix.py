"""Every door of the app tried by every kind of user: the access matrix (issue 9, item 4).

The specification is the table ``DOORS`` below, written from the contract's role rules
(/work/shared/contract.md §1, §4 and §5) and docs/decisions.md, not read from the code: for each
rule of ``app.url_map`` and each of its methods, who may pass. Werkzeug answers HEAD as GET without
the body and OPTIONS with the list of methods only, so those two are left out. A rule whose path has
an ``any(...)`` part or a ``<step>`` gets one row per action and per step of the process.
``test_every_rule_of_the_url_map_has_a_row`` fails for a new endpoint (or a new action or step)
without its row, and for a row whose endpoint is gone.

Every row is tried by anonymous, an admin, and a clerk and a supervisor of each department, on
real objects: cases in the state the action needs, steps ready or claimed in the right department
(claimed by that department's clerk, so "the holder" of the contract is the clerk tried).
"Allowed" means the action's access check passed. Most allowed calls succeed (2xx, or 303 after a
form); a few rows expect a 409 or 422 instead, because the access check comes first and the state
or the body refuses after it — each such row says so in ``note``. Refused means 401 for the REST API
(no bearer token), a redirect to the sign-in page for pages (``/?next=…``), and 403 for a signed-in
user without the right. A refused call must change nothing: the case it aimed at keeps its version.

Pages are tried with CSRF checks off and the rate limits off: both are tested on their own
(tests/security/test_sessions_csrf.py, tests/api/test_track_api.py); here they would answer 400 or
429 before the access check.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from api import create_app
from tests.factories import PASSWORD, outputs_for
from workflow import accounts, operations as ops, receipts, tracking
from workflow.actors import Role
from workflow.definitions import store
from workflow.models import Case, FollowUp, Notification

pytestmark = pytest.mark.slow

# ---------------------------------------------------------------- who

# The contract's departments (§1) and the roles of workflow.actors.Role; a new one fails
# test_every_role_and_department_is_tried until it is added here.
DEPARTMENTS = ("service_window", "market_regulation", "public_security", "taxation", "bank")
AGENCIES = DEPARTMENTS[1:]
# Contract §1: the department that owns each step.
OWNER = {"registration": "market_regulation", "seal": "public_security", "tax": "taxation",
         "invoice": "taxation", "bank": "bank"}
STEPS = tuple(OWNER)
# The steps a step needs first (contract §1), to bring a step to ``ready``.
NEEDS = {"registration": (), "seal": ("registration",), "tax": ("registration",), "invoice": ("registration", "tax"),
         "bank": ("registration",)}


@dataclass(frozen=True)
class Who:
    role: str | None  # None: anonymous
    department: str | None = None

    def __str__(self) -> str:
        if self.role is None:
            return "anonymous"
        return self.role if self.department is None else f"{self.role}@{self.department}"


ANONYMOUS = Who(None)
ADMIN = Who("admin")
SUBJECTS = (ANONYMOUS, ADMIN) + tuple(Who(role, department) for department in DEPARTMENTS
                                      for role in ("clerk", "supervisor"))


# ---------------------------------------------------------------- the rules, as the contract says them

def anyone(who: Who) -> bool:
    return True


def staff(who: Who) -> bool:
    return who.role is not None


def admins(who: Who) -> bool:
    return who.role == "admin"


def supervisors_and_admins(who: Who) -> bool:
    return who.role in ("supervisor", "admin")


def clerks_and_supervisors(who: Who) -> bool:
    """Those with a department's work queue."""
    return who.role in ("clerk", "supervisor")


def window(who: Who) -> bool:
    """The comprehensive window (综合窗口): its clerks and its supervisors."""
    return who.department == "service_window" and who.role in ("clerk", "supervisor")


def window_or_case_supervisor(who: Who) -> bool:
    """Suspend and resume: the window, or a supervisor of an agency with a step in the case (every
    agency here: the cases want every optional step)."""
    return window(who) or (who.role == "supervisor" and who.department in AGENCIES)


def of_department(department: str) -> Callable[[Who], bool]:
    """A clerk or supervisor of the step's owning department (the clerk tried holds claimed steps)."""
    def rule(who: Who) -> bool:
        return who.department == department and who.role in ("clerk", "supervisor")
    rule.__name__ = f"of_{department}"
    return rule


def supervisor_of(department: str) -> Callable[[Who], bool]:
    def rule(who: Who) -> bool:
        return who.department == department and who.role == "supervisor"
    rule.__name__ = f"supervisor_of_{department}"
    return rule


def notified(department: str) -> Callable[[Who], bool]:
    """A notification is read by a supervisor of its department or by an admin."""
    def rule(who: Who) -> bool:
        return who.role == "admin" or (who.department == department and who.role == "supervisor")
    rule.__name__ = f"notified_{department}"
    return rule


# ---------------------------------------------------------------- real objects


@dataclass
class Call:
    """One request on real objects: its path and options, and what it acts on."""

    path: str
    options: dict = field(default_factory=dict)  # json=, data=, query_string=, content_type=
    key: str | None = None  # the object it uses up when allowed (a fresh one for the next caller)
    case: Case | None = None  # the case whose version a refusal must leave unchanged


class World:
    """The objects the doors act on, built on first use through the engine's own operations."""

    def __init__(self, app, session, factory):
        self.app, self.session, self.factory = app, session, factory
        self.objects: dict[str, object] = {}
        self.made = 0

    def get(self, key: str, build: Callable[[], object]):
        if key not in self.objects:
            self.objects[key] = build()
            self.session.commit()
        return self.objects[key]

    def spend(self, key: str | None) -> None:
        self.objects.pop(key, None)

    def version(self, case: Case) -> int:
        version = self.session.scalar(select(Case.version).where(Case.id == case.id))
        self.session.commit()
        return version

    # -- cases and steps

    def case(self, state: str) -> Case:
        return self.get(state, lambda: self.factory.case(state))

    def step_ready(self, step: str) -> Case:
        def build():
            case = self.factory.case("in_progress")
            if NEEDS[step]:  # (finish_steps with no step named finishes them all)
                self.factory.finish_steps(case, *NEEDS[step])
            return case
        return self.get(f"ready:{step}", build)

    def step_claimed(self, step: str) -> Case:
        def build():
            case = self.factory.case("in_progress")
            if NEEDS[step]:  # (finish_steps with no step named finishes them all)
                self.factory.finish_steps(case, *NEEDS[step])
            ops.claim_step(self.session, case, step, self.factory.clerk(OWNER[step]))
            return case
        return self.get(f"claimed:{step}", build)

    def delivered(self, key: str) -> Case:
        return self.get(key, lambda: self.factory.case("delivered"))

    def follow_up(self) -> int:
        def build():
            case = self.factory.case("delivered")
            tracking.rate(self.session, case, 1, "等了很久")
            self.session.flush()
            return self.session.scalar(select(FollowUp.id).where(FollowUp.case_id == case.id))
        return self.get("follow-up", build)

    def notification(self, department: str) -> int:
        """A breach notice for ``department`` (the timer worker's row, written as it writes it)."""
        def build():
            case = self.factory.case("in_progress")
            subject = "case" if department == "service_window" else next(s for s, d in OWNER.items() if d == department)
            notice = Notification(department=department, case_id=case.id, subject=subject, kind="sla_breach",
                                  message=f"{case.case_no} {subject} breached")
            self.session.add(notice)
            self.session.flush()
            return notice.id
        return self.get(f"notification:{department}", build)

    # -- accounts

    def victim(self) -> str:
        """An account for the admin pages to act on (never one of the users being tried)."""
        def build():
            self.made += 1
            return accounts.create_user(self.session, f"matrix-victim-{self.made}", PASSWORD, "clerk", "bank").username
        return self.get("victim", build)

    def victim_token(self) -> int:
        def build():
            accounts.create_token(self.session, self.victim(), "matrix")
            return accounts.tokens_of(self.session, self.victim())[-1].id
        return self.get("victim-token", build)

    def new_username(self) -> str:
        self.made += 1
        return f"matrix-made-{self.made}"

    def username(self, who: Who) -> str:
        return self.factory.actor(who.role, who.department).username


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class Door:
    endpoint: str
    method: str
    who: Callable[[Who], bool]  # the specification: who passes the access check
    call: Callable[[World], Call]
    ok: tuple[int, ...]  # what an allowed caller gets
    variant: tuple[tuple[str, str], ...] = ()  # the any(...) item and the step this row is for
    spends: bool = False  # an allowed call changes the object: the next caller gets a fresh one
    note: str = ""

    @property
    def api(self) -> bool:
        return self.endpoint.split(".")[0] in API_BLUEPRINTS or self.endpoint == "swagger_ui_static"

    def __str__(self) -> str:
        variant = ",".join(f"{k}={v}" for k, v in self.variant)
        return f"{self.method} {self.endpoint}" + (f"[{variant}]" if variant else "")


API_BLUEPRINTS = {"cases", "documents", "verify", "track", "calendar", "notifications", "reports", "api-docs"}
REASON = "材料不齐"
CASE_BODIES = {"accept": {}, "reject": {"reason": REASON}, "suspend": {"reason": REASON}, "resume": {},
               "withdraw": {"reason": REASON}, "deliver": {"method": "counter"}}
# The state each case action starts from (contract §1).
CASE_STATE_FOR = {"accept": "submitted", "reject": "submitted", "suspend": "in_progress", "resume": "suspended",
                  "withdraw": "in_progress", "deliver": "ready"}
CASE_RULES = {"accept": window, "reject": window, "withdraw": window, "deliver": window,
              "suspend": window_or_case_supervisor, "resume": window_or_case_supervisor}


def step_body(world: World, step: str, action: str) -> dict:
    if action == "complete":
        return outputs_for(step)
    if action == "refuse":
        return {"reason": REASON}
    if action == "reassign":  # the department's supervisor may take it over
        return {"assignee": world.username(Who("supervisor", OWNER[step]))}
    return {}


def step_rule(step: str, action: str):
    return supervisor_of(OWNER[step]) if action == "reassign" else of_department(OWNER[step])


def step_case(world: World, step: str, action: str) -> tuple[Case, str]:
    if action == "claim":
        return world.step_ready(step), f"ready:{step}"
    return world.step_claimed(step), f"claimed:{step}"


def as_form(values: dict) -> dict:
    """A JSON body as an HTML form sends it: booleans as a ticked box, lists as repeated fields."""
    form = {}
    for name, value in values.items():
        if isinstance(value, bool):
            if value:
                form[name] = "on"
        elif isinstance(value, list):
            form[name] = value
        else:
            form[name] = str(value)
    return form


def rest_doors() -> list[Door]:
    v1 = "/api/v1"
    doors = [
        Door("cases.Cases", "GET", staff, lambda w: Call(f"{v1}/cases"), (200,)),
        Door("cases.Cases", "POST", window, lambda w: Call(f"{v1}/cases", {"json": _application()}), (201,)),
        Door("cases.CaseById", "GET", staff,
             lambda w: Call(f"{v1}/cases/{w.case('in_progress').case_no}"), (200,)),
        Door("cases.CaseEvents", "GET", staff,
             lambda w: Call(f"{v1}/cases/{w.case('in_progress').case_no}/events"), (200,)),
        Door("documents.receipt", "GET", staff,
             lambda w: Call(f"{v1}/cases/{w.case('submitted').case_no}/receipt.pdf"), (409,),
             note="409 after the check: a submitted case has no receipt yet (spares a render per caller)"),
        Door("documents.slip", "GET", staff,
             lambda w: Call(f"{v1}/cases/{w.case('submitted').case_no}/slip.pdf"), (409,),
             note="409 after the check: a submitted case has no acceptance slip yet"),
        Door("notifications.Notifications", "GET", supervisors_and_admins,
             lambda w: Call(f"{v1}/notifications"), (200,)),
        Door("calendar.Days", "GET", staff, lambda w: Call(f"{v1}/calendar/days"), (200,)),
        Door("calendar.Days", "POST", admins, lambda w: Call(f"{v1}/calendar/days", {"json": {
            "days": [{"date": "2031-01-02", "kind": "holiday", "name": "matrix"}]}}), (200,)),
        Door("calendar.import_csv", "POST", admins, lambda w: Call(f"{v1}/calendar/import", {
            "data": "2031-01-03,holiday,matrix\n", "content_type": "text/csv"}), (200,)),
        Door("reports.Elapsed", "GET", supervisors_and_admins, lambda w: Call(f"{v1}/reports/elapsed"), (200,)),
        Door("reports.Breaches", "GET", supervisors_and_admins, lambda w: Call(f"{v1}/reports/breaches"), (200,)),
        Door("reports.Ratings", "GET", supervisors_and_admins, lambda w: Call(f"{v1}/reports/ratings"), (200,)),
        Door("track.track", "GET", anyone, lambda w: Call(f"{v1}/track", {"query_string": _tracking(w)}), (200,)),
        Door("track.rate", "POST", anyone, lambda w: Call(f"{v1}/track/rating", {
            "query_string": _tracking(w, w.delivered("delivered:api")), "json": {"score": 5}}), (201, 409),
             note="201 for the first rating, then 409: a case is rated once (the door is open to all)"),
        Door("verify.verify", "GET", anyone, lambda w: Call(f"{v1}/verify/{_token(w)}"), (200,)),
        Door("api-docs.openapi_json", "GET", anyone, lambda w: Call(f"{v1}/openapi.json"), (200,)),
        Door("api-docs.openapi_swagger_ui", "GET", anyone, lambda w: Call(f"{v1}/docs"), (200,)),
        Door("swagger_ui_static", "GET", anyone, lambda w: Call(f"{v1}/docs/static/swagger-ui.css"), (200,)),
    ]
    for action, rule in CASE_RULES.items():
        state = CASE_STATE_FOR[action]
        doors.append(Door(f"cases.{action}", "POST", rule, _case_call(f"{v1}/cases/{{}}/{action}", state, action,
                                                                      json=True), (200,), spends=True))
    for step in STEPS:
        for action in ("claim", "release", "complete", "refuse", "reassign"):
            doors.append(Door(f"cases.{action}", "POST", step_rule(step, action),
                              _step_call(f"{v1}/cases/{{}}/steps/{step}/{action}", step, action, json=True), (200,),
                              variant=(("step", step),), spends=True))
    for department in DEPARTMENTS:
        doors.append(Door("notifications.read", "POST", notified(department),
                          lambda w, d=department: Call(f"{v1}/notifications/{w.notification(d)}/read"), (200,),
                          variant=(("department", department),),
                          note="one row per department whose supervisors the notice is for"))
    return doors


def page_doors() -> list[Door]:
    doors = [
        Door("auth.sign_in", "GET", anyone, lambda w: Call("/"), (200, 302),
             note="signed-in users are sent on to their home (302)"),
        Door("auth.sign_in", "POST", anyone, lambda w: Call("/", {"data": {"username": "nobody", "password": "x"}}),
             (200, 302), note="a refused sign-in answers 200 with the form; signed-in users go home (302)"),
        Door("auth.sign_out", "POST", anyone, lambda w: Call("/signout"), (302,)),
        Door("staff.queue", "GET", clerks_and_supervisors, lambda w: Call("/queue"), (200,)),
        Door("staff.board", "GET", supervisors_and_admins, lambda w: Call("/board"), (200,)),
        Door("staff.close_follow_up", "POST", supervisors_and_admins,
             lambda w: Call(f"/board/follow-ups/{w.follow_up()}/close", {"data": {"reply": "已致电申请人"}}),
             (303, 409), note="303 for the first reply, then 409 after the check: it is closed"),
        Door("dashboard.show", "GET", supervisors_and_admins, lambda w: Call("/dashboard"), (200,)),
        Door("dashboard.export", "GET", supervisors_and_admins,
             lambda w: Call("/dashboard.csv", {"query_string": {"table": "states"}}), (200,)),
        Door("audit.search", "GET", supervisors_and_admins, lambda w: Call("/audit"), (200,)),
        Door("admin.index", "GET", admins, lambda w: Call("/admin"), (200,)),
        Door("admin.users", "GET", admins, lambda w: Call("/admin/users"), (200,)),
        Door("admin.create_user", "POST", admins, lambda w: Call("/admin/users", {"data": {
            "username": w.new_username(), "password": PASSWORD, "role": "clerk", "department": "bank"}}), (303,)),
        Door("admin.user", "GET", admins, lambda w: Call(f"/admin/users/{w.victim()}"), (200,)),
        Door("admin.reset_password", "POST", admins, lambda w: Call(f"/admin/users/{w.victim()}/password", {"data": {
            "password": "another horse battery", "password_again": "another horse battery"}}), (303,)),
        Door("admin.issue_token", "POST", admins,
             lambda w: Call(f"/admin/users/{w.victim()}/tokens", {"data": {"label": "matrix"}}), (200,)),
        Door("admin.revoke_token", "POST", admins, lambda w: Call(f"/admin/tokens/{w.victim_token()}/revoke",
                                                                  key="victim-token"), (303,), spends=True),
        Door("admin.calendar", "GET", admins, lambda w: Call("/admin/calendar"), (200,)),
        Door("admin.add_day", "POST", admins, lambda w: Call("/admin/calendar/days", {"data": {
            "date": "2031-01-06", "kind": "holiday", "name": "matrix", "year": "2031"}}), (303,)),
        Door("admin.import_calendar", "POST", admins, lambda w: Call("/admin/calendar/import", {"data": {
            "year": "2031", "file": (io.BytesIO(b"2031-01-07,holiday,matrix\n"), "days.csv")},
            "content_type": "multipart/form-data"}), (303,)),
        Door("admin.definitions", "GET", admins, lambda w: Call("/admin/definitions"), (200,)),
        Door("admin.publish_definition", "POST", admins,
             lambda w: Call("/admin/definitions", {"data": {"document": "{}"}}), (422,),
             note="422 after the check: an empty document is refused, so the process the other rows use stays"),
        Door("window.new_application", "GET", window, lambda w: Call("/applications/new"), (200,)),
        Door("window.create_application", "POST", window,
             lambda w: Call("/applications/new", {"data": {"form_id": "not-given", "company.name": "示例"}}), (409,),
             note="409 after the check: a form this session was not given is shown again, nothing stored"),
        Door("case_pages.show", "GET", staff, lambda w: Call(f"/cases/{w.case('in_progress').case_no}"), (200,)),
        Door("case_pages.receipt", "GET", staff, lambda w: Call(f"/cases/{w.case('submitted').case_no}/receipt.pdf"),
             (409,), note="409 after the check: a submitted case has no receipt yet"),
        Door("case_pages.slip", "GET", staff, lambda w: Call(f"/cases/{w.case('submitted').case_no}/slip.pdf"),
             (409,), note="409 after the check: a submitted case has no acceptance slip yet"),
        Door("public.track", "GET", anyone, lambda w: Call("/track", {"query_string": _tracking(w)}), (200,)),
        Door("public.rate", "POST", anyone, lambda w: Call("/track/rating", {
            "data": {**_tracking(w, w.delivered("delivered:page")), "score": "5"}}), (303, 409),
             note="303 for the first rating, then 409: a case is rated once (the door is open to all)"),
        Door("public.verify", "GET", anyone, lambda w: Call(f"/verify/{_token(w)}"), (200,)),
        Door("public.health", "GET", anyone, lambda w: Call("/healthz"), (200,)),
        Door("static", "GET", anyone, lambda w: Call("/static/css/site.css"), (200,)),
    ]
    for action in ("disable", "enable"):
        doors.append(Door("admin.set_active", "POST", admins,
                          lambda w, a=action: Call(f"/admin/users/{w.victim()}/{a}"), (303,),
                          variant=(("action", action),)))
    for action, rule in CASE_RULES.items():
        doors.append(Door("case_pages.case_action", "POST", rule,
                          _case_call(f"/cases/{{}}/{action}", CASE_STATE_FOR[action], action, json=False), (303,),
                          variant=(("action", action),), spends=True))
    for step in STEPS:
        for action in ("claim", "release", "complete", "refuse", "reassign"):
            doors.append(Door("case_pages.step_action", "POST", step_rule(step, action),
                              _step_call(f"/cases/{{}}/steps/{step}/{action}", step, action, json=False), (303,),
                              variant=(("action", action), ("step", step)), spends=True))
    for department in DEPARTMENTS:
        doors.append(Door("staff.read_notification", "POST", notified(department),
                          lambda w, d=department: Call(f"/board/notifications/{w.notification(d)}/read"), (303,),
                          variant=(("department", department),),
                          note="one row per department whose supervisors the notice is for"))
    return doors


def _application() -> dict:
    from tests.factories import application
    return application()


def _tracking(world: World, case: Case | None = None) -> dict:
    case = case or world.case("in_progress")
    return {"case_no": case.case_no, "code": case.tracking_code}


def _token(world: World) -> str:
    return receipts.sign_case_no(world.app.config["SECRET_KEY"], world.case("ready").case_no)


def _case_call(template: str, state: str, action: str, *, json: bool):
    def call(world: World) -> Call:
        case = world.case(state)
        body = CASE_BODIES[action]
        options = {"json": body} if json else {"data": {**body, "version": str(world.version(case))}}
        return Call(template.format(case.case_no), options, key=state, case=case)
    return call


def _step_call(template: str, step: str, action: str, *, json: bool):
    def call(world: World) -> Call:
        case, key = step_case(world, step, action)
        body = step_body(world, step, action)
        options = {"json": body} if json else {"data": {**as_form(body), "version": str(world.version(case))}}
        return Call(template.format(case.case_no), options, key=key, case=case)
    return call


DOORS = rest_doors() + page_doors()


# ---------------------------------------------------------------- trying the doors

class Callers:
    """How each subject knocks: a bearer token for the API, a signed-in test client for pages."""

    def __init__(self, app, factory):
        self.app, self.factory = app, factory
        self.tokens: dict[Who, str] = {}
        self.clients: dict[Who, object] = {}

    def token(self, who: Who) -> str:
        if who not in self.tokens:
            self.tokens[who] = self.factory.token(who.role, who.department)
        return self.tokens[who]

    def client(self, who: Who):
        if who not in self.clients:
            client = self.app.test_client()
            if who is not ANONYMOUS:
                username = self.factory.actor(who.role, who.department).username
                signed = client.post("/", data={"username": username, "password": PASSWORD})
                assert signed.status_code == 302, f"{who} could not sign in"
            self.clients[who] = client
        return self.clients[who]

    def send(self, door: Door, who: Who, call: Call):
        options = dict(call.options)
        if door.api:
            client = self.app.test_client()
            if who is not ANONYMOUS:
                options["headers"] = {"Authorization": f"Bearer {self.token(who)}"}
        else:
            client = self.client(who)
            if door.endpoint == "auth.sign_out":
                # Sign out a copy: the session lives in the cookie, so the subject stays signed in.
                client = self.copy(client)
        response = client.open(call.path, method=door.method, **options)
        response.get_data()
        response.close()  # a static file's handle, closed now rather than by the garbage collector
        return response

    def copy(self, client):
        twin = self.app.test_client()
        cookie = client.get_cookie("session")
        if cookie is not None:
            twin.set_cookie("session", cookie.value)
        return twin


def outcome(response) -> str:
    """What the caller met: ``401``, ``403``, ``sign-in`` (a redirect to the sign-in page) or the status."""
    if response.status_code in (301, 302, 303):
        target = urlsplit(response.headers["Location"])
        if target.path == "/" and "next" in parse_qs(target.query):
            return "sign-in"
    return str(response.status_code)


def expected_refusal(door: Door, who: Who) -> str:
    if who is ANONYMOUS:
        return "401" if door.api else "sign-in"
    return "403"


@pytest.fixture
def matrix_app(database_url):
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test", "TESTING": True,
                      "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    yield app
    app.extensions["onewindow.db"].kw["bind"].dispose()


def try_doors(doors: list[Door], app, session, factory) -> tuple[list[str], int]:
    world, callers = World(app, session, factory), Callers(app, factory)
    wrong, tried = [], 0
    for door in doors:
        for who in SUBJECTS:
            call = door.call(world)
            before = world.version(call.case) if call.case is not None else None
            response = callers.send(door, who, call)
            tried += 1
            met = outcome(response)
            if door.who(who):
                if met not in {str(code) for code in door.ok}:
                    wrong.append(f"{door} as {who}: allowed by the table, got {met} (expected {door.ok})"
                                 f" {response.get_data(as_text=True)[:200]!r}")
                elif door.spends:
                    world.spend(call.key)
            else:
                if met != expected_refusal(door, who):
                    wrong.append(f"{door} as {who}: refused by the table ({expected_refusal(door, who)}), got {met}")
                if before is not None and world.version(call.case) != before:
                    wrong.append(f"{door} as {who}: a refused call changed case {call.case.case_no}")
    return wrong, tried


def test_the_rest_api_lets_in_exactly_whom_the_contract_names(matrix_app, session, factory):
    doors = [door for door in DOORS if door.api]
    wrong, tried = try_doors(doors, matrix_app, session, factory)
    assert tried == len(doors) * len(SUBJECTS)
    assert not wrong, "\n".join(wrong)


def test_the_pages_let_in_exactly_whom_the_contract_names(matrix_app, session, factory):
    doors = [door for door in DOORS if not door.api]
    wrong, tried = try_doors(doors, matrix_app, session, factory)
    assert tried == len(doors) * len(SUBJECTS)
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------- the table covers the app

ANY = re.compile(r"<any\(([^)]*)\):(\w+)>")


def required_rows(app) -> set[tuple[str, str, tuple]]:
    """(endpoint, method, variant) for every rule and method, every any(...) item and every step."""
    with app.app_context():
        from api.database import session as db_session

        steps = tuple(step.key for step in store.current(db_session()).steps)
    rows = set()
    for rule in app.url_map.iter_rules():
        choices = [(name, tuple(item.strip().strip("'\"") for item in items.split(",")))
                   for items, name in ANY.findall(rule.rule)]
        if "step" in rule.arguments:
            choices.append(("step", steps))
        if rule.endpoint.endswith("read_notification") or rule.endpoint == "notifications.read":
            choices.append(("department", DEPARTMENTS))  # the notice's department decides who reads it
        variants = [()]
        for name, items in choices:
            variants = [variant + ((name, item),) for variant in variants for item in items]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            for variant in variants:
                rows.add((rule.endpoint, method, tuple(sorted(variant))))
    return rows


def test_every_rule_of_the_url_map_has_a_row(app):
    table = {(door.endpoint, door.method, tuple(sorted(door.variant))) for door in DOORS}
    assert len(table) == len(DOORS), "a row is in the table twice"
    required = required_rows(app)
    missing, stale = sorted(required - table), sorted(table - required)
    assert not missing, f"endpoints without a row in DOORS (say who may use them): {missing}"
    assert not stale, f"rows for endpoints the app no longer has: {stale}"


def test_every_role_and_department_is_tried(app):
    with app.app_context():
        from api.database import session as db_session

        definition = store.current(db_session())
        departments = set(definition.departments)
        owners = {step.key: step.department for step in definition.steps}
    assert departments == set(DEPARTMENTS)
    assert owners == OWNER
    assert {who.role for who in SUBJECTS} - {None} == {role.value for role in Role}
    assert {who.department for who in SUBJECTS if who.role == "clerk"} == departments
    assert {who.department for who in SUBJECTS if who.role == "supervisor"} == departments


def test_a_claimed_step_is_for_its_holder_and_the_supervisor_not_for_another_clerk(matrix_app, session, factory):
    """The matrix's clerks hold the steps they try; a second clerk of the same department is refused."""
    other = accounts.create_user(session, "second-taxation-clerk", PASSWORD, "clerk", "taxation").username
    token = accounts.create_token(session, other)
    session.commit()
    world = World(matrix_app, session, factory)
    page = matrix_app.test_client()
    assert page.post("/", data={"username": other, "password": PASSWORD}).status_code == 302
    for action in ("release", "complete", "refuse"):
        case = world.step_claimed("tax")
        body = step_body(world, "tax", action)
        before = world.version(case)
        api = matrix_app.test_client().post(f"/api/v1/cases/{case.case_no}/steps/tax/{action}", json=body,
                                            headers={"Authorization": f"Bearer {token}"})
        form = page.post(f"/cases/{case.case_no}/steps/tax/{action}", data={**as_form(body), "version": str(before)})
        assert (api.status_code, form.status_code) == (403, 403), action
        assert world.version(case) == before
    holder = Callers(matrix_app, factory).token(Who("clerk", "taxation"))
    done = matrix_app.test_client().post(f"/api/v1/cases/{case.case_no}/steps/tax/refuse", json={"reason": REASON},
                                         headers={"Authorization": f"Bearer {holder}"})
    assert done.status_code == 200 and done.json["state"] == "rejected"


def test_switching_rate_limits_off_for_the_matrix_leaves_the_next_app_throttled(matrix_app, database_url):
    """Flask-Limiter keeps ``enabled`` on its one shared Limiter: create_app says it for every app."""
    assert matrix_app.config["RATELIMIT_ENABLED"] is False
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test", "TESTING": True})
    try:
        client = app.test_client()
        misses = [client.get("/api/v1/track", query_string={"case_no": "KB20260101-0001", "code": "WRONG"}).status_code
                  for _ in range(11)]
        assert misses == [404] * 10 + [429]
    finally:
        app.extensions["onewindow.db"].kw["bind"].dispose()
