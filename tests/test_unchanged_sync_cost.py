"""What an unchanged mailbox costs on the wire: one LOGIN and one STATUS per selected folder.

The job's own pieces (``open_client`` and the engine over ``SqlSyncStore``), with a transcript of
the commands sent, on the test Dovecot after a first sync.
"""

from __future__ import annotations

from connectors.sync import sync_folders
from connectors.transcript import Transcript
from tests.support.job_worker import run_burst
from tests.support.sync_support import make_mailbox
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.session import open_client
from webapp.jobs.sync import start as start_sync
from webapp.jobs.sync_store import SqlSyncStore
from webapp.models import Folder


def _commands(transcript: Transcript) -> list[str]:
    """The IMAP command names sent (tag dropped)."""
    return [e.text.split()[1].upper() for e in transcript.entries if e.direction == "sent" and " " in e.text]


def test_an_unchanged_mailbox_costs_a_login_and_one_status_per_folder(app, clean_dovecot, users):
    settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
    clean_dovecot.add_messages("alice", 3)
    account = make_mailbox(clean_dovecot, owner=users["alice"]["user"])
    db.session.commit()
    start_sync(account)
    run_burst()  # the first sync: folders listed, messages fetched
    folders = [(f.id, f.name) for f in Folder.query.filter_by(account_id=account.id, sync=True)]
    assert folders

    transcript = Transcript()
    with open_client(account, "imap", transcript) as client:
        stats = sync_folders(client.imap, SqlSyncStore(account.id), folders, account_id=account.id)
    sent = _commands(transcript)
    assert stats.inserted == stats.updated == stats.deleted == 0
    assert sent == ["LOGIN"] + ["STATUS"] * len(folders) + ["LOGOUT"], sent
