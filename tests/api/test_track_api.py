"""GET /api/v1/track and POST /api/v1/track/rating: public, no personal data, guessing throttled."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

from tests.factories import application

PROBLEM = "application/problem+json"
ROOT = Path(__file__).resolve().parents[2]


def track(client, case, code=None, **environ):
    return client.get("/api/v1/track", query_string={"case_no": case.case_no, "code": code or case.tracking_code},
                      environ_base=environ)


def test_an_applicant_follows_the_case_without_personal_data(client, factory):
    case = factory.case("in_progress")
    factory.finish_steps(case, "registration")
    factory.session.commit()
    response = track(client, case)
    assert response.status_code == 200
    body = response.json
    assert (body["case_no"], body["state"], body["can_rate"], body["rating"]) == (case.case_no, "in_progress",
                                                                                  False, None)
    steps = {step["step"]: step for step in body["steps"]}
    assert steps["registration"]["state"] == "done" and steps["tax"]["state"] == "ready"
    assert steps["tax"]["department_name"] == {"zh": "税务", "en": "Taxation"}
    assert body["deadline"].endswith("+08:00") and body["estimate"].endswith("+08:00")
    text = response.get_data(as_text=True)
    sent = application()
    for secret in (sent["legal_representative"]["name"], sent["legal_representative"]["phone"],
                   sent["legal_representative"]["id_number"], sent["shareholders"][1]["name"],
                   sent["shareholders"][1]["id_number"], case.tracking_code, "assignee",
                   factory.clerk("market_regulation").username):
        assert secret not in text
    assert "Authorization" not in response.headers.get("Vary", "")  # public: no token needed


def test_an_unknown_number_and_a_wrong_code_get_the_same_404(client, factory):
    case = factory.case("in_progress")
    wrong = track(client, case, code="2222222222")
    unknown = client.get("/api/v1/track", query_string={"case_no": "KB20991231-0001", "code": case.tracking_code})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.content_type == PROBLEM and wrong.json["detail"] == unknown.json["detail"]
    assert client.get("/api/v1/track").status_code == 422


def test_sixty_wrong_codes_never_reveal_a_case_and_end_in_429(client, factory):
    case = factory.case("in_progress")
    statuses = []
    for attempt in range(60):
        code = f"{attempt:010d}".replace("0", "2").replace("1", "3")  # valid symbols, never the code
        assert code != case.tracking_code
        response = track(client, case, code=code)
        statuses.append(response.status_code)
        assert case.company_name not in response.get_data(as_text=True)
    assert set(statuses) <= {404, 429} and statuses[-1] == 429
    assert statuses.count(404) == 10 and statuses[10:] == [429] * 50  # TRACK_MISS_LIMIT: 10 per 10 minutes
    limited = track(client, case, code="2222222222")
    assert limited.content_type == PROBLEM and "Retry-After" in limited.headers
    # The right code does not get through either until the window passes: guessing gains nothing.
    assert track(client, case).status_code == 429
    # Another client is not affected, and its right code works.
    assert track(client, case, REMOTE_ADDR="192.0.2.7").status_code == 200


def test_an_applicant_refreshing_is_not_counted_as_guessing(client, factory):
    case = factory.case("in_progress")
    assert all(track(client, case).status_code == 200 for _ in range(30))


def test_a_delivered_case_is_rated_once_and_a_poor_rating_reaches_the_supervisors(client, factory):
    case = factory.case("in_progress")
    params = {"case_no": case.case_no, "code": case.tracking_code}
    early = client.post("/api/v1/track/rating", query_string=params, json={"score": 5})
    assert early.status_code == 409 and early.json["state"] == "in_progress"
    factory.finish_steps(case)
    from workflow import operations as ops

    ops.deliver_case(factory.session, case, factory.window, method="counter")
    factory.session.commit()
    bad = client.post("/api/v1/track/rating", query_string=params, json={"score": 9, "comment": "x" * 600})
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"score", "comment"}
    first = client.post("/api/v1/track/rating", query_string=params, json={"score": 1, "comment": "窗口排队太久"})
    assert first.status_code == 201 and first.json["score"] == 1
    again = client.post("/api/v1/track/rating", query_string=params, json={"score": 5})
    assert again.status_code == 409 and "already" in again.json["detail"]
    body = track(client, case).json
    assert body["rating"]["score"] == 1 and body["can_rate"] is False
    wrong = client.post("/api/v1/track/rating", query_string={**params, "code": "2222222222"}, json={"score": 5})
    assert wrong.status_code == 404


def test_an_applicant_retrying_a_rating_with_an_idempotency_key_is_not_asked_to_sign_in(client, factory):
    case = factory.case("in_progress")
    factory.finish_steps(case)
    from workflow import operations as ops

    ops.deliver_case(factory.session, case, factory.window, method="counter")
    factory.session.commit()
    params = {"case_no": case.case_no, "code": case.tracking_code}
    headers = {"Idempotency-Key": "rating-retry"}
    first = client.post("/api/v1/track/rating", query_string=params, json={"score": 4}, headers=headers)
    assert first.status_code == 201 and first.json["score"] == 4
    again = client.post("/api/v1/track/rating", query_string=params, json={"score": 4}, headers=headers)
    assert again.status_code == 409 and "already" in again.json["detail"]


def test_the_openapi_document_describes_tracking_as_public(client):
    spec = client.get("/api/v1/openapi.json").json
    get = spec["paths"]["/api/v1/track"]["get"]
    assert get["security"] == [] and {"200", "404", "429"} <= set(get["responses"])
    assert {p["name"] for p in get["parameters"]} == {"case_no", "code"}


# ------------------------------------------------------------------ a shared store across processes

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_url():
    """A throwaway redis-server on a Unix socket (make test installs Debian's redis-server)."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing (make install-test installs it)")
        pytest.skip("no redis-server on this machine")
    directory = tempfile.mkdtemp(prefix="onewindow-redis-")
    sock = os.path.join(directory, "redis.sock")
    process = subprocess.Popen([server, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
                                "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.05)
    yield f"redis+unix://{sock}"
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(directory, ignore_errors=True)


def _gunicorn(database_url: str, storage: str, workers: int = 2):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_SECRET_KEY": "test-shared-store",
           "FLASK_RATELIMIT_STORAGE_URI": storage}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "wsgi:app"], cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                os.killpg(process.pid, signal.SIGKILL)
                pytest.fail("gunicorn did not start")
            time.sleep(0.1)
    return process, f"http://127.0.0.1:{port}"


def _statuses(base: str, case_no: str, count: int) -> list[int]:
    statuses = []
    for attempt in range(count):
        try:  # "0" and "1" are not tracking-code symbols: never a real code
            with urlopen(f"{base}/api/v1/track?case_no={case_no}&code=W{attempt:09d}", timeout=10) as response:
                statuses.append(response.status)
        except HTTPError as error:
            statuses.append(error.code)
    return statuses


@pytest.mark.slow
def test_two_worker_processes_count_wrong_codes_together_through_the_shared_store(database_url, factory, redis_url):
    case = factory.case("in_progress")
    factory.session.commit()
    process, base = _gunicorn(database_url, redis_url)
    try:
        statuses = _statuses(base, case.case_no, 30)  # spread over both workers by the kernel
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    assert statuses.count(404) == 10 and statuses[10:] == [429] * 20, statuses
    # and the store really is the shared one: the redis server holds the counters
    import redis

    keys = redis.Redis(unix_socket_path=redis_url.removeprefix("redis+unix://")).keys("*track-miss*")
    assert keys, "no counter in the shared store"


@pytest.mark.slow
def test_tracking_keeps_answering_and_counting_when_the_shared_store_is_unreachable(database_url, factory, tmp_path):
    """redis down: no 500s, and wrong codes are still refused after ten, counted in the process."""
    case = factory.case("in_progress")
    factory.session.commit()
    process, base = _gunicorn(database_url, f"redis+unix://{tmp_path / 'no-redis.sock'}", workers=1)
    try:
        statuses = _statuses(base, case.case_no, 14)
        with urlopen(f"{base}/healthz", timeout=10) as response:
            healthy = response.status
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    assert statuses == [404] * 10 + [429] * 4, statuses
    assert healthy == 200


def test_receipt_checks_are_throttled_too(app, client):
    app.config["VERIFY_LIMIT"] = "3 per minute"
    statuses = [client.get("/api/v1/verify/not-a-token").status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
