"""Support for the API fuzz test: a counting WSGI wrapper, a seeded world, and odd values.

The counter sits around ``app.wsgi_app`` so every request is counted the same way, whether
Schemathesis or the hand-written pass sent it; each 5xx is kept with its method and path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.support.message_factory import make_account, make_folder, make_message
from webapp.extensions import db
from webapp.models import Alias


@dataclass
class Counter:
    """Counts the requests a WSGI app answers and keeps the 5xx ones."""

    app: object
    requests: int = 0
    server_errors: list[str] = field(default_factory=list)

    def __call__(self, environ, start_response):
        self.requests += 1

        def spy(status, headers, exc_info=None):
            if status.startswith("5"):
                query = environ.get("QUERY_STRING", "")
                self.server_errors.append(
                    f"{status} {environ['REQUEST_METHOD']} {environ['PATH_INFO'][:200]}?{query[:200]}"
                )
            return start_response(status, headers, exc_info)

        return self.app(environ, spy)


#: Hand-written odd values for path parameters (as they appear in the URL).
ODD_PATH_VALUES = [
    "0",
    "-1",
    "2147483647",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "1" * 400,
    "a.b",
    "%00",
    "a%00b",
    "%ED%A0%80",
    "%C0%80",
    "..",
    "%2E%2E",
    "x" * 5000,
    "%F0%9F%93%A7",
    "1.5",
    "1e3",
]

#: Hand-written odd values for query parameters (raw, percent-encoded where needed).
ODD_QUERY_VALUES = ODD_PATH_VALUES + ["", "%FF", "true", "null", "[]", "y" * 100_000]

#: Stands for a JSON value nested 2,000 deep (spliced in by :func:`dumps`).
DEEP = "\x01deep\x01"
_DEEP_JSON = "[" * 2000 + "]" * 2000

#: Hand-written odd JSON values for each body field (and for nested fields one level down).
ODD_JSON_VALUES = [
    0,
    -1,
    2**31 - 1,
    2**31,
    2**63,
    2**64,
    -(2**63) - 1,
    1.5,
    1e308,
    True,
    None,
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "a\udfffb",
    "\U0001f4e7",
    "x" * 256,
    "x" * 1025,
    "z" * 100_000,
    "2147483648",
    "../../etc/passwd",
    "' OR 1=1 --",
    [],
    [None],
    ["\x00"],
    {},
    {"a": "\ud800"},
    DEEP,
]

#: Whole bodies that are not what any view expects.
ODD_RAW_BODIES = [
    (b"", "application/json"),
    (b"not json", "application/json"),
    (b"not json", "text/plain"),
    (b"\xff\xfe\xfd", "application/json"),
    (b"[]", "application/json"),
    (b"null", "application/json"),
    (b"123", "application/json"),
    (b'"\\ud800"', "application/json"),
    (b'{"a": "\\u0000"}', "application/json"),
    (("[" * 100_000 + "]" * 100_000).encode(), "application/json"),
    (('{"a":' * 5000 + "1" + "}" * 5000).encode(), "application/json"),
    (b"a=1&b=%00", "application/x-www-form-urlencoded"),
]


def dumps(value) -> bytes:
    """JSON bytes for an odd value, lone surrogates included (``json.dumps`` escapes them)."""
    return json.dumps(value).replace(json.dumps(DEEP), _DEEP_JSON).encode()


def _in_a_month() -> str:
    return (datetime.now(UTC) + timedelta(days=30)).replace(tzinfo=None).isoformat(timespec="seconds")


def seed_world(api, users) -> dict[str, str]:
    """Real rows of every kind the API addresses, owned by alice; their ids by path-parameter name."""
    alice = users["alice"]["id"]
    account = make_account(alice, "alice@example.com", is_main=True)
    folder = make_folder(account)
    message = make_message(folder, subject="Fuzz", message_id="<fuzz@example.com>")
    alias = Alias(account_id=account.id, address="alice.alias@example.com", display_name="Alias")
    db.session.add(alias)
    db.session.commit()
    service = api["admin"].post(
        "/api/v1/services",
        json={
            "name": "Fuzz corp",
            "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
            "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
        },
    )
    rule = api["alice"].post(
        f"/api/v1/accounts/{account.id}/filters",
        json={"name": "f", "conditions": [{"field": "from", "value": "x"}], "actions": [{"type": "flag"}]},
    )
    sent = api["alice"].post(
        "/api/v1/messages/send", json={"to": ["bob@example.com"], "text": "hi", "send_at": _in_a_month()}
    )
    assert sent.status_code == 202, sent.get_json()
    spare = api["admin"].post(
        "/api/v1/tokens", json={"username": "admin", "password": users["admin"]["password"]}
    )
    ids = {
        "token_id": spare.get_json()["id"],
        "account_id": account.id,
        "folder_id": folder.id,
        "message_id": message.id,
        "alias_id": alias.id,
        "service_id": service.get_json()["id"],
        "filter_id": rule.get_json()["id"],
        "outgoing_id": sent.get_json()["id"],
        "thread_key": message.thread_key or f"#{message.id}",
        "username": "alice",
        "number": 1,
        "job_id": sent.get_json().get("job_id") or "no-such-job",
    }
    return {key: str(value) for key, value in ids.items()}
