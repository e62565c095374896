"""The published OpenAPI description: public, valid, and complete (a meta-test like datasette's).

Every ``/api/v1`` rule of ``app.url_map`` with each of its methods must be in the description,
every view that reads a JSON body or a query string must have it described, and string
lengths must be the columns' own, so a new route or a widened column cannot be left out.
"""

from __future__ import annotations

import inspect

import schemathesis

from webapp.api import openapi
from webapp.column_limits import column_length
from webapp.models import Account, Filter, User


def test_description_is_public_json(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.is_json
    description = response.get_json()
    assert description["openapi"].startswith("3.1")
    assert description["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_every_api_rule_and_method_is_described(app, client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        described = paths.get(openapi.openapi_path(rule), {})
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in described:
                missing.append(f"{method} {rule.rule}")
    assert missing == []
    assert len(paths) >= 40


def test_every_view_reading_a_body_or_query_has_it_described(app):
    """A view that calls ``_json()`` needs a request schema, one reading ``request.args`` its parameters."""
    undescribed = []
    for rule in openapi.api_rules(app):
        name = rule.endpoint.removeprefix("api.")
        source = inspect.getsource(inspect.unwrap(app.view_functions[rule.endpoint]))
        if "_json()" in source and name not in openapi.REQUEST_BODIES:
            undescribed.append(f"body of {name}")
        if "request.args" in source and name not in openapi.QUERY_PARAMETERS:
            undescribed.append(f"query of {name}")
    assert undescribed == []
    tables = (
        openapi.REQUEST_BODIES,
        openapi.QUERY_PARAMETERS,
        openapi.REQUIRED_QUERY,
        openapi.SUCCESS,
        openapi.OTHER_SUCCESS,
        openapi.BEYOND_SCHEMA,
        openapi.BINARY,
        openapi.NEW_PASSWORDS,
    )
    stale = set().union(*map(set, tables)) - {r.endpoint.removeprefix("api.") for r in openapi.api_rules(app)}
    assert stale == set(), "table entries for endpoints that no longer exist"


def test_security_follows_the_views_decorators(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "security" not in paths["/api/v1/tokens"]["post"]
    assert "security" not in paths["/api/v1/openapi.json"]["get"]
    assert paths["/api/v1/accounts"]["get"]["security"] == [{"bearer": []}]
    assert "403" in paths["/api/v1/services"]["post"]["responses"]
    assert "403" not in paths["/api/v1/accounts"]["post"]["responses"]


def test_lengths_and_ids_come_from_the_model(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    me = paths["/api/v1/me"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    # Stripped text: the limit counts what is left between the spaces, so it is in the pattern.
    assert column_length(User.first_name) == 120
    assert "]{0,120}[" in me["properties"]["first_name"]["pattern"]
    account = paths["/api/v1/accounts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert f"]{{0,{column_length(Account.email)}}}[" in account["properties"]["email"]["pattern"]
    assert account["properties"]["password"]["maxLength"] == 1024
    assert account["properties"]["service_id"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    rule = paths["/api/v1/accounts/{account_id}/filters"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert f"]{{0,{column_length(Filter.name)}}}[" in rule["schema"]["properties"]["name"]["pattern"]
    job = paths["/api/v1/jobs/{job_id}"]["get"]["parameters"]
    assert job == [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}]


def test_schemathesis_reads_every_operation(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    got = {result.ok().label for result in schema.get_all_operations()}
    want = {
        f"{method} {openapi.openapi_path(rule)}"
        for rule in openapi.api_rules(app)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert want - got == {"GET /api/v1/openapi.json"}  # Schemathesis leaves out the description itself
    assert got - want == set()


def test_a_patch_of_an_account_describes_both_answers(client):
    """200 (saved, tested at once when not working) and 202 (a working mailbox's new settings tried first)."""
    answers = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/accounts/{account_id}"]["patch"]
    assert {"200", "202"} <= set(answers["responses"])
    assert "tried first" in answers["responses"]["202"]["description"]


def test_answers_the_description_names(client):
    """The second success answers, a file's media type and the rules beyond the schema are described."""
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    message = paths["/api/v1/messages/{message_id}"]["get"]["responses"]
    assert "fetched" in message["202"]["description"]
    attachment = paths["/api/v1/messages/{message_id}/attachments/{number}"]["get"]["responses"]
    assert set(attachment["200"]["content"]) == {"*/*"}
    history = paths["/api/v1/history"]["get"]
    assert [p["name"] for p in history["parameters"] if p["required"]] == ["address"]
    assert "beyond this schema" in history["responses"]["422"]["description"]
    user = paths["/api/v1/users"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert user["properties"]["password"]["minLength"] == 12


def test_the_server_keeps_what_the_description_says(app, api, users):
    """Three disagreements Schemathesis found, now settled on the server's side."""
    assert api["admin"].get("/api/v1/accounts?all=maybe").status_code == 422
    assert api["admin"].get("/api/v1/accounts?all=true").status_code == 200
    # 30.0 is the integer 30 in JSON Schema (and in JSON): taken where a whole number is asked for.
    made = api["admin"].post(
        "/api/v1/tokens", json={"username": "admin", "password": users["admin"]["password"], "days": 30.0}
    )
    assert made.status_code == 201, made.get_json()
    assert api["admin"].post(
        "/api/v1/tokens", json={"username": "admin", "password": users["admin"]["password"], "days": 30.5}
    ).get_json()["fields"] == {"days": "must be a whole number of days between 1 and 3650"}
    service = (
        api["admin"]
        .post(
            "/api/v1/services",
            json={
                "name": "Corp",
                "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
            },
        )
        .get_json()
    )
    long_login = api["admin"].post(
        f"/api/v1/services/{service['id']}/test", json={"username": "u" * 2000, "password": "pw", "x": 1}
    )
    assert long_login.status_code == 422
    assert set(long_login.get_json()["fields"]) == {"username", "x"}
