"""Rate limits on the public endpoints, with Flask-Limiter.

Counts live where ``RATELIMIT_STORAGE_URI`` says: ``memory://`` (the default) keeps them in each
process; a shared store (``redis://host:6379/0``) makes several app processes count together, which
is what a deployment with several gunicorn servers needs (docs/decisions.md). Clients are told apart
by their address; behind a reverse proxy set ``PROXY_FIX_X_FOR`` so that it is the client's.

Looking a case up by number and code is limited twice: every lookup (``TRACK_LIMIT``), and, far
more tightly, lookups that fail (``TRACK_MISS_LIMIT``, counted only on a 404), so guessing codes ends
in 429 long before it could find one while an applicant refreshing their page is never stopped.
"""
from __future__ import annotations

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, headers_enabled=True, strategy="moving-window")

DEFAULTS = {
    "RATELIMIT_STORAGE_URI": "memory://",
    # A shared store (redis) that stops answering: each process counts alone, in memory, until it is
    # back (Flask-Limiter checks it again at growing intervals), rather than /track answering 500 or
    # letting lookups through uncounted. The limits then apply per process, not across servers.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "TRACK_LIMIT": "120 per minute",
    "TRACK_MISS_LIMIT": "10 per 10 minutes;40 per day",
    "RATING_LIMIT": "10 per hour",
    "VERIFY_LIMIT": "60 per minute",
}


def _config(name: str):
    return lambda: current_app.config[name]


def _missed(response) -> bool:
    return response.status_code == 404


# Shared by the tracking page and GET /api/v1/track: one client's budget whichever it uses.
track_lookups = limiter.shared_limit(_config("TRACK_LIMIT"), scope="track")
track_misses = limiter.shared_limit(_config("TRACK_MISS_LIMIT"), scope="track-miss", deduct_when=_missed)
ratings = limiter.shared_limit(_config("RATING_LIMIT"), scope="rating", methods=["POST"])
verifications = limiter.limit(_config("VERIFY_LIMIT"))
