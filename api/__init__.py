"""The web layer: the Flask app factory. ``api`` calls ``workflow``; never the other way round."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, g, request, send_from_directory
from sqlalchemy.exc import IntegrityError
from swagger_ui_bundle import swagger_ui_path

from . import cli, errors, idempotency
from .extensions import api, db
from .views import public

ROOT = Path(__file__).resolve().parent.parent

BLUEPRINTS = ("api.rest.cases:blp", "api.rest.calendar:blp", "api.rest.notifications:blp",
              "api.rest.documents:blp", "api.rest.documents:verify_blp")


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
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        # Sessions then last as long as the process; `make run` and deployments set FLASK_SECRET_KEY.
        app.logger.warning("FLASK_SECRET_KEY is not set: using a random key for this process")
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    if app.config["DATABASE_URL"].startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    app.json.ensure_ascii = False  # Chinese stays readable in responses
    db.init_app(app)
    api.init_app(app)
    errors.register(app)
    for target in BLUEPRINTS:
        module, _, name = target.partition(":")
        api.register_blueprint(getattr(__import__(module, fromlist=[name]), name))
    app.register_blueprint(public.bp)
    app.add_url_rule("/api/v1/docs/static/<path:filename>", "swagger_ui_static",
                     lambda filename: send_from_directory(swagger_ui_path, filename))
    app.before_request(_api_idempotency)
    app.after_request(_finish_request)
    cli.register(app)
    return app


def _api_idempotency():
    if request.path.startswith(errors.API_PREFIX) and request.method == "POST" \
            and request.headers.get(idempotency.HEADER):
        return idempotency.replay_if_seen()
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
    try:
        db_session.commit()
    except IntegrityError as error:
        db_session.rollback()
        replay = idempotency.replay_after_race(error)
        if replay is None:
            raise
        return replay
    return response
