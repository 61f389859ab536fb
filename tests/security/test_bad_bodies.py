"""Bodies the app cannot use (issue 9, hostile input): too large, not JSON, not an object, too deep.

Every POST, PUT and PATCH endpoint is taken from ``app.url_map``, so a new one is tested without
being listed here. Under /api/ the answers are ``application/problem+json``: 413 past
``MAX_CONTENT_LENGTH`` (1 MiB), 400 with a detail saying what is wrong for a body that is not a JSON
object; elsewhere a too-large body gets the HTML 413 page. Nothing a refused request carried is stored.
"""
from __future__ import annotations

import io
import json
import re

import pytest
from sqlalchemy import func, select

from api import create_app
from workflow.models import Case, Event

PROBLEM = "application/problem+json"
WRITES = {"POST", "PUT", "PATCH"}
LIMIT = 1024 * 1024


def _collect(app):
    """The app's writing routes, and whether the OpenAPI document says each one reads JSON."""
    assert app.config["MAX_CONTENT_LENGTH"] == LIMIT
    spec = app.test_client().get("/api/v1/openapi.json").json
    rules, reads_json, statuses = [], {}, {}
    for rule in app.url_map.iter_rules():
        if not rule.methods & WRITES:
            continue
        rules.append(rule)
        method = _method(rule).lower()
        operation = spec["paths"].get(re.sub(r"<(?:[^<>]*:)?([^<>:]+)>", r"{\1}", rule.rule), {}).get(method, {})
        documented = operation.get("requestBody", {}).get("content", {})
        reads_json[rule.rule] = not documented or any(media.endswith("json") for media in documented)
        statuses[rule.rule] = set(operation.get("responses", {}))
    return rules, reads_json, statuses


def _method(rule) -> str:
    return sorted(rule.methods & WRITES)[0]


# Built once at collection, for the routes and for the pages' test: a too-large form is refused
# before anything reads the database.
APP = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "test", "TESTING": True})
RULES, READS_JSON, DOCUMENTED = _collect(APP)
API_RULES = [rule for rule in RULES if rule.rule.startswith("/api/")]
PAGE_RULES = [rule for rule in RULES if not rule.rule.startswith("/api/")]


def _id(rule) -> str:
    return f"{_method(rule)} {rule.rule}"


@pytest.fixture
def world(factory):
    """A running case, its version and event count, and a window clerk's token."""
    case = factory.case("in_progress")
    token = factory.token("clerk", "service_window")
    return {"case": case, "token": token, "values": {**PLACEHOLDERS, "case_no": case.case_no}}


# A value for each URL argument of a writing route; a new argument name fails _url() until added.
PLACEHOLDERS = {"case_no": "KB20260105-0001", "step": "registration", "notification_id": 1, "follow_up_id": 1,
                "token_id": 1, "username": "nobody"}


def _url(rule, values) -> str:
    """The rule's URL with a value for each argument (the first choice of an ``any(...)``)."""
    filled = {}
    for name in rule.arguments:
        choices = getattr(rule._converters[name], "items", None)
        assert choices or name in values, f"{rule.rule}: no test value for <{name}>; add one to PLACEHOLDERS"
        filled[name] = sorted(choices)[0] if choices else values[name]
    return rule.build(filled, append_unknown=False)[1]


def _unchanged(engine, world):
    """The case's version and the number of audit events: what any action would move."""
    with engine.connect() as conn:
        version = conn.execute(select(Case.version).where(Case.case_no == world["case"].case_no)).scalar_one()
        return version, conn.execute(select(func.count()).select_from(Event)).scalar_one()


# What a client can get wrong about a JSON body, and a word the 400's detail must contain.
MALFORMED = {
    "bad syntax": ({"data": '{"reason": "补正材料",', "content_type": "application/json"}, "not valid JSON"),
    "single quotes": ({"data": "{'reason': 'x'}", "content_type": "application/json"}, "not valid JSON"),
    "not UTF-8": ({"data": '{"reason": "补正"}'.encode("gb18030"), "content_type": "application/json"},
                  "not valid JSON"),
    "plain text": ({"data": '{"reason": "x"}', "content_type": "text/plain"}, "application/json"),
    "a form": ({"data": {"reason": "x"}}, "application/json"),
    "no content type": ({"data": '{"reason": "x"}', "content_type": ""}, "application/json"),
    "an array": ({"data": '[{"reason": "x"}]', "content_type": "application/json"}, "must be an object"),
    "a string": ({"data": '"reason"', "content_type": "application/json"}, "must be an object"),
    "a number": ({"data": "42", "content_type": "application/json"}, "must be an object"),
    "null": ({"data": "null", "content_type": "application/json"}, "must be an object"),
    "true": ({"data": "true", "content_type": "application/json"}, "must be an object"),
    "40 levels deep": ({"data": '{"reason": ' + "[" * 40 + "]" * 40 + "}", "content_type": "application/json"},
                       "levels deep"),
    # Python's json would raise RecursionError (a 500) here.
    "100 000 levels deep": ({"data": '{"a": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001,
                             "content_type": "application/json"}, "levels deep"),
}


@pytest.mark.parametrize("rule", API_RULES, ids=_id)
def test_an_api_write_refuses_a_body_it_cannot_use(client, engine, world, rule):
    """Past 1 MiB a 413; not a JSON object (where the document says JSON) a 400 naming the fault; nothing stored."""
    url, method = _url(rule, world["values"]), _method(rule)
    headers = {"Authorization": f"Bearer {world['token']}"}
    before = _unchanged(engine, world)
    wrong = {}
    for name, (request, word) in MALFORMED.items() if READS_JSON[rule.rule] else ():
        response = client.open(url, method=method, headers=headers, **request)
        body = response.get_json(silent=True) or {}
        if (response.status_code, response.mimetype, body.get("status")) != (400, PROBLEM, 400) \
                or word not in body.get("detail", "") or not body.get("title"):
            wrong[name] = (response.status_code, response.mimetype, response.get_data(as_text=True)[:200])
    response = client.open(url, method=method, headers=headers, data=json.dumps({"reason": "x" * LIMIT}),
                           content_type="application/json")
    body = response.get_json(silent=True) or {}
    if (response.status_code, response.mimetype, body.get("status")) != (413, PROBLEM, 413) \
            or str(LIMIT) not in body.get("detail", ""):
        wrong["past 1 MiB"] = (response.status_code, response.mimetype, response.get_data(as_text=True)[:200])
    assert not wrong, wrong
    assert _unchanged(engine, world) == before
    # ... and the OpenAPI document says so, for clients and for the schemathesis run.
    assert {"413", "400"} - DOCUMENTED[rule.rule] <= ({"400"} if not READS_JSON[rule.rule] else set())


def test_the_routes_come_from_the_app():
    """The lists are the app's url_map, not hand-kept: they hold the writing routes one knows of, and the pages'."""
    endpoints = {rule.endpoint for rule in API_RULES}
    assert {"cases.Cases", "cases.accept", "cases.complete", "calendar.Days", "calendar.import_csv",
            "notifications.read", "track.rate"} <= endpoints
    assert len(API_RULES) >= 16 and {"auth.sign_in", "window.create_application"} <= {r.endpoint for r in PAGE_RULES}
    assert READS_JSON["/api/v1/cases"] and not READS_JSON["/api/v1/calendar/import"]


@pytest.mark.parametrize("rule", PAGE_RULES, ids=_id)
def test_a_page_form_past_1_mib_is_the_413_page(rule):
    with APP.test_client() as client:
        response = client.open(_url(rule, PLACEHOLDERS), method=_method(rule), data={"comment": "x" * LIMIT})
    assert (response.status_code, response.mimetype) == (413, "text/html"), response.get_data(as_text=True)[:300]
    page = response.get_data(as_text=True)
    assert page.lower().startswith("<!doctype html>") and "<title>413 " in page and "application/problem" not in page


def test_a_body_without_a_length_is_cut_at_1_mib_too(client, engine, world):
    """A chunked upload declares no length: werkzeug counts what it reads and stops at the limit."""
    before = _unchanged(engine, world)
    stream = io.BytesIO(b'{"reason": "' + b"x" * (2 * LIMIT) + b'"}')
    response = client.post(f"/api/v1/cases/{world['case'].case_no}/suspend", input_stream=stream,
                           content_type="application/json",
                           headers={"Authorization": f"Bearer {world['token']}", "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert (response.status_code, response.mimetype) == (413, PROBLEM), response.get_data(as_text=True)[:300]
    assert _unchanged(engine, world) == before


def test_a_body_just_under_the_limit_is_read_and_judged_on_its_fields(client, engine, world):
    """The limit refuses size, nothing else: 1 MiB less a little is parsed and gets a 422 for a too long reason."""
    before = _unchanged(engine, world)
    body = json.dumps({"reason": "x" * (LIMIT - 100)})
    assert len(body) < LIMIT
    response = client.post(f"/api/v1/cases/{world['case'].case_no}/suspend", data=body,
                           content_type="application/json", headers={"Authorization": f"Bearer {world['token']}"})
    assert (response.status_code, response.mimetype) == (422, PROBLEM), response.get_data(as_text=True)[:300]
    assert "reason" in response.json["errors"]
    assert _unchanged(engine, world) == before


def test_an_empty_body_is_no_body_not_malformed_json(client, factory, world):
    """Clients often send Content-Type: application/json with nothing after it: accept's body is optional."""
    case = factory.case("submitted")
    response = client.post(f"/api/v1/cases/{case.case_no}/accept", data="", content_type="application/json",
                           headers={"Authorization": f"Bearer {world['token']}"})
    assert response.status_code == 200 and response.json["state"] == "in_progress"


def test_a_json_object_with_a_json_media_type_suffix_is_read(client, world):
    """``application/problem+json`` or ``application/merge-patch+json`` are JSON too (RFC 6839)."""
    response = client.post(f"/api/v1/cases/{world['case'].case_no}/suspend",
                           data=json.dumps({"reason": "补正材料"}), content_type="application/vnd.onewindow+json",
                           headers={"Authorization": f"Bearer {world['token']}"})
    assert response.status_code == 200 and response.json["state"] == "suspended"
