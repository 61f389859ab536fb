"""Sessions, CSRF and page access through the Flask test client (no browser needed)."""
from __future__ import annotations

import re

import pytest

from tests.factories import PASSWORD, csrf_token, sign_in
from workflow.models import User


def signed_in(client, username):
    response = sign_in(client, username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def test_a_post_without_the_csrf_token_is_refused(client, factory):
    user = factory.clerk("taxation")
    response = client.post("/", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "CSRF" in response.get_data(as_text=True)
    client.get("/")
    bad = client.post("/", data={"username": user.username, "password": PASSWORD, "csrf_token": "forged"})
    assert bad.status_code == 400
    signed_in(client, user.username)
    assert client.post("/signout").status_code == 400  # sign-out needs the token too
    assert client.get("/queue").status_code == 200


def test_the_rest_api_needs_no_csrf_token(client, factory):
    response = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {factory.token()}"})
    assert response.status_code == 200
    posted = client.post("/api/v1/cases", json={}, headers={"Authorization": f"Bearer {factory.token()}"})
    assert posted.status_code == 422  # refused for its body, not for a missing CSRF token


def test_the_session_cookie_is_http_only_and_same_site(client, factory):
    response = signed_in(client, factory.clerk("taxation").username)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_a_wrong_password_is_counted_although_the_page_answers_200(client, factory, session):
    user = factory.clerk("taxation")
    response = client.post("/", data={"username": user.username, "password": "nope", "csrf_token": csrf_token(client)})
    assert response.status_code == 200
    session.expire_all()
    assert session.get(User, user.user_id).failed_logins == 1


def test_a_disabled_account_is_signed_out_on_its_next_request(client, factory, session):
    user = factory.clerk("taxation")
    signed_in(client, user.username)
    session.get(User, user.user_id).active = False
    session.commit()
    response = client.get("/queue")
    assert response.status_code == 302 and response.headers["Location"] == "/?next=%2Fqueue"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "queue"])
def test_next_never_leaves_the_site(client, factory, target):
    user = factory.clerk("taxation")
    response = client.post("/", query_string={"next": target},
                           data={"username": user.username, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert response.headers["Location"] == "/queue"


ACCESS = {  # (role, department) → pages it may open; every other staff page answers 403
    ("clerk", "taxation"): {"/queue"},
    ("clerk", "service_window"): {"/queue"},
    ("supervisor", "taxation"): {"/queue", "/board", "/dashboard"},
    ("supervisor", "service_window"): {"/queue", "/board", "/dashboard"},
    ("admin", None): {"/board", "/dashboard"},
}


@pytest.mark.parametrize("who", list(ACCESS), ids=lambda who: f"{who[0]}-{who[1]}")
@pytest.mark.parametrize("path", ["/queue", "/board", "/dashboard"])
def test_pages_by_role(client, factory, who, path):
    assert client.get(path).status_code == 302  # anonymous: to the sign-in page
    signed_in(client, factory.actor(*who).username)
    response = client.get(path)
    assert response.status_code == (200 if path in ACCESS[who] else 403)
    assert response.mimetype == "text/html"


def test_the_board_shows_only_late_work_and_the_dashboard_counts(client, factory):
    import time_machine

    with time_machine.travel("2026-11-16 09:00 +0800", tick=False):  # a week ago: long breached
        late = factory.case("in_progress")
    fresh = factory.case("submitted")
    signed_in(client, factory.actor("admin", None).username)
    board = client.get("/board?lang=en").get_data(as_text=True)
    assert late.case_no in board and "Breached" in board and fresh.case_no not in board
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert re.search(r"In progress</th><td class=\"num\">1<", dashboard)
    assert re.search(r"Submitted, not yet accepted</th><td class=\"num\">1<", dashboard)


def test_the_language_sticks_on_staff_pages_but_not_on_the_public_receipt_check(client):
    assert '<html lang="en">' in client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in client.get("/verify/not-a-token").get_data(as_text=True)
    english = client.get("/verify/not-a-token?lang=en")
    assert '<html lang="en">' in english.get_data(as_text=True) and "Set-Cookie" not in english.headers
    assert '<html lang="zh-CN">' in client.get("/?lang=zh").get_data(as_text=True)
    assert '<html lang="zh-CN">' in client.get("/").get_data(as_text=True)
