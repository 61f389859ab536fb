"""One SQLAlchemy session per request, and the request as the one owner of its transaction.

Views and operations only flush. After the view, a response below 400 commits (with its
``Idempotency-Key`` record, in the same transaction) and anything else rolls back.
"""
from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from workflow.db import make_engine, make_sessionmaker


class Database:
    def __init__(self, app: Flask | None = None):
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["onewindow.db"] = make_sessionmaker(engine)
        app.teardown_appcontext(_close)

    @staticmethod
    def engine(app: Flask | None = None):
        return (app or current_app).extensions["onewindow.db"].kw["bind"]


def session() -> Session:
    """The current request's (or CLI command's) session."""
    if "db_session" not in g:
        maker: sessionmaker = current_app.extensions["onewindow.db"]
        g.db_session = maker()
    return g.db_session


def _close(_exc=None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()
