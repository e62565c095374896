"""Aliases and shared senders: API rules, admin-only sharing, and sharing never widening what people see."""

from __future__ import annotations

from tests.support.message_factory import make_account, make_folder, make_message
from webapp import message_queries as mq
from webapp.extensions import db
from webapp.identities import shared_senders
from webapp.models import Account, Alias, LogEntry


def _box(users, name, address, **extra):
    return make_account(users[name]["id"], address, **extra)


def test_aliases_are_listed_added_and_removed_by_the_owner(api, users):
    box = _box(users, "alice", "alice@acme.test")
    url = f"/api/v1/accounts/{box.id}/aliases"
    assert api["alice"].get(url).get_json() == []
    created = api["alice"].post(url, json={"address": " Sales@ACME.test ", "display_name": "ACME Sales"})
    assert created.status_code == 201, created.get_json()
    alias = created.get_json()
    assert alias["address"] == "sales@acme.test" and alias["display_name"] == "ACME Sales"
    api["alice"].post(url, json={"address": "info@acme.test"})
    assert [a["address"] for a in api["alice"].get(url).get_json()] == ["info@acme.test", "sales@acme.test"]

    assert api["alice"].delete(f"{url}/{alias['id']}").status_code == 204
    assert [a["address"] for a in api["alice"].get(url).get_json()] == ["info@acme.test"]
    assert api["alice"].delete(f"{url}/{alias['id']}").status_code == 404
    logged = [e.message for e in LogEntry.query.filter_by(account_id=box.id)]
    assert "Alias sales@acme.test added to alice@acme.test." in logged
    assert "Alias sales@acme.test removed from alice@acme.test." in logged


def test_alias_rules_name_the_field(api, users):
    box = _box(users, "alice", "alice@acme.test", smtp_from="a.liddell@acme.test")
    url = f"/api/v1/accounts/{box.id}/aliases"
    assert api["alice"].post(url, json={"address": "sales@acme.test"}).status_code == 201
    duplicate = api["alice"].post(url, json={"address": "SALES@acme.test"})
    assert duplicate.status_code == 409 and set(duplicate.get_json()["fields"]) == {"address"}
    for body, fields in (
        ({"address": "not an address"}, {"address"}),
        ({"address": ""}, {"address"}),
        ({}, {"address"}),
        ({"address": "Alice@ACME.test"}, {"address"}),  # the mailbox's own address
        ({"address": "a.liddell@acme.test"}, {"address"}),  # its SMTP From
        ({"address": "x@acme.test", "display_name": 7}, {"display_name"}),
        ({"address": "x@acme.test", "reply_to": "y@acme.test"}, {"reply_to"}),
    ):
        response = api["alice"].post(url, json=body)
        assert response.status_code == 422, body
        assert set(response.get_json()["fields"]) == fields, (body, response.get_json())
    assert api["alice"].post(url, data="x", content_type="text/plain").status_code == 400
    assert Alias.query.count() == 1
    # The same address may be an alias of another mailbox.
    other = _box(users, "alice", "alice2@acme.test")
    assert (
        api["alice"]
        .post(f"/api/v1/accounts/{other.id}/aliases", json={"address": "sales@acme.test"})
        .status_code
        == 201
    )


def test_aliases_are_the_owners_or_an_admins(api, users):
    box = _box(users, "alice", "alice@acme.test")
    url = f"/api/v1/accounts/{box.id}/aliases"
    alias_id = api["alice"].post(url, json={"address": "sales@acme.test"}).get_json()["id"]
    assert api["bob"].get(url).status_code == 404
    assert api["bob"].post(url, json={"address": "bob@acme.test"}).status_code == 404
    assert api["bob"].delete(f"{url}/{alias_id}").status_code == 404
    # An alias id of another mailbox is not found through this one.
    bobs = _box(users, "bob", "bob@acme.test")
    assert api["bob"].delete(f"/api/v1/accounts/{bobs.id}/aliases/{alias_id}").status_code == 404
    assert api["admin"].get(url).status_code == 200
    assert api["admin"].post(url, json={"address": "support@acme.test"}).status_code == 201
    assert api["admin"].delete(f"{url}/{alias_id}").status_code == 204
    assert api["bob"].get(url, headers={}).status_code == 404
    assert api["alice"].client.get(url).status_code == 401


def test_only_an_admin_shares_a_mailbox_for_sending_and_it_is_logged(api, users):
    box = _box(users, "alice", "alice@acme.test")
    url = f"/api/v1/accounts/{box.id}"
    assert api["alice"].get(url).get_json()["shared_sender"] is False
    refused = api["alice"].patch(url, json={"shared_sender": True})
    assert refused.status_code == 403 and set(refused.get_json()["fields"]) == {"shared_sender"}
    # Refused with other changes too: nothing of the request is stored.
    refused = api["alice"].patch(url, json={"description": "changed", "shared_sender": True})
    assert refused.status_code == 403
    db.session.expire_all()
    assert db.session.get(Account, box.id).description == "alice@acme.test"
    # Creating a shared mailbox is refused to a user as well.
    assert (
        api["bob"]
        .post(
            "/api/v1/accounts",
            json={
                "manual": {
                    "imap": {"host": "mail.example.test", "port": 993, "security": "tls"},
                    "smtp": {"host": "mail.example.test", "port": 465, "security": "tls"},
                },
                "username": "bob@acme.test",
                "password": "pw",
                "shared_sender": True,
            },
        )
        .status_code
        == 403
    )

    bad = api["admin"].patch(url, json={"shared_sender": "yes"})
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"shared_sender"}
    ok = api["admin"].patch(url, json={"shared_sender": True})
    assert ok.status_code == 200 and ok.get_json()["shared_sender"] is True
    assert [a.id for a in shared_senders()] == [box.id]
    # The owner may still edit the mailbox's other fields.
    assert api["alice"].patch(url, json={"description": "Sales desk"}).status_code == 200
    assert api["admin"].patch(url, json={"shared_sender": False}).get_json()["shared_sender"] is False

    entries = LogEntry.query.filter_by(source="Admin", account_id=box.id).order_by(LogEntry.id).all()
    assert [e.message for e in entries] == [
        "Mailbox alice@acme.test (alice) is now shared for sending with every user.",
        "Mailbox alice@acme.test (alice) is no longer shared for sending.",
    ]
    assert all(e.created_by == "admin" for e in entries)


def test_a_shared_mailbox_messages_stay_invisible_to_other_users(api, users):
    alice, bob = users["alice"]["user"], users["bob"]["user"]
    box = _box(users, "alice", "alice@acme.test")
    inbox = make_folder(box)
    secret = make_message(inbox, subject="Quarterly numbers")
    assert api["admin"].patch(f"/api/v1/accounts/{box.id}", json={"shared_sender": True}).status_code == 200

    assert mq.visible_messages(alice).count() == 1
    assert mq.visible_messages(bob).count() == 0
    assert mq.view_query(bob, "inbox").count() == 0
    assert "alice@acme.test" not in repr(mq.sidebar(bob))
    for url in (
        f"/api/v1/accounts/{box.id}",
        f"/api/v1/accounts/{box.id}/messages",
        f"/api/v1/accounts/{box.id}/messages/{secret.id}",
        f"/api/v1/messages/{secret.id}",
        f"/api/v1/accounts/{box.id}/aliases",
    ):
        assert api["bob"].get(url).status_code == 404, url
    listed = api["bob"].get("/api/v1/messages?role=inbox").get_json()
    assert "Quarterly numbers" not in repr(listed)
    # Its owner still reads it (200, or 202 while the body is fetched).
    assert api["alice"].get(f"/api/v1/messages/{secret.id}").status_code in (200, 202)
