"""Signatures: the company's centralized template and mailboxes' own signatures.

A mailbox's ``signature_mode`` says which signature a message sent through it
gets: ``none``, ``custom`` (the mailbox's own text and/or HTML) or ``central``
(the administrator's template, filled with the sender's profile).

The template language (placeholders, the checks made when a template is saved,
filling) is in :mod:`webapp.signature_templates`.  All signature HTML
(templates and custom signatures) goes through the ``SIGNATURE`` policy of
:mod:`webapp.html_safety`: no script or style elements, no event attributes, no
``javascript:`` URLs, images only from ``https://`` URLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from . import settings_store
from .html_safety import for_signature
from .models import Account, User
from .signature_templates import MAX_HTML, MAX_TEXT, fill, template_errors
from .signature_templates import PLACEHOLDERS as PLACEHOLDERS  # re-exported for the admin page

MODES = ("none", "custom", "central")


def values_for(user: User, address: str, company: str) -> dict[str, str]:
    """The placeholder values for one sender sending from ``address``."""
    first, last = (user.first_name or "").strip(), (user.last_name or "").strip()
    return {
        "first_name": first,
        "last_name": last,
        "full_name": " ".join(p for p in (first, last) if p),
        "role": (user.job_title or "").strip(),
        "email": address,
        "phone": (user.phone or "").strip(),
        "company": company,
    }


# -- what a message gets ------------------------------------------------------------------------


@dataclass
class Rendered:
    text: str | None
    html: str | None


def sending_address(account: Account) -> str:
    """The address a mailbox sends as by default: its SMTP From when set, else its email."""
    return account.smtp_from or account.email


def render_central(
    user: User,
    address: str,
    *,
    text_template: str | None = None,
    html_template: str | None = None,
    company: str | None = None,
) -> Rendered:
    """The central template filled for ``user``; templates default to the saved ones."""
    if text_template is None:
        text_template = settings_store.get("central_signature_text")
    if html_template is None:
        html_template = settings_store.get("central_signature_html")
    if company is None:
        company = settings_store.get("company_name")
    values = values_for(user, address, company or "")
    text = fill(text_template, values).strip() if text_template else ""
    html = for_signature(fill(html_template, values, html=True)) if html_template else ""
    return Rendered(text or None, html or None)


def signature_for(account: Account, user: User, address: str | None = None) -> tuple[str | None, str | None]:
    """(text, html) to append to a message sent through ``account`` by ``user``.

    ``user`` is the sender (for a shared mailbox, not its owner); ``address`` the
    From address when it is not the mailbox's own (an alias).  Either part may be
    None: a signature with only HTML has no text part, and mode "none" has neither.
    """
    mode = account.signature_mode or "none"
    if mode == "custom":
        text = (account.signature_text or "").strip()
        html = for_signature(account.signature_html)
        return text or None, html or None
    if mode == "central":
        rendered = render_central(user, address or sending_address(account))
        return rendered.text, rendered.html
    return None, None


def render_preview(
    user: User,
    account: Account | None = None,
    *,
    text_template: str | None = None,
    html_template: str | None = None,
    company: str | None = None,
) -> dict:
    """The central signature as ``user`` would send it (from ``account`` or their main mailbox).

    Templates not yet saved may be passed (the admin page previews what is typed);
    their placeholder errors are returned instead of raised.
    """
    errors: dict[str, str] = {}
    for key, value in (("central_signature_text", text_template), ("central_signature_html", html_template)):
        if value is not None:
            problems = template_errors(value)
            if problems:
                errors[key] = " ".join(problems)
    if account is None and getattr(user, "id", None) is not None:  # not for the profile page's stand-in
        account = main_account(user)
    address = sending_address(account) if account is not None else "name@example.com"
    if errors:
        return {"text": None, "html": None, "address": address, "errors": errors}
    rendered = render_central(
        user, address, text_template=text_template, html_template=html_template, company=company
    )
    return {"text": rendered.text, "html": rendered.html, "address": address, "errors": {}}


def main_account(user: User) -> Account | None:
    return Account.query.filter_by(user_id=user.id).order_by(Account.is_main.desc(), Account.id).first()


# -- a mailbox's own signature (accounts API and edit form) ----------------------------------------


def clean_account_fields(data: dict, existing: Account | None, errors: dict[str, str]) -> dict:
    """``signature_mode``, ``signature_text``, ``signature_html`` of an account payload, validated."""
    out: dict[str, Any] = {}
    if "signature_mode" in data:
        if data["signature_mode"] not in MODES:
            errors["signature_mode"] = "must be one of: " + ", ".join(MODES)
        else:
            out["signature_mode"] = data["signature_mode"]
    if "signature_text" in data:
        value = data["signature_text"]
        if value is not None and not isinstance(value, str):
            errors["signature_text"] = _("must be a string")
        elif value and len(value) > MAX_TEXT:
            errors["signature_text"] = _("must be at most %(MAX_TEXT)s characters", MAX_TEXT=MAX_TEXT)
        elif value and any(ord(c) < 32 and c not in "\n\r\t" for c in value):
            errors["signature_text"] = _("must not contain control characters")
        else:
            out["signature_text"] = value.strip() if value and value.strip() else None
    if "signature_html" in data:
        value = data["signature_html"]
        if value is not None and not isinstance(value, str):
            errors["signature_html"] = _("must be a string")
        elif value and len(value) > MAX_HTML:
            errors["signature_html"] = _("must be at most %(MAX_HTML)s characters", MAX_HTML=MAX_HTML)
        else:
            out["signature_html"] = for_signature(value) or None
    mode = out.get("signature_mode", existing.signature_mode if existing is not None else "none")
    if mode == "custom" and "signature_mode" not in errors:
        text = out["signature_text"] if "signature_text" in out else getattr(existing, "signature_text", None)
        html = out["signature_html"] if "signature_html" in out else getattr(existing, "signature_html", None)
        if not text and not html:
            errors["signature_text"] = _("A custom signature needs a text or an HTML signature.")
    return out
