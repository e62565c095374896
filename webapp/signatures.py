"""Signatures: the company's centralized template, mailboxes' own signatures, HTML sanitizing.

A mailbox's ``signature_mode`` says which signature a message sent through it
gets: ``none``, ``custom`` (the mailbox's own text and/or HTML) or ``central``
(the administrator's template, filled with the sender's profile).

Template syntax: ``{{name}}`` (spaces inside the braces allowed), where name is
one of :data:`PLACEHOLDERS`.  A single ``{`` or ``}`` is plain text.  An
unknown or malformed placeholder is refused when the template is SAVED (the
settings validators below raise, naming the placeholder), so filling at
sending time never fails.  In the HTML template every filled value is
HTML-escaped; all HTML (templates and custom signatures) goes through nh3:
no script or style elements, no event attributes, no ``javascript:`` URLs,
images only from ``https://`` URLs.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from typing import Any

import nh3

from .models import Account, User

#: Placeholder name → what it is filled with (shown on the admin page).
PLACEHOLDERS: dict[str, str] = {
    "first_name": "the sender's first name (My profile)",
    "last_name": "the sender's last name",
    "full_name": "first and last name, separated by a space",
    "role": "the sender's role / job title",
    "email": "the address the message is sent from",
    "phone": "the sender's phone number",
    "company": "the company name set on this page",
}
MODES = ("none", "custom", "central")
MAX_TEXT = 10_000
MAX_HTML = 50_000

# ``{{ name }}``; anything else between double braces (or an unclosed ``{{``) is malformed.
_TOKEN = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_OPEN_OR_CLOSE = re.compile(r"\{\{|\}\}")

_URL_SCHEMES = {"http", "https", "mailto", "tel"}
_ATTRIBUTES: dict[str, set[str]] = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
for _tag in nh3.ALLOWED_TAGS:
    _ATTRIBUTES.setdefault(_tag, set()).update({"style", "title"})
_ATTRIBUTES["a"].add("title")
# Inline CSS that lays out a signature; nothing that loads a URL (background, …) or moves the page.
_STYLE_PROPERTIES = {
    "color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "line-height",
    "text-align",
    "text-decoration",
    "vertical-align",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "border",
    "border-top",
    "border-bottom",
    "border-left",
    "border-right",
    "border-collapse",
    "width",
    "height",
    "max-width",
}


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    """Images only from https:// (a plain http image leaks the reader's address unencrypted)."""
    if tag == "img" and attr == "src" and not value.strip().lower().startswith("https://"):
        return None
    return value


def sanitize_html(value: str | None) -> str:
    """HTML safe to put in a message: nh3 with a signature-sized allow-list."""
    if not value:
        return ""
    return nh3.clean(
        value,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        attribute_filter=_attribute_filter,
        filter_style_properties=_STYLE_PROPERTIES,
        clean_content_tags={"script", "style"},
        link_rel="noopener noreferrer",
    ).strip()


# -- templates ------------------------------------------------------------------------------


def template_errors(template: str) -> list[str]:
    """What is wrong with a template's placeholders, one sentence each (empty when it is fine)."""
    errors: list[str] = []
    pos = 0
    for match in _OPEN_OR_CLOSE.finditer(template):
        if match.start() < pos:
            continue
        if match.group() == "}}":
            errors.append(f'"}}}}" at character {match.start() + 1} closes no placeholder.')
            pos = match.end()
            continue
        token = _TOKEN.match(template, match.start())
        if token is None:
            close = template.find("}}", match.end())
            reopen = template.find("{{", match.end())
            end = close + 2 if close != -1 and (reopen == -1 or close < reopen) else match.end()
            snippet = template[match.start() : max(end, match.start() + 2)][:40].split("\n")[0]
            errors.append(f'Malformed placeholder "{snippet}": write {{{{name}}}}, e.g. {{{{first_name}}}}.')
            pos = end
            continue
        name = token.group(1)
        if name not in PLACEHOLDERS:
            errors.append(f'Unknown placeholder "{{{{{name}}}}}"; use one of: {", ".join(PLACEHOLDERS)}.')
        pos = token.end()
    return errors


def _template(value: Any, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise ValueError("must not contain control characters")
    errors = template_errors(value)
    if errors:
        raise ValueError(" ".join(errors))
    return value.strip()


def clean_text_template(value: Any) -> str:
    """Validator of ``central_signature_text`` (settings_store): placeholders checked now, not at sending."""
    return _template(value, MAX_TEXT)


def clean_html_template(value: Any) -> str:
    """Validator of ``central_signature_html``: placeholders checked, then the HTML sanitized."""
    checked = _template(value, MAX_HTML)
    cleaned = sanitize_html(checked)
    # Sanitizing must not break a placeholder (e.g. one that was inside a dropped attribute).
    errors = template_errors(cleaned)
    if errors:
        raise ValueError(" ".join(errors))
    return cleaned


def clean_company(value: Any) -> str:
    """Validator of ``company_name``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    value = value.strip()
    if len(value) > 200:
        raise ValueError("must be at most 200 characters")
    if any(ord(c) < 32 for c in value):
        raise ValueError("must not contain control characters")
    return value


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


def fill(template: str, values: dict[str, str], *, html: bool = False) -> str:
    """The template with its placeholders replaced; values are escaped in HTML."""

    def replace(match: re.Match) -> str:
        value = values.get(match.group(1), "")
        return html_lib.escape(value, quote=True) if html else value

    return _TOKEN.sub(replace, template)


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
    from . import settings_store

    if text_template is None:
        text_template = settings_store.get("central_signature_text")
    if html_template is None:
        html_template = settings_store.get("central_signature_html")
    if company is None:
        company = settings_store.get("company_name")
    values = values_for(user, address, company or "")
    text = fill(text_template, values).strip() if text_template else ""
    html = sanitize_html(fill(html_template, values, html=True)) if html_template else ""
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
        html = sanitize_html(account.signature_html)
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
            errors["signature_text"] = "must be a string"
        elif value and len(value) > MAX_TEXT:
            errors["signature_text"] = f"must be at most {MAX_TEXT} characters"
        elif value and any(ord(c) < 32 and c not in "\n\r\t" for c in value):
            errors["signature_text"] = "must not contain control characters"
        else:
            out["signature_text"] = value.strip() if value and value.strip() else None
    if "signature_html" in data:
        value = data["signature_html"]
        if value is not None and not isinstance(value, str):
            errors["signature_html"] = "must be a string"
        elif value and len(value) > MAX_HTML:
            errors["signature_html"] = f"must be at most {MAX_HTML} characters"
        else:
            out["signature_html"] = sanitize_html(value) or None
    mode = out.get("signature_mode", existing.signature_mode if existing is not None else "none")
    if mode == "custom" and "signature_mode" not in errors:
        text = out["signature_text"] if "signature_text" in out else getattr(existing, "signature_text", None)
        html = out["signature_html"] if "signature_html" in out else getattr(existing, "signature_html", None)
        if not text and not html:
            errors["signature_text"] = "A custom signature needs a text or an HTML signature."
    return out
