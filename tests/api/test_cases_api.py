"""The REST API of contract section 4, driven as the clerks' screens and other systems would."""
import json

import pytest

from tests.factories import application, outputs_for
from workflow import queries

PROBLEM = "application/problem+json"


def create(window, **overrides):
    response = window.post("/cases", json=application(**overrides))
    assert response.status_code == 201, response.json
    return response.json


def test_a_case_goes_from_application_to_delivery(window, as_user):
    market, police = as_user("clerk", "market_regulation"), as_user("clerk", "public_security")
    tax, bank = as_user("clerk", "taxation"), as_user("clerk", "bank")
    case = create(window)
    no = case["case_no"]
    assert case["state"] == "submitted" and case["version"] == 1
    assert {s["step"]: s["state"] for s in case["steps"]} == {
        "registration": "waiting", "seal": "waiting", "tax": "waiting", "bank": "waiting", "invoice": "waiting"}

    case = window.post(f"/cases/{no}/accept", json={"missing_materials": ["股东会决议原件"]}).json
    assert case["state"] == "in_progress" and case["missing_materials"] == ["股东会决议原件"]
    assert case["accepted_at"].endswith("+08:00")

    for caller, step in [(market, "registration")]:
        assert caller.post(f"/cases/{no}/steps/{step}/claim").status_code == 200
        r = caller.post(f"/cases/{no}/steps/{step}/complete", json=outputs_for(step))
        assert r.status_code == 200, r.json
    steps = {s["step"]: s for s in r.json["steps"]}
    assert [k for k, s in steps.items() if s["state"] == "ready"] == ["seal", "tax", "bank"]  # in parallel
    assert steps["registration"]["assignee"].startswith("clerk-market_regulation")
    assert steps["registration"]["outputs"]["uscc"] == outputs_for("registration")["uscc"]

    for caller, step in [(police, "seal"), (bank, "bank"), (tax, "tax"), (tax, "invoice")]:
        assert caller.post(f"/cases/{no}/steps/{step}/claim").status_code == 200
        r = caller.post(f"/cases/{no}/steps/{step}/complete", json=outputs_for(step))
        assert r.status_code == 200, r.json
        expected = "ready" if step == "invoice" else "in_progress"
        assert r.json["state"] == expected  # the join happens in the last completion's response
    assert r.json["ready_at"] is not None

    r = window.post(f"/cases/{no}/deliver", json={"method": "mail", "tracking_no": "SF1234567890"})
    assert r.status_code == 200
    assert r.json["state"] == "delivered" and r.json["delivery"] == {"method": "mail", "tracking_no": "SF1234567890"}

    events = window.get(f"/cases/{no}/events").json
    assert events[0]["action"] == "submit" and events[-1]["action"] == "deliver"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert r.json["version"] == 1 + 1 + 2 * 5 + 1  # submit, accept, claim+complete × 5, deliver


def test_only_the_creating_response_shows_id_numbers(window):
    body = application()
    created = create(window)
    full = body["legal_representative"]["id_number"]
    assert created["legal_representative"]["id_number"] == full
    fetched = window.get(f"/cases/{created['case_no']}").json
    masked = fetched["legal_representative"]["id_number"]
    assert masked == full[:4] + "*" * 10 + full[-4:]
    assert fetched["legal_representative"]["phone"] == "138****8000"
    listed = window.get("/cases").json[0]
    assert full not in json.dumps(listed) and full not in json.dumps(fetched)


def test_staff_must_authenticate(client, window):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        r = client.get("/api/v1/cases", headers=headers)
        assert r.status_code == 401 and r.content_type == PROBLEM
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_no_longer_works(app, window):
    from api.database import session
    from workflow import accounts

    assert window.get("/cases").status_code == 200
    with app.app_context():
        accounts.revoke_token(session(), window.token)
        session().commit()
    assert window.get("/cases").status_code == 401


@pytest.mark.parametrize("role, department, path", [
    ("clerk", "taxation", "/cases/{no}/steps/registration/claim"),       # another department's step
    ("supervisor", "bank", "/cases/{no}/steps/registration/claim"),
    ("admin", None, "/cases/{no}/steps/registration/claim"),
    ("clerk", "market_regulation", "/cases/{no}/suspend"),               # clerks of agencies don't suspend
    ("clerk", "market_regulation", "/cases/{no}/withdraw"),
    ("supervisor", "taxation", "/cases/{no}/deliver"),
])
def test_the_wrong_role_or_department_gets_403_and_nothing_changes(window, as_user, role, department, path):
    case = create(window)
    no = case["case_no"]
    window.post(f"/cases/{no}/accept")
    before = window.get(f"/cases/{no}").json
    body = {"method": "counter"} if path.endswith("deliver") else {"reason": "x"}
    r = as_user(role, department).post(path.format(no=no), json=None if "steps" in path else body)
    assert r.status_code == 403 and r.content_type == PROBLEM
    assert window.get(f"/cases/{no}").json == before


def test_only_window_staff_submit(as_user):
    r = as_user("clerk", "taxation").post("/cases", json=application())
    assert r.status_code == 403


def test_another_clerk_of_the_department_cannot_finish_a_held_step(window, as_user, client, factory):
    from tests.api.conftest import Caller
    from workflow import accounts

    no = create(window)["case_no"]
    window.post(f"/cases/{no}/accept")
    holder = as_user("clerk", "market_regulation")
    assert holder.post(f"/cases/{no}/steps/registration/claim").status_code == 200
    colleague = accounts.create_user(factory.session, "market-clerk-2", "password123", "clerk", "market_regulation")
    other = Caller(client, accounts.create_token(factory.session, colleague.username))
    factory.session.commit()
    for action, body in (("complete", outputs_for("registration")), ("release", None), ("refuse", {"reason": "x"})):
        r = other.post(f"/cases/{no}/steps/registration/{action}", json=body)
        assert r.status_code == 403 and "held by another clerk" in r.json["detail"]
    supervisor = as_user("supervisor", "market_regulation")
    r = supervisor.post(f"/cases/{no}/steps/registration/complete", json=outputs_for("registration"))
    assert r.status_code == 200 and r.json["steps"][0]["state"] == "done"


def test_a_supervisor_reassigns_a_held_step_and_the_new_holder_finishes_it(window, as_user, client, factory):
    from tests.api.conftest import Caller
    from workflow import accounts

    no = create(window)["case_no"]
    window.post(f"/cases/{no}/accept")
    holder = as_user("clerk", "market_regulation")
    holder.post(f"/cases/{no}/steps/registration/claim")
    colleague = accounts.create_user(factory.session, "market-clerk-3", "password123", "clerk", "market_regulation")
    other = Caller(client, accounts.create_token(factory.session, colleague.username))
    factory.session.commit()
    assert holder.post(f"/cases/{no}/steps/registration/reassign", json={"assignee": colleague.username}
                       ).status_code == 403
    supervisor = as_user("supervisor", "market_regulation")
    r = supervisor.post(f"/cases/{no}/steps/registration/reassign", json={"assignee": "nobody"})
    assert r.status_code == 422 and "assignee" in r.json["errors"]
    version = supervisor.get(f"/cases/{no}").json["version"]
    r = supervisor.post(f"/cases/{no}/steps/registration/reassign", json={"assignee": colleague.username},
                        headers={"If-Match": f'"{version}"'})
    assert r.status_code == 200 and r.json["steps"][0]["assignee"] == colleague.username
    assert holder.post(f"/cases/{no}/steps/registration/release").status_code == 403
    assert other.post(f"/cases/{no}/steps/registration/complete", json=outputs_for("registration")).status_code == 200
    events = window.get(f"/cases/{no}/events").json
    assert [e["action"] for e in events if e["action"] == "reassign"] == ["reassign"]


def test_unknown_case_or_step_is_404(window):
    assert window.get("/cases/KB20000101-0001").status_code == 404
    no = create(window)["case_no"]
    window.post(f"/cases/{no}/accept")
    r = window.post(f"/cases/{no}/steps/notary/claim")
    assert r.status_code == 404 and r.content_type == PROBLEM


def test_an_illegal_action_is_409_naming_the_state_and_changes_nothing(window, as_user):
    no = create(window)["case_no"]
    r = window.post(f"/cases/{no}/deliver", json={"method": "counter"})
    assert r.status_code == 409 and r.content_type == PROBLEM
    assert r.json["state"] == "submitted" and "submitted" in r.json["detail"]
    window.post(f"/cases/{no}/accept")
    window.post(f"/cases/{no}/suspend", json={"reason": "补正"})
    market = as_user("clerk", "market_regulation")
    r = market.post(f"/cases/{no}/steps/registration/claim")  # steps don't move while suspended
    assert r.status_code == 409 and r.json["state"] == "suspended"
    case = window.get(f"/cases/{no}").json
    assert case["version"] == 3 and case["steps"][0]["state"] == "ready"


def test_if_match_guards_against_acting_on_a_stale_view(window):
    created = create(window)
    no = created["case_no"]
    r = window.get(f"/cases/{no}")
    assert r.headers["ETag"] == '"1"'
    r = window.post(f"/cases/{no}/accept", headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    r = window.post(f"/cases/{no}/suspend", json={"reason": "补正"}, headers={"If-Match": '"1"'})
    assert r.status_code == 412 and r.content_type == PROBLEM and r.json["version"] == 2
    assert window.get(f"/cases/{no}").json["state"] == "in_progress"


def test_a_repeated_post_with_the_same_idempotency_key_changes_nothing(window):
    no = create(window)["case_no"]
    key = {"Idempotency-Key": "accept-once-1"}
    first = window.post(f"/cases/{no}/accept", headers=key)
    again = window.post(f"/cases/{no}/accept", headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert window.get(f"/cases/{no}").json["version"] == 2
    assert len(window.get(f"/cases/{no}/events").json) == 3  # submit, accept, unblock
    other = window.post(f"/cases/{no}/suspend", json={"reason": "x"}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"]


def test_a_repeated_submission_creates_one_case(window):
    key = {"Idempotency-Key": "new-case-42"}
    first = window.post("/cases", json=application(), headers=key)
    again = window.post("/cases", json=application(), headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json["case_no"] == again.json["case_no"]
    assert len(window.get("/cases").json) == 1


def test_a_bad_application_names_every_bad_field_and_stores_nothing(window):
    body = application()
    body["company"]["registered_capital"] = "100.999"
    body["company"]["kind"] = "corporation"
    body["legal_representative"]["id_number"] = body["legal_representative"]["id_number"][:-1] + "0" \
        if not body["legal_representative"]["id_number"].endswith("0") else body["legal_representative"]["id_number"][:-1] + "1"
    body["legal_representative"]["phone"] = "12345"
    body["shareholders"][1]["id_number"] = "44011119851331456X"
    body["wants"] = {"seal": "yes"}
    r = window.post("/cases", json=body)
    assert r.status_code == 422 and r.content_type == PROBLEM
    assert set(r.json["errors"]) == {
        "company.registered_capital", "company.kind", "legal_representative.id_number",
        "legal_representative.phone", "shareholders.1.id_number", "wants.seal"}
    assert window.get("/cases").json == []


def test_contributions_must_add_up_to_the_capital(window):
    body = application()
    body["shareholders"][1]["contribution"] = "399999.99"
    r = window.post("/cases", json=body)
    assert r.status_code == 422
    assert "999999.99" in r.json["errors"]["shareholders"][0]


def test_unknown_optional_steps_are_refused(window):
    r = window.post("/cases", json=application(wants={"seal": True, "notary": True}))
    assert r.status_code == 422 and set(r.json["errors"]) == {"wants.notary"}


def test_step_outputs_are_validated_by_the_definition(window, as_user):
    no = create(window)["case_no"]
    window.post(f"/cases/{no}/accept")
    market = as_user("clerk", "market_regulation")
    market.post(f"/cases/{no}/steps/registration/claim")
    r = market.post(f"/cases/{no}/steps/registration/complete",
                    json={"uscc": "91440111MA59ABCDE0", "licence_no": "", "extra": 1})
    assert r.status_code == 422
    assert set(r.json["errors"]) == {"uscc", "licence_no", "extra"}
    assert window.get(f"/cases/{no}").json["steps"][0]["state"] == "in_progress"


def test_reasons_are_required(window):
    no = create(window)["case_no"]
    for body in (None, {}, {"reason": "   "}):
        r = window.post(f"/cases/{no}/reject", json=body)
        assert r.status_code == 422 and "reason" in r.json["errors"]
    assert window.get(f"/cases/{no}").json["state"] == "submitted"


def test_mail_delivery_needs_a_tracking_number(window, factory):
    case = factory.case("ready")
    r = window.post(f"/cases/{case.case_no}/deliver", json={"method": "mail"})
    assert r.status_code == 422 and set(r.json["errors"]) == {"tracking_no"}


def test_malformed_json_is_400_problem(window):
    r = window.client.post("/api/v1/cases", data="{not json", content_type="application/json",
                           headers=window.headers())
    assert r.status_code == 400 and r.content_type == PROBLEM


def test_an_oversize_body_is_413(window):
    r = window.client.post("/api/v1/cases", data="x" * (2 * 1024 * 1024), content_type="application/json",
                           headers=window.headers())
    assert r.status_code == 413 and r.content_type == PROBLEM


def test_a_long_list_counts_its_total_only_up_to_the_limit(window, factory, monkeypatch):
    for _ in range(4):
        factory.case("submitted")
    monkeypatch.setattr(queries, "COUNT_LIMIT", 3)
    r = window.get("/cases?per_page=2")
    assert json.loads(r.headers["X-Pagination"]) == {"total": 3, "total_is_exact": False, "page": 1, "per_page": 2,
                                                     "total_pages": 2}
    # The pages themselves are not limited: the fourth case is on the second page of three.
    assert len(window.get("/cases?per_page=3&page=2").json) == 1
    monkeypatch.setattr(queries, "COUNT_LIMIT", 4)
    assert json.loads(window.get("/cases").headers["X-Pagination"])["total_is_exact"] is True


def test_listing_filters_and_paginates(window, factory):
    factory.case("submitted", company={**application()["company"], "name": "广州市甲乙丙有限公司"})
    in_progress = [factory.case("in_progress") for _ in range(3)]
    factory.finish_steps(in_progress[0], "registration")
    factory.session.commit()
    factory.case("ready")

    r = window.get("/cases?per_page=2&page=2")
    assert len(r.json) == 2
    assert json.loads(r.headers["X-Pagination"]) == {"total": 5, "total_is_exact": True, "page": 2, "per_page": 2,
                                                     "total_pages": 3}
    assert len(window.get("/cases?state=in_progress").json) == 3
    assert [c["case_no"] for c in window.get("/cases?step=tax").json] == [in_progress[0].case_no]
    assert len(window.get("/cases?department=market_regulation").json) == 2
    assert len(window.get("/cases?department=service_window").json) == 2  # submitted + ready
    assert [c["company"]["name"] for c in window.get("/cases?q=甲乙丙").json] == ["广州市甲乙丙有限公司"]
    assert len(window.get(f"/cases?q={in_progress[1].case_no}").json) == 1
    r = window.get("/cases?state=lost&per_page=500")
    assert r.status_code == 422 and set(r.json["errors"]) == {"query.state", "query.per_page"}


def test_the_openapi_document_and_offline_docs(client):
    spec = client.get("/api/v1/openapi.json").json
    assert "/api/v1/cases/{case_no}/steps/{step}/complete" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/docs/static/swagger-ui-bundle.js" in page
    assert "//cdn" not in page and "https://" not in page
    with client.get("/api/v1/docs/static/swagger-ui-bundle.js") as script:
        assert script.status_code == 200 and b"SwaggerUIBundle" in script.data


def test_only_supervisors_of_agencies_in_the_case_may_suspend_it(window, as_user):
    no = create(window, wants={"seal": False, "invoice": False, "bank": False})["case_no"]
    window.post(f"/cases/{no}/accept")
    assert as_user("supervisor", "bank").post(f"/cases/{no}/suspend", json={"reason": "x"}).status_code == 403
    assert as_user("clerk", "taxation").post(f"/cases/{no}/suspend", json={"reason": "x"}).status_code == 403
    r = as_user("supervisor", "taxation").post(f"/cases/{no}/suspend", json={"reason": "等待补正"})
    assert r.status_code == 200 and r.json["state"] == "suspended"


def test_nul_characters_are_a_422_naming_the_field(window):
    no = create(window)["case_no"]
    r = window.post(f"/cases/{no}/reject", json={"reason": "bad\u0000name"})
    assert r.status_code == 422 and r.json["errors"] == {"reason": ["must not contain NUL characters"]}
    body = application()
    body["company"]["address"] = "x\u0000"
    r = window.post("/cases", json=body)
    assert r.status_code == 422 and set(r.json["errors"]) == {"company.address"}
    assert window.get(f"/cases/{no}").json["state"] == "submitted"


def test_a_withdrawn_case_leaves_the_agencies_queues(window, factory):
    case = factory.case("in_progress")
    factory.finish_steps(case, "registration")
    factory.session.commit()
    assert len(window.get("/cases?department=bank").json) == 1
    window.post(f"/cases/{case.case_no}/withdraw", json={"reason": "申请人撤回"})
    assert window.get("/cases?department=bank").json == []
    assert window.get("/cases?step=seal").json == []


def test_every_problem_of_an_application_is_named_at_once(window):
    body = application(wants={"seal": True, "notary": True})
    body["legal_representative"]["phone"] = "12345"
    body["shareholders"][1]["contribution"] = "1.00"
    r = window.post("/cases", json=body)
    assert r.status_code == 422
    assert set(r.json["errors"]) == {"legal_representative.phone", "shareholders", "wants.notary"}


def test_permission_is_checked_before_the_body(as_user, factory):
    case = factory.case("ready")
    r = as_user("clerk", "bank").post(f"/cases/{case.case_no}/deliver", json={"method": "mail"})
    assert r.status_code == 403


def test_the_health_check_answers_without_sign_in_and_says_when_the_database_is_gone(app, client):
    from sqlalchemy import event

    r = client.get("/healthz")
    assert (r.status_code, r.json, r.headers["Cache-Control"]) == (200, {"status": "ok"}, "no-store")
    engine = app.extensions["onewindow.db"].kw["bind"]
    engine.dispose()  # no pooled connection left: the next request must connect

    @event.listens_for(engine, "do_connect")
    def refuse(*_):
        raise engine.dialect.loaded_dbapi.OperationalError("the database server is down")

    r = client.get("/healthz")
    assert (r.status_code, r.json) == (503, {"status": "database unavailable"})
