"""Mailroom's Flask application factory."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_login import current_user

from . import config as config_module
from . import i18n, input_guard, look, security_headers, unavailable
from .extensions import csrf, db, login_manager, migrate
from .secretbox import SecretBox, load_keys

__version__ = "0.1.0"

MIGRATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then ``config`` (tests and tools)."""
    overrides = dict(config or {})
    instance = overrides.pop("INSTANCE_PATH", None) or config_module.instance_path()
    app = Flask(__name__, instance_path=instance, instance_relative_config=True)
    app.config.from_mapping(config_module.DEFAULTS)
    app.config.from_mapping(config_module.from_environment(app.instance_path))
    app.config.from_mapping(overrides)
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)  # keys, database, Redis dump: owner only

    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _session_key(app.instance_path)
    app.extensions["mailroom.secretbox"] = SecretBox(load_keys(app.config["SECRET_KEYS"], app.instance_path))

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    input_guard.init_app(app)  # before the blueprints: their <int:...> routes use its IdConverter
    security_headers.init_app(app)
    i18n.init_app(app)  # languages: _() in templates and code (docs/translations.md)
    unavailable.init_app(app)  # an unreachable Redis is a 503 with a sentence (docs/queue.md)
    look.init_app(app)  # error pages in the console's layout, state words and icons (docs/look.md)

    # The blueprints are imported when an app is built, not when the package is: a worker or a
    # migration imports webapp.models without loading every view, form and template helper.
    from . import auth, models  # noqa: F401, PLC0415  (models registers the tables; see above)
    from .admin import bp as admin_bp  # noqa: PLC0415  (blueprints load with the app, see above)
    from .api import bp as api_bp  # noqa: PLC0415  (blueprints load with the app)
    from .mailboxes import bp as mailboxes_bp  # noqa: PLC0415  (blueprints load with the app)
    from .messages import bp as messages_bp  # noqa: PLC0415  (blueprints load with the app)

    app.register_blueprint(auth.bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(mailboxes_bp)
    app.register_blueprint(messages_bp)
    from .profile import bp as profile_bp  # noqa: PLC0415  (blueprints load with the app)

    app.register_blueprint(profile_bp)
    from .compose import bp as compose_bp  # noqa: PLC0415  (blueprints load with the app)

    app.register_blueprint(compose_bp)
    app.register_blueprint(api_bp)
    from .metrics import bp as metrics_bp  # noqa: PLC0415  (blueprints load with the app)

    app.register_blueprint(metrics_bp)
    csrf.exempt(api_bp)  # the API authenticates with bearer tokens, not cookies

    @app.context_processor
    def inject_version():
        return {"mailroom_version": __version__, "unread_notifications": _unread_notifications}

    app.jinja_env.filters["fromjson"] = json.loads

    return app


def _unread_notifications() -> list:
    """The signed-in user's unread notifications, for base.html (empty when signed out)."""
    from .accounts import unread_notifications  # noqa: PLC0415  (services load with the app, not the package)

    if not current_user.is_authenticated:
        return []
    return unread_notifications(current_user)


def _session_key(instance: str) -> str:
    """A persistent random key for signing sessions, kept in the instance folder."""
    path = os.path.join(instance, "session.key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made by an earlier start, or by a worker starting at the same moment
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(os.urandom(32).hex())
    with open(path) as fh:
        return fh.read().strip()
