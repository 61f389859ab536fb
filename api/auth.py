"""Who is calling the REST API: ``Authorization: Bearer <token>`` resolved to an Actor."""
from __future__ import annotations

from flask import g, request

from workflow import accounts
from workflow.actors import Actor
from workflow.errors import Unauthenticated

from .database import session


def current_user():
    """The user behind the request's bearer token (cached for the request), or Unauthenticated."""
    if "api_user" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send Authorization: Bearer <token>")
        g.api_user = accounts.user_for_token(session(), token.strip())
    return g.api_user


def current_actor() -> Actor:
    return current_user().as_actor()


def require_staff() -> None:
    """``before_request`` hook for staff-only blueprints."""
    current_user()
