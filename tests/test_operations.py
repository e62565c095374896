"""What an operator sees: the admin Operations page and /metrics (Prometheus text).

Jobs, workers and failures are RQ's real records on the test Redis; the lag is computed from
mailbox rows made here.
"""

from __future__ import annotations

import operator
import re
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq.job import Job
from rq.registry import FailedJobRegistry

from tests.conftest import login
from tests.support.job_worker import run_burst
from webapp import operations
from webapp.extensions import db
from webapp.jobs import idle
from webapp.models import Account, utcnow
from webapp.queue import PERIODIC, enqueue, get_queue, get_redis


def _mailbox(owner_id: int, n: int, synced_ago: timedelta | None, state: str = "connected") -> Account:
    account = Account(
        user_id=owner_id,
        manual=True,
        username=f"user{n}",
        email=f"user{n}@example.com",
        imap_host="127.0.0.1",
        imap_port=143,
        imap_security="none",
        state=state,
        last_synced_at=utcnow() - synced_ago if synced_ago is not None else None,
    )
    db.session.add(account)
    return account


@pytest.fixture
def fleet(app, users):
    """20 active mailboxes synced 1..20 minutes ago, and a disabled one synced long ago (not counted)."""
    owner = users["alice"]["id"]
    for n in range(1, 21):
        _mailbox(owner, n, timedelta(minutes=n))
    _mailbox(owner, 99, timedelta(days=3), state="error").active = False
    db.session.commit()


def _metrics(text: str) -> dict[tuple, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _failed_job() -> Job:
    job = enqueue(operator.truediv, 1, 0, meta={"kind": "test"})
    run_burst()
    assert job.get_status(refresh=True) == "failed"
    return job


def test_the_page_is_for_administrators(client, users, fleet):
    login(client, "alice", "alice-console-pw")
    assert client.get("/admin/email/operations").status_code == 403
    client.get("/logout")
    login(client, "admin", "admin-console-pw")
    page = client.get("/admin/email/operations")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="nav-operations"' in html and "Administration › Operations" in html
    assert re.search(r'id="lag-oldest">20 min<', html) and re.search(r'id="lag-p95">19 min<', html)
    assert "push not running" in html and "No worker is running" in html
    assert re.search(r'<tr><td><span class="badge state state-connected".*?</span></td><td>20</td></tr>', html)


def test_lag_figures_and_the_chart_history(app, fleet):
    lag = operations.sync_lag()
    assert lag.mailboxes == 20  # the disabled one is not counted
    assert 1195 <= lag.oldest <= 1210 and 1135 <= lag.p95 <= 1150  # nearest rank: 19th of 20
    sample = operations.sample_lag()
    assert sample["oldest"] == pytest.approx(lag.oldest, abs=5)
    for _ in range(operations.HISTORY_LENGTH + 5):
        operations.sample_lag()
    assert get_redis().llen(operations.HISTORY_KEY) == operations.HISTORY_LENGTH  # capped at 24 h
    assert len(operations.lag_history()) == operations.HISTORY_LENGTH


def test_the_chart_is_drawn_from_the_samples(client, users, fleet):
    operations.sample_lag()
    login(client, "admin", "admin-console-pw")
    html = client.get("/admin/email/operations").get_data(as_text=True)
    assert re.search(r'<polyline points="[\d.]+,[\d.]+" fill="none" stroke="#b03030"', html)
    assert "1 sample, taken by" in html


def test_a_failed_job_is_listed_and_requeued(client, users, app):
    job = _failed_job()
    login(client, "admin", "admin-console-pw")
    html = client.get("/admin/email/operations").get_data(as_text=True)
    assert f'data-job-id="{job.id}"' in html and "ZeroDivisionError" in html
    response = client.post(f"/admin/email/operations/failed/{job.id}/requeue")
    assert response.status_code == 302
    assert job.get_status(refresh=True) == "queued" and job.id in get_queue().job_ids
    assert job.id not in FailedJobRegistry(queue=get_queue())
    # Requeued already: a second press says so instead of failing.
    again = client.post(f"/admin/email/operations/failed/{job.id}/requeue", follow_redirects=True)
    assert "No such failed job" in again.get_data(as_text=True)


def test_requeue_needs_the_csrf_token_and_an_admin(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        from webapp.users import create_user  # noqa: PLC0415  (after the app exists, as conftest does)

        create_user("root", "root-console-pw", admin=True)
        create_user("ann", "ann-console-pw", admin=False)
        job = _failed_job()
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        client.post("/login", data={"username": "ann", "password": "ann-console-pw", "csrf_token": token})
        assert client.post(f"/admin/email/operations/failed/{job.id}/requeue").status_code in (400, 403)
        client.get("/logout")
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        client.post("/login", data={"username": "root", "password": "root-console-pw", "csrf_token": token})
        assert client.post(f"/admin/email/operations/failed/{job.id}/requeue").status_code == 400
        assert job.get_status(refresh=True) == "failed"


def test_metrics_in_prometheus_text(client, users, app, fleet):
    for _ in range(3):
        enqueue(operator.add, 1, 2)
    enqueue(operator.add, 1, 2, lane=PERIODIC)
    assert client.get("/metrics").status_code == 401
    alice = {"Authorization": f"Bearer {users['alice']['token']}"}
    assert client.get("/metrics", headers=alice).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/metrics", headers={"Authorization": f"Bearer {users['admin']['token']}"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    metrics = _metrics(response.get_data(as_text=True))
    assert metrics[("mailroom_queue_jobs", (("lane", "interactive"), ("state", "queued")))] == 3
    assert metrics[("mailroom_queue_jobs", (("lane", "periodic"), ("state", "queued")))] == 1
    assert 1195 <= metrics[("mailroom_sync_lag_seconds", (("stat", "oldest"),))] <= 1210
    assert 1135 <= metrics[("mailroom_sync_lag_seconds", (("stat", "p95"),))] <= 1150
    assert metrics[("mailroom_mailboxes", (("state", "connected"),))] == 20
    assert metrics[("mailroom_idle_connections", ())] == 0


def test_metrics_for_a_scraper_token_and_an_admin_session(client, users, app):
    app.config["METRICS_TOKEN"] = "scrape-me-0123456789"
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me-01234567"}).status_code == 401
    login(client, "alice", "alice-console-pw")
    assert client.get("/metrics").status_code == 403
    client.get("/logout")
    login(client, "admin", "admin-console-pw")
    assert "mailroom_workers" in client.get("/metrics").get_data(as_text=True)


def test_idle_leases_are_counted_by_the_keys_mailroom_idle_writes(client, users, app):
    assert operations.IDLE_LEASES == idle.LEASE_KEY.format("*")
    assert operations.IDLE_PROCESSES == idle.PROCESS_KEY.format("*")
    redis = get_redis()
    redis.set(idle.LEASE_KEY.format(1), "proc-a", px=30000)
    redis.set(idle.LEASE_KEY.format(2), "proc-a", px=30000)
    redis.set(idle.PROCESS_KEY.format("proc-a"), '{"name": "proc-a", "mailboxes": 2, "idling": 1}', px=30000)
    figures = operations.figures()
    assert (figures.idle_connections, figures.idle_mailboxes, figures.idle_processes) == (1, 2, 1)
    login(client, "admin", "admin-console-pw")
    html = client.get("/admin/email/operations").get_data(as_text=True)
    assert (
        "<strong>1</strong> connection held by 1 <code>mailroom idle</code> process, for 2 mailboxes leased."
        in html
    )
    metrics = _metrics(client.get("/metrics").get_data(as_text=True))
    assert metrics[("mailroom_idle_connections", ())] == 1 and metrics[("mailroom_idle_mailboxes", ())] == 2
