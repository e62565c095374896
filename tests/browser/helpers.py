"""Set-up shortcuts for the browser tests: put services and mailboxes straight into the database."""

from __future__ import annotations

from webapp import accounts, service_catalog
from webapp.extensions import db
from webapp.models import Account, Service, User


def add_corporate_server(
    live, name, imap=("imap.corp.example", 993, "tls"), smtp=("smtp.corp.example", 465, "tls")
):
    with live.app.app_context():
        cleaned = service_catalog.clean_service(
            {
                "name": name,
                "imap": dict(zip(("host", "port", "security"), imap, strict=True)),
                "smtp": dict(zip(("host", "port", "security"), smtp, strict=True)),
            }
        )
        service_id = service_catalog.create_service(cleaned).id
        db.session.remove()
        return service_id


def add_mailbox(live, username, service_id, login, password="mailbox-secret"):
    with live.app.app_context():
        user = db.session.get(User, live.users[username]["id"])
        data = {"service_id": service_id, "username": login, "password": password}
        account_id = accounts.create_account(user, accounts.clean_account(user, data)).id
        db.session.remove()
        return account_id


def issue_token(live, username):
    from webapp.api_tokens import issue_token as issue

    with live.app.app_context():
        token = issue(db.session.get(User, live.users[username]["id"]))
        db.session.remove()
        return token


def corporate_services(live):
    """{name: (imap endpoint, smtp endpoint, hidden)} of every corporate server stored."""
    with live.app.app_context():
        out = {
            s.name: (s.endpoint("imap"), s.endpoint("smtp"), s.hidden)
            for s in Service.query.filter_by(kind="corporate")
        }
        db.session.remove()
        return out


def mailboxes_of(live, username):
    with live.app.app_context():
        out = [
            {
                "email": a.email,
                "is_main": a.is_main,
                "manual": a.manual,
                "service_id": a.service_id,
                "state": a.state,
                "imap": a.server("imap"),
            }
            for a in Account.query.filter_by(user_id=live.users[username]["id"]).order_by(Account.id)
        ]
        db.session.remove()
        return out


def dovecot_mailbox_with_folders(live, server, username: str = "alice") -> int:
    """Connect ``username``'s Dovecot mailbox (plain IMAP on loopback) and list its folders."""
    from webapp import settings_store
    from webapp.jobs.folders import refresh_folders
    from webapp.jobs.session import open_client

    with live.app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"]})
        user = db.session.get(User, live.users[username]["id"])
        data = {
            "manual": {
                "imap": {"host": "127.0.0.1", "port": server.imap_port, "security": "none"},
                "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none"},
            },
            "username": username,
            "email": f"{username}@example.com",
            "password": server.users[username],
        }
        account = accounts.create_account(user, accounts.clean_account(user, data))
        with open_client(account, "imap") as client:
            refresh_folders(account, client)
        account_id = account.id
        db.session.remove()
        return account_id
