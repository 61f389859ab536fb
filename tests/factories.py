"""Builders for users, applications and cases in a given state."""
from __future__ import annotations

import datetime
import itertools
import random
import re

from sqlalchemy import text

from workflow import accounts, operations as ops
from workflow.actors import Actor
from workflow.demo import STEP_OUTPUTS, registration_outputs
from workflow.identifiers import make_id_number

DEPARTMENTS = ("service_window", "market_regulation", "public_security", "taxation", "bank")
PASSWORD = "correct horse battery"
# The hidden field every page form carries (attribute order varies between templates).
CSRF = re.compile(r'name="csrf_token"[^>]*? value="([^"]+)"')
_names = itertools.count(1)


def application(**overrides) -> dict:
    """A valid application; keyword arguments replace top-level parts."""
    owner = make_id_number("440106", datetime.date(1990, 3, 7), 123)
    partner = make_id_number("440111", datetime.date(1985, 12, 31), 456)
    body = {
        "company": {"name": "广州市白云区示例科技有限公司", "kind": "llc", "registered_capital": "1000000.00",
                    "address": "广州市白云区云城西路888号", "business_scope": "软件开发"},
        "legal_representative": {"name": "张三", "id_number": owner, "phone": "13800138000"},
        "shareholders": [{"name": "张三", "id_number": owner, "contribution": "600000.00"},
                         {"name": "李四", "id_number": partner, "contribution": "400000.00"}],
        "wants": {"seal": True, "invoice": True, "bank": True},
        "channel": "window",
    }
    body.update(overrides)
    return body


def outputs_for(step: str, rng: random.Random | None = None) -> dict:
    rng = rng or random.Random(7)
    return registration_outputs(rng) if step == "registration" else STEP_OUTPUTS[step](rng)


class Factory:
    """Users and cases on one session; commits what it builds so other connections see it."""

    def __init__(self, session):
        self.session = session
        self._users: dict[tuple[str, str | None], Actor] = {}

    def actor(self, role: str = "clerk", department: str | None = "service_window") -> Actor:
        key = (role, department)
        if key not in self._users:
            user = accounts.create_user(self.session, f"{role}-{department or 'hall'}-{next(_names)}", PASSWORD,
                                        role, department)
            self.session.commit()
            self._users[key] = user.as_actor()
        return self._users[key]

    def token(self, role: str = "clerk", department: str | None = "service_window") -> str:
        actor = self.actor(role, department)
        token = accounts.create_token(self.session, actor.username)
        self.session.commit()
        return token

    @property
    def window(self) -> Actor:
        return self.actor("clerk", "service_window")

    def clerk(self, department: str) -> Actor:
        return self.actor("clerk", department)

    def case(self, state: str = "submitted", **application_overrides):
        """A committed case brought to ``state`` through the real operations."""
        case = ops.submit_case(self.session, self.window, application(**application_overrides))
        if state != "submitted":
            if state == "rejected":
                ops.reject_case(self.session, case, self.window, reason="名称重复")
            else:
                ops.accept_case(self.session, case, self.window)
        if state == "suspended":
            ops.suspend_case(self.session, case, self.window, reason="补正材料")
        if state in ("ready", "delivered"):
            self.finish_steps(case)
        if state == "delivered":
            ops.deliver_case(self.session, case, self.window, method="counter")
        self.session.commit()
        return case

    def finish_steps(self, case, *keys):
        """Claim and complete the given steps (all open ones, in order, when none are named)."""
        pending = list(keys) or None
        while True:
            open_steps = [s for s in case.steps if s.state.value == "ready" and (pending is None or s.key in pending)]
            if not open_steps:
                return case
            for step in open_steps:
                clerk = self.clerk(step.department)
                ops.claim_step(self.session, case, step.key, clerk)
                ops.complete_step(self.session, case, step.key, clerk, outputs_for(step.key))
                if pending is not None:
                    pending.remove(step.key)


def bypass_append_only(session) -> None:
    """Do what an attacker with direct database access would do first: get past the triggers.

    On PostgreSQL triggers are skipped for this transaction only (the database is shared between
    tests); on SQLite, where each test has its own file, they are dropped.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        session.execute(text("DROP TRIGGER events_no_update"))
        session.execute(text("DROP TRIGGER events_no_delete"))


def clerk_tokens(url: str, suffix: str, label: str) -> dict[str, str]:
    """A clerk ``<department>-<suffix>`` with an API token in every department: department → token.

    Made in-process on the database at ``url``, for tests that drive servers started apart
    (the scale-out test, the crash drill).
    """
    from sqlalchemy.pool import NullPool

    from workflow.db import make_engine, make_sessionmaker

    engine = make_engine(url, poolclass=NullPool)
    try:
        with make_sessionmaker(engine)() as session:
            tokens = {}
            for department in sorted(accounts.known_departments(session)):
                accounts.create_user(session, f"{department}-{suffix}", PASSWORD, "clerk", department)
                session.flush()
                tokens[department] = accounts.create_token(session, f"{department}-{suffix}", label)
            session.commit()
        return tokens
    finally:
        engine.dispose()


def csrf_token(client, path: str = "/") -> str:
    """The session's CSRF token, read from a form on the page at ``path`` (the same for every form)."""
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    """Sign a Flask test client in through the sign-in page; the answer (302 when it worked)."""
    return client.post("/", data={"username": username, "password": password, "csrf_token": csrf_token(client)})
