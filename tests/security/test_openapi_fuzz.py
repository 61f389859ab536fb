"""Schemathesis against the app's own OpenAPI document, through WSGI (issue 9, hostile input).

Every operation of ``/api/v1/openapi.json`` gets generated requests — ones the document allows and
ones that break it — sent with the bearer tokens of real users of every role (and a false one), to
seeded cases in every state. Each answer must be no 5xx and exactly what the document promises: a
status code the operation names (``default`` does not count), a documented content type, a body and
headers matching their documented schemas. A WSGI wrapper counts the requests that reach the app;
the run must send at least 2 000.

Generation is derandomized (the same requests on every run) and shrinking is off: the seeded cases
move on as the run acts on them, so a replayed example would not meet the same state anyway. Each
failure is reported once, with the curl command that reproduces it.
"""
from __future__ import annotations

import datetime
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)
from sqlalchemy import select

from api import create_app
from tests.factories import application, outputs_for
from workflow import receipts, timers
from workflow.clock import utcnow
from workflow.models import Notification

MINIMUM_REQUESTS = 2000
# Generated requests per operation: valid by the document, and breaking it. The two PDFs cost a
# WeasyPrint render each (a tenth of a second and more), so they get fewer.
EXAMPLES = {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 30}
FEWER = {"GET /api/v1/cases/{case_no}/receipt.pdf": 0.4, "GET /api/v1/cases/{case_no}/slip.pdf": 0.4}

ROLES = [("clerk", "service_window"), ("clerk", "market_regulation"), ("clerk", "public_security"),
         ("clerk", "taxation"), ("clerk", "bank"), ("supervisor", "service_window"),
         ("supervisor", "market_regulation"), ("supervisor", "taxation"), ("admin", None)]
STEP_DEPARTMENTS = {"registration": "market_regulation", "seal": "public_security", "tax": "taxation",
                    "invoice": "taxation", "bank": "bank"}
CASE_STATES = ("submitted", "submitted", "submitted", "in_progress", "in_progress", "in_progress", "in_progress",
               "suspended", "ready", "ready", "delivered", "delivered", "rejected")
SECRET = "test"

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def status_code_named(ctx, response, case):
    """schemathesis's status_code_conformance lets ``default`` stand for every code; this does not."""
    named = {code for code in case.operation.responses.status_codes if code != "default"}
    status = str(response.status_code)
    if status not in named and f"{status[0]}XX" not in named:
        raise AssertionError(f"{status} is not named by the operation (it names {', '.join(sorted(named))})")


class CountingMiddleware:
    """Counts the requests that reach the app, whatever the test believes it sent."""

    def __init__(self, wsgi_app):
        self.wsgi_app, self.count = wsgi_app, 0

    def __call__(self, environ, start_response):
        self.count += 1
        return self.wsgi_app(environ, start_response)


@pytest.fixture
def fuzz_app(database_url):
    # Rate limits off: from one address the fuzzer would meet 429 on every public endpoint after a
    # dozen requests and never reach the code behind it (tests/api/test_track_api.py tests the limits).
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": SECRET, "TESTING": True,
                      "RATELIMIT_ENABLED": False})
    yield app
    app.extensions["onewindow.db"].kw["bind"].dispose()


@pytest.fixture
def seeded(factory):
    """Users of every role with tokens; cases in every state; a week's warnings and breaches."""
    tokens = {(role, department): factory.token(role, department) for role, department in ROLES}
    cases = [factory.case(state) for state in CASE_STATES]
    factory.finish_steps(cases[4], "registration")
    factory.finish_steps(cases[5], "registration", "tax")
    factory.session.commit()
    later = utcnow() + datetime.timedelta(days=7)
    while timers.fire_due(factory.session, later):
        factory.session.commit()
    return {
        "tokens": tokens,
        # Real values for path parameters, so that requests reach seeded rows and not only 404s.
        "case_no": [case.case_no for case in cases],
        "step": list(STEP_DEPARTMENTS),
        "token": [receipts.sign_case_no(SECRET, case.case_no) for case in cases],
        "notification_id": list(factory.session.scalars(select(Notification.id))),
        "track": [(case.case_no, case.tracking_code) for case in cases],
    }


def _real_or_generated(data, generated, real: list):
    """Three times in four a real value, else the fuzzer's own."""
    if not real or data.draw(st.integers(0, 3), label="keep generated") == 0:
        return generated
    return data.draw(st.sampled_from(real), label="real value")


def _steer(data, operation, case, seeded, mode):
    """Point a generated request at seeded rows, sometimes with a body that passes the engine's checks.

    The document cannot say what a valid ID number or a step's outputs are, so without help almost
    every submission and completion would stop at 422 and the success paths would go unchecked.
    """
    for name in list(case.path_parameters or {}):
        case.path_parameters[name] = _real_or_generated(data, case.path_parameters[name], seeded.get(name))
    if operation.path.startswith("/api/v1/track") and data.draw(st.booleans(), label="real tracking"):
        case_no, code = data.draw(st.sampled_from(seeded["track"]), label="tracked case")
        case.query = {**(case.query or {}), "case_no": case_no, "code": code}
    if mode is GenerationMode.POSITIVE and data.draw(st.booleans(), label="engine-valid body"):
        if operation.label == "POST /api/v1/cases":
            company = {**application()["company"], "name": data.draw(st.text(min_size=1, max_size=80), label="name")}
            case.body = application(company=company)
        elif operation.path.endswith("/complete") and case.path_parameters["step"] in STEP_DEPARTMENTS:
            case.body = outputs_for(case.path_parameters["step"])
    # Half the time the role most likely to be allowed: the step's department, or the window.
    step = (case.path_parameters or {}).get("step")
    likely = ("clerk", STEP_DEPARTMENTS.get(step, "service_window"))
    choices = list(seeded["tokens"].values()) + ["not-a-token"]
    return data.draw(st.sampled_from([seeded["tokens"][likely]] * len(choices) + choices), label="token")


@pytest.mark.slow
def test_every_operation_answers_as_documented(fuzz_app, seeded):
    counting = CountingMiddleware(fuzz_app.wsgi_app)
    fuzz_app.wsgi_app = counting
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    counting.count = 0  # the document's own request does not count
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 28, "the OpenAPI document lost operations"
    statuses: Counter = Counter()
    failures: dict[str, str] = {}
    unbreakable = []

    def record(operation, case, headers, message):
        failures.setdefault(f"{operation.label}: {message}", case.as_curl_command(headers=headers))

    for operation in operations:
        for mode, examples in EXAMPLES.items():
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(max_examples=max(5, int(examples * FEWER.get(operation.label, 1))), derandomize=True,
                      deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(data=st.data())
            def fuzz(data):
                case = data.draw(strategy, label="request")
                headers = {"Authorization": f"Bearer {_steer(data, operation, case, seeded, mode)}"}
                try:
                    response = case.call(headers=headers)
                except Exception as error:  # TESTING re-raises what a user would see as a 500
                    record(operation, case, headers, f"{type(error).__name__}: {error}")
                    return
                statuses[operation.label, response.status_code] += 1
                try:
                    case.validate_response(response, checks=CHECKS, additional_checks=[status_code_named])
                except FailureGroup as group:
                    for failure in group.exceptions:
                        record(operation, case, headers, str(failure).strip())

            try:
                fuzz()
            except Unsatisfiable:
                # Nothing the document says can be broken (a GET whose only parameter is free text).
                assert mode is GenerationMode.NEGATIVE, operation.label
                unbreakable.append(operation.label)

    summary = [f"{sum(statuses.values())} requests answered, {counting.count} reached the app, "
               f"{len(operations)} operations; nothing to break in {', '.join(unbreakable) or 'none'}"]
    summary += [f"  {label} {status}: {count}" for (label, status), count in sorted(statuses.items())]
    print("\n".join(summary))
    assert not failures, "\n\n".join(f"{failure}\n  {curl}" for failure, curl in failures.items())
    assert counting.count >= MINIMUM_REQUESTS
    # The run reached the success paths and the refusals, not only the validation in front of them.
    answered = {status for (_label, status) in statuses}
    assert {200, 201, 400, 401, 403, 404, 409, 412, 422} <= answered, answered


@pytest.mark.parametrize("value", ['"²"', 'W/"٣"', '"1e3"', '"-1"', '"99999999999999999999999999"', "W/", '""'])
def test_a_strange_if_match_is_a_412_never_a_500(client, factory, value):
    token = factory.token("clerk", "service_window")
    case = factory.case("in_progress")
    response = client.post(f"/api/v1/cases/{case.case_no}/suspend", json={"reason": "补正材料"},
                           headers={"Authorization": f"Bearer {token}", "If-Match": value})
    assert (response.status_code, response.mimetype) == (412, "application/problem+json")
    assert response.json["version"] == case.version


@pytest.mark.parametrize(("method", "path", "headers", "status", "where"), [
    ("GET", "/api/v1/cases?q=KB%00", {}, 422, "query.q"),
    ("GET", "/api/v1/cases?department=bank%00", {}, 422, "query.department"),
    ("GET", "/api/v1/track?case_no=KB%00&code=x", {}, 422, "query.case_no"),
    ("GET", "/api/v1/cases/KB%00x", {}, 404, None),
    ("POST", "/api/v1/cases/KB%00x/accept", {}, 404, None),
    ("GET", "/api/v1/verify/a%00b", {}, 404, None),
    ("POST", "/api/v1/cases/{case_no}/suspend", {"Idempotency-Key": "a\x00b"}, 422, "Idempotency-Key"),
], ids=["list q", "list department", "track", "case", "action", "verify", "idempotency key"])
def test_a_nul_character_is_refused_before_any_query(client, factory, method, path, headers, status, where):
    """PostgreSQL refuses U+0000 in a text parameter (a 500); both databases answer as documented instead."""
    token = factory.token("clerk", "service_window")
    case = factory.case("in_progress")
    version = case.version
    response = client.open(path.format(case_no=case.case_no), method=method,
                           json={"reason": "补正材料"} if method == "POST" else None,
                           headers={"Authorization": f"Bearer {token}", **headers})
    assert (response.status_code, response.mimetype) == (status, "application/problem+json")
    assert where is None or where in response.json["errors"]
    factory.session.refresh(case)
    assert (case.version, case.state.value) == (version, "in_progress")
