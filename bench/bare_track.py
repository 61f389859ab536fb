"""The ceiling of ``bench/track_burst.py``: a bare Flask app answering a tracking lookup with one
indexed SELECT, on the plain psycopg driver. Not part of OneWindow; only the benchmark serves it.

One route, ``GET /track?case_no=…&code=…``: the case's row by its unique number (``cases.case_no``
has a unique index), the code compared in constant time, a small JSON answer or a 404. No ORM, no
schema, no limiter, no calendar: what this machine's Flask, gunicorn and PostgreSQL do at best for a
lookup by number. Each worker thread keeps its own connection (a psycopg connection serves one
query at a time), opened on its first request.

Served by gunicorn with ``DATABASE_URL`` set to the same SQLAlchemy-style URL as the app's.
"""
from __future__ import annotations

import hmac
import os
import threading

import psycopg
from flask import Flask, jsonify, request

app = Flask(__name__)
_local = threading.local()
QUERY = "SELECT case_no, tracking_code, state, company_name FROM cases WHERE case_no = %s"


def _connection() -> psycopg.Connection:
    if getattr(_local, "connection", None) is None:
        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
        _local.connection = psycopg.connect(url, autocommit=True)
    return _local.connection


@app.get("/track")
def track():
    case_no = request.args.get("case_no", "").strip().upper()[:20]
    given = request.args.get("code", "").strip().upper().encode()[:64]
    row = _connection().execute(QUERY, (case_no,)).fetchone()
    expected = (row[1] if row else "0" * 10).encode()
    if row is None or not hmac.compare_digest(expected, given):
        return jsonify(title="Not Found", status=404), 404
    return jsonify(case_no=row[0], state=row[2], company_name=row[3])
