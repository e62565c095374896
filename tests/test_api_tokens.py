"""API tokens have a name and an expiry, can be listed and revoked (API and CLI), and say why they fail."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import Api
from webapp.cli import cli
from webapp.extensions import db
from webapp.models import ApiToken, utcnow


def _row(token_id: int) -> ApiToken:
    db.session.expire_all()
    return db.session.get(ApiToken, token_id)


def _new_token(client, users, username="alice", **extra):
    body = {"username": username, "password": users[username]["password"], **extra}
    response = client.post("/api/v1/tokens", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _expires_in_days(info) -> float:
    expires = datetime.fromisoformat(info["expires_at"].rstrip("Z"))
    return (expires - utcnow()).total_seconds() / 86400


def test_a_new_token_has_a_name_and_expires_after_90_days_by_default(client, users):
    info = _new_token(client, users)
    assert info["token"].startswith("mr_") and info["name"] == "api" and info["active"]
    assert 89.9 < _expires_in_days(info) <= 90
    named = _new_token(client, users, name="backup script", days=7)
    assert named["name"] == "backup script" and 6.9 < _expires_in_days(named) <= 7


def test_the_default_lifetime_comes_from_the_config(make_app):
    from webapp.users import create_user

    app = make_app(TOKEN_DAYS=3)
    with app.app_context():
        create_user("alice", "alice-console-pw")
        info = _new_token(app.test_client(), {"alice": {"password": "alice-console-pw"}})
        assert 2.9 < _expires_in_days(info) <= 3
        db.session.remove()


def test_bad_token_options_name_the_field(client, users):
    password = users["alice"]["password"]
    for body, field in (
        ({"days": 0}, "days"),
        ({"days": "30"}, "days"),
        ({"days": True}, "days"),
        ({"days": 10**20}, "days"),
        ({"name": "x" * 101}, "name"),
        ({"name": 5}, "name"),
    ):
        response = client.post("/api/v1/tokens", json={"username": "alice", "password": password, **body})
        assert response.status_code == 422 and field in response.get_json()["fields"], body


def test_an_expired_token_is_refused_with_a_sentence(api, users):
    token_id = ApiToken.query.filter_by(user_id=users["alice"]["id"]).one().id
    _row(token_id).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = api["alice"].get("/api/v1/accounts")
    assert response.status_code == 401
    assert "This API token expired on" in response.get_json()["error"]
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_the_list_shows_only_ones_own_tokens_and_never_a_secret(api, users, client):
    extra = _new_token(client, users, "alice")
    response = api["alice"].get("/api/v1/tokens")
    assert response.status_code == 200
    listed = response.get_json()
    assert [t["id"] for t in listed] == [t.id for t in ApiToken.query.filter_by(user_id=users["alice"]["id"])]
    assert len(listed) == 2 and extra["id"] in [t["id"] for t in listed]
    assert set(listed[0]) == {
        "id",
        "name",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "active",
    }
    text = response.get_data(as_text=True)
    assert users["alice"]["token"] not in text and extra["token"] not in text
    assert listed[0]["last_used_at"] is not None  # the listing call itself used it
    bob_ids = {t["id"] for t in api["bob"].get("/api/v1/tokens").get_json()}
    assert bob_ids.isdisjoint(t["id"] for t in listed)


def test_revoking_ones_own_token_stops_it_at_once(api, users, client):
    spare = _new_token(client, users, "alice")
    spare_api = Api(client, spare["token"])
    assert spare_api.get("/api/v1/accounts").status_code == 200
    assert api["alice"].delete(f"/api/v1/tokens/{spare['id']}").status_code == 204
    refused = spare_api.get("/api/v1/accounts")
    assert refused.status_code == 401 and "This API token was revoked on" in refused.get_json()["error"]
    assert api["alice"].get("/api/v1/accounts").status_code == 200  # the other token still works
    assert api["alice"].delete(f"/api/v1/tokens/{spare['id']}").status_code == 204  # again: no-op
    listed = {t["id"]: t for t in api["alice"].get("/api/v1/tokens").get_json()}
    assert listed[spare["id"]]["revoked_at"] and not listed[spare["id"]]["active"]


def test_another_users_token_can_be_neither_seen_nor_revoked(api, users):
    bob_token_id = ApiToken.query.filter_by(user_id=users["bob"]["id"]).one().id
    assert api["alice"].delete(f"/api/v1/tokens/{bob_token_id}").status_code == 404
    assert api["alice"].delete("/api/v1/tokens/999999").status_code == 404
    assert api["alice"].delete(f"/api/v1/tokens/{2**63}").status_code == 404
    # Own tokens only, for administrators too.
    assert api["admin"].delete(f"/api/v1/tokens/{bob_token_id}").status_code == 404
    assert _row(bob_token_id).revoked_at is None
    assert api["bob"].get("/api/v1/accounts").status_code == 200


def test_token_endpoints_need_a_token(client):
    assert client.get("/api/v1/tokens").status_code == 401
    assert client.delete("/api/v1/tokens/1").status_code == 401


def test_cli_issues_named_tokens_lists_and_revokes(app, users, runner, client):
    plain = runner.invoke(cli, ["users", "token", "alice"])  # the old usage still works
    assert plain.exit_code == 0 and plain.output.strip().startswith("mr_")
    named = runner.invoke(cli, ["users", "token", "alice", "--name", "nightly", "--days", "5"])
    assert named.exit_code == 0, named.output
    token = named.output.strip()
    assert Api(client, token).get("/api/v1/accounts").status_code == 200
    row = ApiToken.query.filter_by(user_id=users["alice"]["id"], name="nightly").one()
    assert timedelta(days=4, hours=23) < row.expires_at - utcnow() <= timedelta(days=5)
    listing = runner.invoke(cli, ["tokens", "list", "alice"])
    assert listing.exit_code == 0 and "nightly" in listing.output and token not in listing.output
    assert len(listing.output.strip().splitlines()) == 3 and "active" in listing.output
    revoked = runner.invoke(cli, ["tokens", "revoke", str(row.id)])
    assert revoked.exit_code == 0 and "Revoked token" in revoked.output
    assert Api(client, token).get("/api/v1/accounts").status_code == 401
    assert "revoked" in runner.invoke(cli, ["tokens", "list", "alice"]).output
    assert runner.invoke(cli, ["tokens", "revoke", "999999"]).exit_code != 0
    assert runner.invoke(cli, ["users", "token", "alice", "--days", "0"]).exit_code != 0
    assert runner.invoke(cli, ["tokens", "list", "nobody"]).exit_code != 0
