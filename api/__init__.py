"""The web layer: the Flask app factory. ``api`` calls ``workflow``; never the other way round."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlencode

import click
from flask import Flask, g, has_request_context, request, send_from_directory, session
from swagger_ui_bundle import swagger_ui_path

from werkzeug.middleware.proxy_fix import ProxyFix

from . import cli, errors, idempotency, limits, security
from .extensions import api, babel, csrf, db, login_manager
from .views import admin, audit, auth, case_pages, dashboard, public, staff, window

ROOT = Path(__file__).resolve().parent.parent

# Page languages: Chinese by default, English at ``?lang=en`` (contract §5); the html ``lang`` of each.
LANGUAGES = {"zh": "zh-CN", "en": "en"}
DEFAULT_LANGUAGE = "zh"
# Public pages take their language from the link alone: a receipt's QR code opens in Chinese whoever
# scanned an English page before, and a visitor gets no cookie.
LANGUAGE_BY_LINK_ONLY = {"public"}

BLUEPRINTS = ("api.rest.cases:blp", "api.rest.calendar:blp", "api.rest.notifications:blp",
              "api.rest.documents:blp", "api.rest.documents:verify_blp", "api.rest.track:blp",
              "api.rest.reports:blp")


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: defaults, then ``FLASK_*`` environment variables, then ``test_config``."""
    app = Flask(__name__, instance_relative_config=True, template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"))
    app.config.from_mapping(
        DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{Path(app.instance_path) / 'onewindow.sqlite3'}",
        MAX_CONTENT_LENGTH=1024 * 1024,
        API_TITLE="OneWindow 企业开办一窗通办",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Swagger UI from the swagger-ui-bundle package, served by the app: the docs work offline.
        OPENAPI_SWAGGER_UI_URL="/api/v1/docs/static/",
        # No badge from the online validator: the docs fetch nothing from outside (and the CSP forbids it).
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
        # The staff pages' session cookie: not readable by scripts, not sent on cross-site POSTs.
        # Production serves HTTPS and sets FLASK_SESSION_COOKIE_SECURE=true; local `make run` is http.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,
        # The CSRF token lives as long as the session: a sign-in form left open over lunch still works.
        WTF_CSRF_TIME_LIMIT=None,
        # How often the queue, the board and the case page refresh their live parts (static/js/live.js).
        LIVE_REFRESH_SECONDS=15,
        BABEL_DEFAULT_LOCALE=DEFAULT_LANGUAGE,
        BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "translations"),
        # How many reverse proxies in front set X-Forwarded-For (0: the app faces clients directly).
        PROXY_FIX_X_FOR=0,
        # Said for every app: Flask-Limiter keeps ``enabled`` on the one shared Limiter and takes it as
        # the next app's default, so an app made with RATELIMIT_ENABLED=False (a test's) would leave
        # every later app in the process unthrottled.
        RATELIMIT_ENABLED=True,
        **limits.DEFAULTS,
    )
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        raise MissingSecretKey(
            "FLASK_SECRET_KEY is not set. It signs sessions, CSRF tokens and receipts, so every app server and "
            "timer worker needs the same long random value from the environment, e.g. "
            "FLASK_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))'); "
            "`make run` makes one for development in instance/secret_key.")
    if app.config["DATABASE_URL"].startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    app.json.ensure_ascii = False  # Chinese stays readable in responses
    db.init_app(app)
    api.init_app(app)
    babel.init_app(app, locale_selector=page_language)
    limits.limiter.init_app(app)
    if app.config["PROXY_FIX_X_FOR"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXY_FIX_X_FOR"]))
    csrf.init_app(app)
    login_manager.init_app(app)
    errors.register(app)
    security.init_app(app)
    for target in BLUEPRINTS:
        module, _, name = target.partition(":")
        blueprint = getattr(__import__(module, fromlist=[name]), name)
        api.register_blueprint(blueprint)
        csrf.exempt(blueprint)  # the REST API authenticates with bearer tokens, never with the cookie
    app.register_blueprint(public.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(case_pages.bp)
    app.register_blueprint(window.bp)
    app.register_blueprint(admin.bp)
    app.add_url_rule("/api/v1/docs/static/<path:filename>", "swagger_ui_static",
                     lambda filename: send_from_directory(swagger_ui_path, filename))
    app.before_request(_remember_language)
    app.before_request(_api_idempotency)
    app.context_processor(_language_links)
    app.after_request(_finish_request)
    cli.register(app)
    return app


class MissingSecretKey(click.ClickException, RuntimeError):
    """The app was started without ``FLASK_SECRET_KEY``.

    A ``ClickException`` so that a ``flask`` command ends in one line, "Error: FLASK_SECRET_KEY is
    not set…", and exit status 1 instead of a traceback; gunicorn and tests see a plain exception.
    """


def page_language() -> str:
    """The page's language: ``?lang=`` on this request, else the one remembered, else Chinese."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    lang = request.args.get("lang")
    if lang in LANGUAGES:
        return lang
    if request.blueprint in LANGUAGE_BY_LINK_ONLY:
        return DEFAULT_LANGUAGE
    return session.get("lang", DEFAULT_LANGUAGE)


def _remember_language():
    # Only an explicit ``?lang=`` touches the session, so the API and plain visits set no cookie.
    lang = request.args.get("lang")
    if lang in LANGUAGES and session.get("lang") != lang and not request.path.startswith(errors.API_PREFIX) \
            and request.blueprint not in LANGUAGE_BY_LINK_ONLY:
        session["lang"] = lang


def _language_links() -> dict:
    lang = page_language()
    other = "en" if lang == "zh" else "zh"
    query = request.args.to_dict()
    query["lang"] = other
    return {"page_lang": lang, "html_lang": LANGUAGES[lang], "other_lang": other,
            "other_html_lang": LANGUAGES[other], "other_lang_name": "English" if other == "en" else "中文",
            "other_lang_url": f"{request.path}?{urlencode(query)}"}


def _api_idempotency():
    if request.path.startswith(errors.API_PREFIX) and request.method == "POST" \
            and request.headers.get(idempotency.HEADER):
        return idempotency.reserve_or_replay()
    return None


def _finish_request(response):
    """The request owns its transaction: commit below 400, roll back otherwise."""
    db_session = g.get("db_session")
    if db_session is None:
        return response
    if response.status_code >= 400:
        db_session.rollback()
        return response
    idempotency.remember(response)
    db_session.commit()
    return response
