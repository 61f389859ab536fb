"""Security headers on every response: what a page may load and run, who may frame it, and what
the browser may guess or pass on.

The pages run no inline script and no inline style (``static/js``, ``static/css``; the charts have
theirs removed, ``api/charts.py``), so the policy allows only the app's own files: an injected
``<script>`` or ``onclick=`` does not run even if some text ever escaped unescaped. Swagger UI at
``/api/v1/docs`` starts from ``static/js/swagger-ui-init.js`` too (``templates/swagger_ui.html``
replaces flask-smorest's page, whose start-up script is inline).

A small ``after_request`` rather than flask-talisman: Talisman redirects to HTTPS and sets the
session cookie's flags itself by default (here the reverse proxy does TLS and ``create_app`` sets
the cookie from ``FLASK_SESSION_COOKIE_*``), and the headers below are the whole of what is needed.
"""
from __future__ import annotations

from flask import Flask, request, session

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",  # Swagger UI draws its icons from data: URIs
    "font-src 'self'",
    "connect-src 'self'",  # live.js and Swagger UI fetch from the app only
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    # Other sites never learn which page (a case number is in many addresses) a link was followed
    # from; the tracking pages send no-referrer themselves (api/views/public.py), which is kept.
    "Referrer-Policy": "same-origin",
}


# Files that are the same for everybody: cacheable even when a signed-in browser asks for them.
SHARED_FILES = frozenset({"static", "swagger_ui_static"})


def init_app(app: Flask) -> None:
    app.after_request(_secure_headers)


def _secure_headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint not in SHARED_FILES and _for_somebody():
        # What a signed-in clerk or a token's holder is shown (applicants' names and ID numbers,
        # queues, reports) stays out of shared caches and off the disk of a counter's PC: the back
        # button after signing out shows nothing. A view that chose its own caching keeps it.
        response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def _for_somebody() -> bool:
    """The request carries a staff session or an Authorization header (read without a query)."""
    return "Authorization" in request.headers or "_user_id" in session
