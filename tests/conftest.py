"""Shared fixtures: an app on a real database and a real Redis, clients, users and tokens.

By default the suite runs on the embedded default (an SQLite file and the
embedded Redis, in a temporary folder).  With ``DATABASE_URL`` and
``REDIS_URL`` set it runs against those servers instead; ``.ci/run`` does both.
"""

from __future__ import annotations

import os

import pytest
import redis
from cryptography.fernet import Fernet
from redis.connection import AbstractConnection

from connectors import plugins
from tests.support.parallel import isolate_worker
from tests.support.url_builders import reuse_compiled_url_builders
from webapp import create_app, settings_store, sign_in
from webapp.extensions import db

pytest_plugins = ["tests.servers.fixtures", "tests.support.discovery_servers"]

reuse_compiled_url_builders()  # create_app per test: 10x faster (tests/support/url_builders.py)

SECRET_KEY = Fernet.generate_key().decode()

#: Console passwords in tests: the production algorithm (werkzeug's scrypt) at n=2**10 instead of
#: 2**15, about 50x cheaper per hash; every ``users`` fixture hashes three passwords and every
#: sign-in one.  A test that needs the production cost (the stored hash's prefix, timing
#: comparisons against a wrong password) says ``@pytest.mark.real_password_hash``.
TEST_PASSWORD_HASH = "scrypt:1024:8:1"


def pytest_configure(config):
    # Under pytest-xdist each worker gets its own database and Redis database (tests/support/parallel.py).
    isolate_worker()


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="session")
def database_url(instance_dir):
    from webapp.config import _database_url

    if os.environ.get("DATABASE_URL"):
        return _database_url(instance_dir)
    return "sqlite:///" + os.path.join(instance_dir, "test.sqlite3")


@pytest.fixture(scope="session")
def redis_url(instance_dir):
    from webapp.queue import start_embedded, stop_embedded

    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    url = start_embedded(instance_dir)
    yield url
    stop_embedded(instance_dir)


def _config(instance_dir, database_url, redis_url, **extra):
    config = {
        "TESTING": True,
        "INSTANCE_PATH": instance_dir,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEYS": SECRET_KEY,
        "SECRET_KEY": "test-session-key",
        "QUEUE_NAME": "mailroom-test",
        "WTF_CSRF_ENABLED": False,
        "PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH,
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def migrated(instance_dir, database_url, redis_url):
    """Run the real Alembic migrations once, on an empty schema."""
    from flask_migrate import upgrade

    app = create_app(_config(instance_dir, database_url, redis_url))
    with app.app_context():
        with db.engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        upgrade()
    return True


def _empty_tables():
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def make_app(request, migrated, instance_dir, database_url, redis_url):
    """Build an app with extra config; tables are emptied and the test Redis flushed first."""
    hashing = {"PASSWORD_HASH_METHOD": None} if request.node.get_closest_marker("real_password_hash") else {}

    def make(**extra):
        sign_in._dummy_hash.cache_clear()  # made once per process, with the method of the app it first ran in
        app = create_app(_config(instance_dir, database_url, redis_url, **{**hashing, **extra}))
        with app.app_context():
            _empty_tables()
        redis.Redis.from_url(redis_url).flushdb()
        return app

    return make


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def send_app(make_app, certs):
    """The app of the sending tests: trusts the test CA, no retry delays, loopback allowed for
    typed servers.  A module takes it as its ``app`` with a one-line fixture."""
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert), SEND_RETRY_INTERVALS=[0, 0])
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        yield app
        db.session.remove()


@pytest.fixture
def fresh_plugins():
    """A plugin manager built anew around the test, for tests that register plugins of their own."""
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def users(app):
    """An administrator and two ordinary users, with passwords and API tokens."""
    from webapp.api_tokens import issue_token
    from webapp.users import create_user

    out = {}
    for name, admin in (("admin", True), ("alice", False), ("bob", False)):
        user = create_user(name, f"{name}-console-pw", admin=admin)
        out[name] = {
            "user": user,
            "id": user.id,
            "password": f"{name}-console-pw",
            "token": issue_token(user),
        }
    return out


class Api:
    """A tiny JSON client bound to one bearer token."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def __getattr__(self, method):
        def call(url, json=None, **kw):
            headers = kw.pop("headers", {})
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            return self.client.open(url, method=method.upper(), json=json, headers=headers, **kw)

        return call


@pytest.fixture
def api(client, users):
    """``api["admin"].post(url, json=…)`` etc., for the admin and the two users."""
    return {name: Api(client, info["token"]) for name, info in users.items()}


def login(client, username, password):
    return client.post("/login", data={"username": username, "password": password}, follow_redirects=False)


@pytest.fixture
def round_trips(monkeypatch):
    """Counts what redis-py sends to the server: one per command, one per pipeline."""
    sent = []
    real = AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        sent.append(1)
        return real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    return sent
