"""Helpers for REST API tests: authenticated JSON calls."""
import pytest


class Caller:
    """Calls the API as one user."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def headers(self, extra=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        headers.update(extra or {})
        return headers

    def get(self, path, **kwargs):
        return self.client.get(f"/api/v1{path}", headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.client.post(f"/api/v1{path}", json=json, headers=self.headers(kwargs.pop("headers", None)),
                                **kwargs)


@pytest.fixture
def as_user(client, factory):
    """``as_user("clerk", "taxation")`` → a Caller with a fresh token for that role and department."""
    def make(role="clerk", department="service_window"):
        return Caller(client, factory.token(role, department))
    return make


@pytest.fixture
def window(as_user):
    return as_user("clerk", "service_window")
