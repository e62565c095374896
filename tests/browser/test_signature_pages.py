"""Signatures through Chromium: the admin writes the company template, a user fills the profile and sees it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login, shot

pytestmark = pytest.mark.browser

HTML_TEMPLATE = '<p><b>{{full_name}}</b> · {{role}}<br>{{company}} <img src="x" onerror="alert(1)"></p>'


def test_admin_writes_the_template_and_a_user_sees_it_filled_live(live_server, new_page):
    admin = login(new_page(), live_server, "admin")
    admin.click("#nav-signature")
    expect(admin).to_have_url(re.compile(r"/admin/email/signature$"))
    expect(admin.locator("#placeholders")).to_contain_text("{{first_name}}")

    # An unknown placeholder is refused under its field, and the live preview says so while typing.
    admin.fill("#company_name", "ACME")
    admin.fill("#central_signature_text", "Regards, {{nickname}}")
    expect(admin.locator('#preview-errors [data-field="central_signature_text"]')).to_contain_text(
        "{{nickname}}"
    )
    admin.click("button[type=submit]:has-text('Save signature')")
    expect(admin.locator("#field-central_signature_text .error")).to_contain_text(
        'Unknown placeholder "{{nickname}}"'
    )

    admin.fill("#central_signature_text", "Regards,\n{{full_name}} ({{role}}), {{company}}\n{{email}}")
    admin.fill("#central_signature_html", HTML_TEMPLATE)
    admin.click("button[type=submit]:has-text('Save signature')")
    expect(admin.locator(".flash-success")).to_contain_text("Signature saved.")
    expect(admin.locator("#central_signature_html")).not_to_contain_text("onerror")
    shot(admin, "admin-signature")

    alice = login(new_page(), live_server, "alice")
    alice.click("#nav-profile")
    expect(alice).to_have_url(re.compile(r"/profile/$"))
    alice.fill("#first_name", "Alice")
    alice.fill("#last_name", "Liddell")
    alice.fill("#job_title", "Buyer & <Planner>")
    # The preview follows the typing before anything is saved.
    expect(alice.locator("#preview-text")).to_have_text(
        "Regards,\nAlice Liddell (Buyer & <Planner>), ACME\nname@example.com"
    )
    frame = alice.frame_locator("#preview-html")
    expect(frame.locator("b")).to_have_text("Alice Liddell")
    expect(frame.locator("p")).to_contain_text("Buyer & <Planner>")
    expect(frame.locator("img")).not_to_have_attribute("onerror", re.compile(".*"))

    alice.fill("#phone", "not a phone")
    expect(alice.locator('#preview-errors [data-field="phone"]')).to_be_visible()
    alice.fill("#phone", "+39 02 1234")
    alice.click("button[type=submit]:has-text('Save')")
    expect(alice.locator(".flash-success")).to_contain_text("Profile saved.")
    expect(alice.locator("#first_name")).to_have_value("Alice")
    expect(alice.locator("#preview-text")).to_contain_text("Alice Liddell (Buyer & <Planner>), ACME")
    shot(alice, "profile")

    # The administrator's preview uses the administrator's own profile, not Alice's.
    admin.reload()
    expect(admin.locator("#preview-text")).not_to_contain_text("Alice")
