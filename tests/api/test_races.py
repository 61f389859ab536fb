"""Racing requests through the REST API on real PostgreSQL connections."""
import threading

import pytest

from tests.factories import outputs_for

pytestmark = pytest.mark.postgres


def together(app, calls):
    """Run ``calls`` (each a function of a test client) at the same moment; return their responses."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        client = app.test_client()
        barrier.wait()
        results[i] = call(client)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_two_requests_with_one_idempotency_key_act_once(app, factory):
    case = factory.case("submitted")
    headers = {"Authorization": f"Bearer {factory.token('clerk', 'service_window')}",
               "Idempotency-Key": "accept-race"}

    def accept(client):
        return client.post(f"/api/v1/cases/{case.case_no}/accept", headers=headers)

    first, second = together(app, [accept, accept])
    assert first.status_code == second.status_code == 200
    assert first.json == second.json
    assert sorted(r.headers.get("Idempotent-Replayed", "no") for r in (first, second)) == ["no", "true"]
    events = app.test_client().get(f"/api/v1/cases/{case.case_no}/events", headers=headers).json
    assert [e["action"] for e in events].count("accept") == 1


def test_two_clerks_completing_one_step_through_the_api(app, factory):
    case = factory.case("in_progress")
    clerk = {"Authorization": f"Bearer {factory.token('clerk', 'market_regulation')}"}
    boss = {"Authorization": f"Bearer {factory.token('supervisor', 'market_regulation')}"}
    app.test_client().post(f"/api/v1/cases/{case.case_no}/steps/registration/claim", headers=clerk)
    version = app.test_client().get(f"/api/v1/cases/{case.case_no}", headers=clerk).json["version"]

    def complete(headers):
        def call(client):
            return client.post(f"/api/v1/cases/{case.case_no}/steps/registration/complete",
                               json=outputs_for("registration"), headers={**headers, "If-Match": f'"{version}"'})
        return call

    results = together(app, [complete(clerk), complete(boss)])
    assert sorted(r.status_code for r in results) == [200, 412]
    events = app.test_client().get(f"/api/v1/cases/{case.case_no}/events", headers=clerk).json
    assert [(e["action"], e["step"]) for e in events].count(("complete", "registration")) == 1
