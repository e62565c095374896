"""Compose's "send later" field is a wall-clock time in the zone the pages show times in: the
user's profile zone, else the server's.  The browser's zone plays no part (see also
tests/browser/test_send_later_zone.py).  A time the zone skips is a field error; a time it shows
twice is its first occurrence."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import login
from tests.support.send_support import sending_mailbox
from webapp import settings_store
from webapp.extensions import db
from webapp.models import OutgoingMessage, User


@pytest.fixture
def app(make_app, certs):
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert), SEND_RETRY_INTERVALS=[], BABEL_DEFAULT_TIMEZONE="UTC")
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        yield app
        db.session.remove()


@pytest.fixture
def alice(app, client, users, clean_dovecot, clean_smtp_server):
    sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    login(client, "alice", users["alice"]["password"])
    return users["alice"]


def set_zone(user_id: int, zone: str | None) -> None:
    db.session.get(User, user_id).time_zone = zone
    db.session.commit()


def post_later(client, local: str):
    form = {"to": "bob@example.org", "subject": "Later", "body": "Kept text.", "action": "later"}
    return client.post("/compose/", data={**form, "send_at_local": local})


def next_local(zone: zoneinfo.ZoneInfo, test) -> datetime:
    """The first wall-clock 02:30 in the coming year for which ``test(naive)`` holds."""
    day = datetime.now(zone).replace(tzinfo=None, hour=2, minute=30, second=0, microsecond=0)
    for _ in range(366):
        day += timedelta(days=1)
        if test(day):
            return day
    pytest.skip(f"{zone.key} has no such time in the coming year")


def test_typed_time_is_the_profile_zones(app, client, alice):
    set_zone(alice["id"], "Pacific/Kiritimati")
    zone = zoneinfo.ZoneInfo("Pacific/Kiritimati")
    local = (datetime.now(zone) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    response = post_later(client, local.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 302, response.get_data(as_text=True)
    row = OutgoingMessage.query.one()
    # 09:00 at UTC+14 is 19:00 UTC the day before
    assert row.send_at == local.astimezone(UTC).replace(tzinfo=None)
    status = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "9:00" in status and "(Pacific/Kiritimati)" in status
    edit = client.get(f"/compose/outgoing/{row.id}/edit").get_data(as_text=True)
    assert f'value="{local:%Y-%m-%dT%H:%M}"' in edit
    assert "Time zone: Pacific/Kiritimati" in edit


def test_without_a_profile_zone_the_servers_zone_counts(app, client, alice):
    set_zone(alice["id"], None)
    local = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    assert post_later(client, local.strftime("%Y-%m-%dT%H:%M")).status_code == 302
    assert OutgoingMessage.query.one().send_at == local.replace(tzinfo=None)
    assert "Time zone: UTC" in client.get("/compose/").get_data(as_text=True)


def test_a_time_the_zone_skips_is_a_field_error(app, client, alice):
    set_zone(alice["id"], "Europe/Warsaw")
    zone = zoneinfo.ZoneInfo("Europe/Warsaw")

    def skipped(naive):
        return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive

    gap = next_local(zone, skipped)
    response = post_later(client, gap.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'data-field="send_at"' in page and "does not exist in Europe/Warsaw" in page
    assert "Kept text." in page and f'value="{gap:%Y-%m-%dT%H:%M}"' in page
    assert OutgoingMessage.query.count() == 0


def test_a_time_the_zone_shows_twice_is_its_first(app, client, alice):
    set_zone(alice["id"], "Europe/Warsaw")
    zone = zoneinfo.ZoneInfo("Europe/Warsaw")

    def twice(naive):  # fold 0 and 1 differ in a gap too, but a gap's time does not come back
        offsets = {naive.replace(tzinfo=zone, fold=fold).utcoffset() for fold in (0, 1)}
        return (
            len(offsets) == 2
            and naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive
        )

    overlap = next_local(zone, twice)
    assert post_later(client, overlap.strftime("%Y-%m-%dT%H:%M")).status_code == 302
    first = overlap.replace(tzinfo=zone, fold=0).astimezone(UTC).replace(tzinfo=None)
    assert OutgoingMessage.query.one().send_at == first


@pytest.mark.parametrize(
    "zone, local, sentence",
    [
        ("America/New_York", "9999-12-31T23:00", "must be within 366 days"),  # past datetime.max in UTC
        ("Asia/Tokyo", "0001-01-01T00:00", "must be in the future"),  # before datetime.min in UTC
        ("America/New_York", "2999-06-01T09:00", "must be within 366 days"),
    ],
)
def test_a_time_far_outside_the_window_is_a_field_error_not_a_500(app, client, alice, zone, local, sentence):
    set_zone(alice["id"], zone)
    response = post_later(client, local)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'data-field="send_at"' in page and sentence in page
    assert "Kept text." in page and f'value="{local}"' in page
    assert OutgoingMessage.query.count() == 0


@pytest.mark.parametrize(
    "send_at, sentence",
    [("9999-12-31T23:00:00-05:00", "must be within 366 days"), ("0001-01-01T00:00:00+09:00", "must be in the future")],
)
def test_an_iso_time_with_an_offset_beyond_what_utc_holds_is_a_field_error(app, client, alice, api, send_at, sentence):
    """The form's ``send_at`` (scripts, older pages) and the API share webapp.sending.parse_send_at."""
    form = {"to": "bob@example.org", "subject": "Later", "body": "Kept text.", "action": "later"}
    response = client.post("/compose/", data={**form, "send_at": send_at})
    assert response.status_code == 422 and sentence in response.get_data(as_text=True)
    body = {"to": ["bob@example.org"], "subject": "Later", "text": "Kept text.", "send_at": send_at}
    answer = api["alice"].post("/api/v1/messages/send", json=body)
    assert answer.status_code == 422 and answer.json["fields"]["send_at"] == sentence
    assert OutgoingMessage.query.count() == 0
