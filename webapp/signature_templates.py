"""The signature template language: ``{{placeholder}}`` syntax, checks, filling.

Template syntax: ``{{name}}`` (spaces inside the braces allowed), where name is
one of :data:`PLACEHOLDERS`.  A single ``{`` or ``}`` is plain text.  An
unknown or malformed placeholder is refused when the template is SAVED (the
validators here are ``settings_store.SCHEMA``'s for the central signature), so
filling at sending time never fails.  In HTML every filled value is escaped,
and the HTML template goes through :data:`webapp.html_safety.SIGNATURE`.

This module needs no database: ``settings_store`` validates with it, and
``signatures`` (which reads the saved templates from ``settings_store``) fills
with it, so neither of those two imports the other in a loop.
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .html_safety import for_signature

#: Placeholder name → what it is filled with (shown on the admin page).
PLACEHOLDERS: dict[str, Any] = {
    "first_name": _l("the sender's first name (My profile)"),
    "last_name": _l("the sender's last name"),
    "full_name": _l("first and last name, separated by a space"),
    "role": _l("the sender's role / job title"),
    "email": _l("the address the message is sent from"),
    "phone": _l("the sender's phone number"),
    "company": _l("the company name set on this page"),
}
MAX_TEXT = 10_000
MAX_HTML = 50_000


# ``{{ name }}``; anything else between double braces (or an unclosed ``{{``) is malformed.
_TOKEN = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_OPEN_OR_CLOSE = re.compile(r"\{\{|\}\}")


def template_errors(template: str) -> list[str]:
    """What is wrong with a template's placeholders, one sentence each (empty when it is fine)."""
    errors: list[str] = []
    pos = 0
    for match in _OPEN_OR_CLOSE.finditer(template):
        if match.start() < pos:
            continue
        if match.group() == "}}":
            errors.append(_('"}}" at character %(position)s closes no placeholder.', position=match.start() + 1))
            pos = match.end()
            continue
        token = _TOKEN.match(template, match.start())
        if token is None:
            close = template.find("}}", match.end())
            reopen = template.find("{{", match.end())
            end = close + 2 if close != -1 and (reopen == -1 or close < reopen) else match.end()
            snippet = template[match.start() : max(end, match.start() + 2)][:40].split("\n")[0]
            errors.append(
                _('Malformed placeholder "%(snippet)s": write {{name}}, e.g. {{first_name}}.', snippet=snippet)
            )
            pos = end
            continue
        name = token.group(1)
        if name not in PLACEHOLDERS:
            errors.append(
                _('Unknown placeholder "{{%(name)s}}"; use one of: %(names)s.', name=name, names=", ".join(PLACEHOLDERS))
            )
        pos = token.end()
    return errors


def _template(value: Any, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(_("must be a string"))
    if len(value) > max_length:
        raise ValueError(_("must be at most %(max_length)s characters", max_length=max_length))
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise ValueError(_("must not contain control characters"))
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
    cleaned = for_signature(checked)
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
        raise ValueError(_("must be a string"))
    value = value.strip()
    if len(value) > 200:
        raise ValueError(_("must be at most 200 characters"))
    if any(ord(c) < 32 for c in value):
        raise ValueError(_("must not contain control characters"))
    return value


def fill(template: str, values: dict[str, str], *, html: bool = False) -> str:
    """The template with its placeholders replaced; values are escaped in HTML."""

    def replace(match: re.Match) -> str:
        value = values.get(match.group(1), "")
        return html_lib.escape(value, quote=True) if html else value

    return _TOKEN.sub(replace, template)
