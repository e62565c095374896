"""Each malformed input once answered with a 500 (issue 10, point 7): now a 4xx naming the field.

Ids beyond the database's integer range (2**31 on PostgreSQL, 2**63 on SQLite) in paths,
bodies and queries; JSON nested ~1,000 deep; lone surrogates; NUL bytes; job ids RQ refuses;
strings longer than their column. API and pages, before and after sign-in, on both databases.
"""

from __future__ import annotations

import pytest

from tests.conftest import login
from tests.support.message_factory import make_account, make_folder, make_message
from webapp.message_queries import encode_cursor
from webapp.queue import get_redis

BIG = [2**31, 2**63, 2**64]
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def world(app, users):
    """Alice's mailbox with a folder and a message; crashes answer 500 instead of raising."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    account = make_account(users["alice"]["id"], "alice@example.com", is_main=True)
    folder = make_folder(account)
    make_message(folder)
    return {"acc": account.id, "folder": folder.id}


def _fields(response) -> dict:
    assert response.is_json, response.get_data(as_text=True)[:300]
    return response.get_json().get("fields", {})


# -- ids out of range -----------------------------------------------------------------------

API_ID_PATHS = [
    ("GET", "/api/v1/accounts/{n}"),
    ("PATCH", "/api/v1/accounts/{n}"),
    ("DELETE", "/api/v1/accounts/{n}"),
    ("GET", "/api/v1/accounts/{acc}/filters/{n}"),
    ("GET", "/api/v1/accounts/{acc}/messages/{n}"),
    ("PATCH", "/api/v1/accounts/{acc}/folders/{n}"),
    ("GET", "/api/v1/messages/{n}"),
    ("GET", "/api/v1/services/{n}"),
    ("GET", "/api/v1/outgoing/{n}"),
    ("DELETE", "/api/v1/tokens/{n}"),
    # Jobs are enqueued only for a real row: an id out of range is a 404 before anything is queued.
    ("POST", "/api/v1/accounts/{n}/test"),
    ("POST", "/api/v1/accounts/{n}/sync"),
    ("POST", "/api/v1/accounts/{n}/folders/refresh"),
    ("POST", "/api/v1/accounts/{acc}/folders/{n}/run-filters"),
    ("POST", "/api/v1/services/{n}/test"),
]


@pytest.mark.parametrize(("method", "path"), API_ID_PATHS)
def test_api_path_id_out_of_range_is_a_json_404(api, world, method, path):
    for n in BIG:
        response = getattr(api["admin"], method.lower())(path.format(n=n, **world), json={})
        assert response.status_code == 404, n
        assert response.is_json
    assert get_redis().keys("rq:job:*") == [], "nothing may be enqueued"


JOB_PATHS = [(m, p) for m, p in API_ID_PATHS if m == "POST"]


@pytest.mark.parametrize(("method", "path"), JOB_PATHS)
def test_job_for_an_id_in_range_that_does_not_exist_is_a_404_and_nothing_is_enqueued(
    api, world, method, path
):
    for n in (2**31 - 1, 1_000_000):
        body = {"username": "u", "password": "p"}  # the service test's credentials, ignored elsewhere
        response = api["admin"].post(path.format(n=n, **world), json=body)
        assert response.status_code == 404, (n, response.get_json())
    assert get_redis().keys("rq:job:*") == []


@pytest.mark.parametrize(
    ("who", "path", "body", "field"),
    [
        (
            "alice",
            "/api/v1/accounts",
            {"service_id": "N", "username": "a@example.com", "password": "p"},
            "service_id",
        ),
        ("alice", "/api/v1/accounts/oauth/start", {"service_id": "N"}, "service_id"),
        ("alice", "/api/v1/accounts/oauth/start", {"account_id": "N"}, "account_id"),
        (
            "alice",
            "/api/v1/accounts/{acc}/filters",
            {
                "conditions": [{"field": "from", "value": "x"}],
                "actions": [{"type": "move", "folder_id": "N"}],
            },
            "actions[0].folder_id",
        ),
        ("admin", "/api/v1/settings", {"default_incoming_account_id": "N"}, "default_incoming_account_id"),
    ],
)
def test_api_body_id_out_of_range_is_a_422_naming_the_field(api, world, who, path, body, field):
    def fill(value, n):
        if value == "N":
            return n
        if isinstance(value, dict):
            return {k: fill(v, n) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, n) for v in value]
        return value

    method = "patch" if path.endswith("/settings") else "post"
    for n in BIG:
        response = getattr(api[who], method)(path.format(**world), json=fill(body, n))
        assert response.status_code == 422, n
        assert "from 1 to 2147483647" in _fields(response)[field], n  # the range, not "a whole number"
    assert get_redis().keys("rq:job:*") == [], "nothing may be enqueued"


def test_api_move_folder_out_of_range_names_the_range(api, world):
    message = api["alice"].get(f"/api/v1/accounts/{world['acc']}/messages").get_json()
    ids = [m["id"] for m in (message["messages"] if isinstance(message, dict) else message)]
    for n in BIG:
        body = {"ids": ids[:1], "action": "move", "folder": n}
        response = api["alice"].post("/api/v1/messages/actions", json=body)
        assert response.status_code == 422, n
        assert "from 1 to 2147483647" in _fields(response)["folder"], n


def test_api_message_ids_out_of_range_name_the_item_and_the_range(api, world):
    for n in [*BIG, 0, True, "7"]:
        response = api["alice"].post("/api/v1/messages/actions", json={"ids": [1, n], "action": "read"})
        assert response.status_code == 422, n
        assert _fields(response) == {"ids.1": "must be an id (a whole number from 1 to 2147483647)"}


@pytest.mark.parametrize(
    ("who", "url", "field"),
    [
        ("alice", "/api/v1/accounts/{acc}/messages?folder={n}", "folder"),
        ("admin", "/api/v1/logs?account_id={n}", "account_id"),
        ("admin", "/api/v1/logs?user_id={n}", "user_id"),
        ("admin", "/api/v1/logs?cursor={n}", "cursor"),
        ("alice", "/api/v1/messages?cursor={cursor}", "cursor"),
    ],
)
def test_api_query_id_out_of_range_is_a_422_naming_the_field(api, world, who, url, field):
    for n in BIG:
        response = api[who].get(url.format(n=n, cursor=encode_cursor(None, n), **world))
        assert response.status_code == 422, n
        assert field in _fields(response)


def test_api_thread_of_an_id_out_of_range_is_a_404(api, world):
    assert api["alice"].get(f"/api/v1/threads/%23{2**63}").status_code == 404


def test_api_superscript_digit_limit_is_a_422(api, world):
    response = api["alice"].get("/api/v1/outgoing?limit=%C2%B2")  # "²".isdigit() is True, int("²") fails
    assert response.status_code == 422
    assert "limit" in _fields(response)


# -- deep JSON, NUL, lone surrogates, job ids -----------------------------------------------


@pytest.mark.parametrize("body", [DEEP, '{"a":' * 5000 + "1" + "}" * 5000, "[" * 40 + "]" * 40])
def test_deeply_nested_json_is_a_400_before_sign_in(client, world, body):
    response = client.post("/api/v1/tokens", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "too deeply nested" in response.get_json()["error"]


def test_deeply_nested_json_is_a_400_after_sign_in(api, world):
    response = api["alice"].post("/api/v1/accounts", data=DEEP, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("raw", "problem"), [('"a\\u0000b"', "NUL"), ('"\\ud800"', "surrogate"), ('"x\\udfffy"', "surrogate")]
)
def test_nul_and_lone_surrogate_in_json_are_a_422_naming_the_field_before_sign_in(
    client, world, raw, problem
):
    body = '{"username": ' + raw + ', "password": "x"}'
    response = client.post("/api/v1/tokens", data=body, content_type="application/json")
    assert response.status_code == 422
    assert problem in _fields(response)["username"]


def test_nul_in_a_nested_json_field_is_named_with_its_path(api, world):
    body = {
        "to": ["bob@example.com"],
        "text": "hi",
        "attachments": [{"filename": "a\x00b", "content_base64": ""}],
    }
    response = api["alice"].post("/api/v1/messages/send", json=body)
    assert response.status_code == 422
    assert "NUL" in _fields(response)["attachments.0.filename"]


@pytest.mark.parametrize("query", ["q=a%00b", "role=inbox%00"])
def test_nul_in_a_query_is_a_422_naming_the_parameter(api, world, query):
    response = api["alice"].get(f"/api/v1/messages?{query}")
    assert response.status_code == 422
    assert query.split("=")[0] in _fields(response)


@pytest.mark.parametrize("job_id", ["a.b", "a%00b", "..", "a%2Fb", "%ED%A0%80"])
def test_job_ids_rq_refuses_are_a_404(api, client, users, world, job_id):
    assert api["alice"].get(f"/api/v1/jobs/{job_id}").status_code == 404
    login(client, "alice", users["alice"]["password"])
    assert client.get(f"/mailboxes/jobs/{job_id}").status_code == 404
    assert client.get(f"/mailboxes/jobs/{job_id}/report").status_code == 404


# -- strings longer than their column --------------------------------------------------------


def test_string_longer_than_its_column_is_a_422_naming_it(api, world):
    """A MIME type of 300 characters passes the pattern; varchar(255) on PostgreSQL refused it with a 500."""
    body = {
        "to": ["bob@example.com"],
        "text": "hi",
        "attachments": [{"filename": "a.txt", "content_type": "text/" + "x" * 300, "content_base64": "aGk="}],
    }
    response = api["alice"].post("/api/v1/messages/send", json=body)
    assert response.status_code == 422
    assert _fields(response) == {"content_type": "must be at most 255 characters"}
    assert api["alice"].get("/api/v1/outgoing").get_json() == []


# -- pages -----------------------------------------------------------------------------------

PAGES = [
    "/mailboxes/{n}/edit",
    "/mailboxes/{n}/folders",
    "/mailboxes/{n}/filters",
    "/mailboxes/{n}/out-of-office",
    "/mailboxes/{n}/row",
    "/mailboxes/{acc}/filters/{n}/edit",
    "/messages/{n}",
    "/compose/outgoing/{n}",
    "/compose/outgoing/{n}/edit",
    "/compose/outgoing/{n}/state",
    "/admin/email/services/{n}/edit",
    "/admin/email/oauth-apps/{n}",
    "/mailboxes/oauth/start?account={n}",
]


@pytest.mark.parametrize("page", PAGES)
def test_page_with_an_id_out_of_range_is_a_404(client, users, world, page):
    login(client, "admin", users["admin"]["password"])
    for n in BIG:
        assert client.get(page.format(n=n, **world)).status_code == 404, n


def test_page_form_post_with_an_id_out_of_range_is_a_404(client, users, world):
    login(client, "alice", users["alice"]["password"])
    for n in BIG:
        assert client.post(f"/mailboxes/{n}/sync").status_code == 404
        assert client.post(f"/mailboxes/{n}/delete").status_code == 404


def test_page_with_a_folder_id_out_of_range_names_the_field(client, users, world):
    login(client, "alice", users["alice"]["password"])
    for n in BIG:
        response = client.get(f"/messages/?folder={n}")
        assert response.status_code == 422
        assert "folder" in response.get_data(as_text=True)


@pytest.mark.parametrize(("field", "value"), [("username", "a\x00b"), ("password", "pw\x00")])
def test_sign_in_form_with_a_nul_is_a_4xx_page_naming_the_field(client, world, field, value):
    data = {"username": "alice", "password": "x", field: value}
    response = client.post("/login", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert field in page and "NUL" in page


def test_sign_in_form_with_a_surrogate_escape_is_not_a_500(client, world):
    response = client.post(
        "/login", data=b"username=%ED%A0%80&password=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code < 500


def test_signed_in_form_post_with_a_nul_is_a_4xx_page_naming_the_field(client, users, world):
    login(client, "alice", users["alice"]["password"])
    response = client.post("/profile/", data={"first_name": "Al\x00ice"})
    assert response.status_code == 422
    assert "first_name" in response.get_data(as_text=True)


def test_signed_in_query_with_a_nul_is_a_4xx_page(client, users, world):
    login(client, "alice", users["alice"]["password"])
    response = client.get("/messages/?q=a%00b")
    assert response.status_code == 422
    assert "q" in response.get_data(as_text=True)
