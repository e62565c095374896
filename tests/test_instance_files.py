"""The instance folder's files are the owner's only (issue 10, point 8).

The SQLite file holds mail and encrypted secrets, the Redis dump holds sessions, throttles and
job data, the key files decrypt everything: under the usual umask (022) they used to be created
0644, readable by every account on the machine.
"""

from __future__ import annotations

import os
import stat

import pytest

from tests.conftest import SECRET_KEY
from webapp import create_app
from webapp.extensions import db
from webapp.queue import get_redis, stop_embedded


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def usual_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_database_redis_dump_and_keys_are_created_owner_only(tmp_path, usual_umask):
    instance = tmp_path / "instance"
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(instance / "mailroom.sqlite3"),
            "REDIS_URL": None,  # the embedded one, started in the instance folder
            "SECRET_KEYS": None,  # the instance key file
            "SECRET_KEY": None,  # the instance session key file
            "TESTING": True,
        }
    )
    try:
        with app.app_context():
            db.create_all()
            conn = get_redis()
            conn.set("mailroom:test", "x")
            conn.save()
        files = [
            "mailroom.sqlite3",
            "redis.rdb",
            "redis.log",
            "redis.conf",
            "redis.pid",
            "secret.key",
            "session.key",
        ]
        modes = {name: oct(_mode(instance / name)) for name in files}
        assert modes == {name: oct(0o600) for name in files}
        assert oct(_mode(instance)) == oct(0o700)
        assert _mode(instance / "redis.sock") & 0o077 == 0
    finally:
        stop_embedded(str(instance))


def test_files_left_world_readable_by_an_earlier_release_are_narrowed(tmp_path, usual_umask):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "mailroom.sqlite3").touch(mode=0o644)
    (instance / "redis.log").touch(mode=0o644)
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(instance / "mailroom.sqlite3"),
            "REDIS_URL": None,
            "SECRET_KEYS": SECRET_KEY,
            "TESTING": True,
        }
    )
    try:
        with app.app_context():
            db.create_all()
            get_redis().save()
        for name in ("mailroom.sqlite3", "redis.log", "redis.rdb"):
            assert oct(_mode(instance / name)) == oct(0o600), name
    finally:
        stop_embedded(str(instance))
