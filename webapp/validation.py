"""Field validators shared by forms and the API: each returns a clean value or raises ValueError."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _

from connectors.i18n import N_
from connectors.settings import Protocol, Security, ServerParseError, normalize_host, parse_server


def text(value: Any, *, required: bool = True, max_length: int = 255) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError(_("This field is required."))
        return None
    if not isinstance(value, str):
        raise ValueError(_("must be a string"))
    value = value.strip()
    if len(value) > max_length:
        raise ValueError(_("must be at most %(max_length)s characters", max_length=max_length))
    if any(ord(c) < 32 for c in value):
        raise ValueError(_("must not contain control characters"))
    return value


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(_("must be true or false"))


def email(value: str) -> str:
    """A syntactically valid address; internal domains (``corp.local``) are fine, unlike on the Internet."""
    local, at, domain = value.strip().rpartition("@")
    if not at or not local:
        raise ValueError(_("An email address must have an @-sign, e.g. name@example.com."))
    if not domain.strip():  # not "The part after the @-sign () is …" with empty brackets
        raise ValueError(_("An email address needs a domain after the @-sign, e.g. name@example.com."))
    if "@" in local:
        raise ValueError(_("Not an email address: it must have exactly one @."))
    try:
        normalized_local = validate_email(local + "@example.com", check_deliverability=False).local_part
        domain = normalize_host(domain)
    except EmailNotValidError as exc:
        raise ValueError(email_error(str(exc), local)) from None
    except ServerParseError:
        raise ValueError(_("The part after the @-sign (%(domain)s) is not a valid domain name.", domain=domain)) from None
    if ":" in domain:
        raise ValueError(_("An IP address is not a valid email domain here."))
    return f"{normalized_local}@{domain}"


#: email-validator's sentences (English only, about the part before the @ since the domain is
#: checked by normalize_host) -> ours, in the reader's language; the first match wins.  The
#: library's detail that helps to fix the address (which characters) is kept.
EMAIL_ERRORS: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(pattern, re.I), template)
    for pattern, template in (
        (r"two periods in a row", N_("Not an email address: the part before the @ has two dots in a row.")),
        (r"cannot start with a period", N_("Not an email address: the part before the @ cannot start with a dot.")),
        (r"period immediately before the @", N_("Not an email address: the part before the @ cannot end with a dot.")),
        (
            r"invalid characters (?:in quotes )?before the @-sign: (?P<chars>.+)\.$",
            N_("Not an email address: these characters are not allowed before the @: %(chars)s."),
        ),
        (
            r"unsafe characters: (?P<chars>.+)\.$",
            N_("Not an email address: it contains invisible or control characters (%(chars)s)."),
        ),
        (
            r"quoting the part before",
            N_("Not an email address here: quotation marks around the part before the @ are not accepted."),
        ),
        (
            r"display name|angle bracket|anything after the email address",
            N_("Not an email address: give the address alone (name@example.com), without a name or <angle brackets>."),
        ),
        (r"too long", N_("Not an email address: the part before the @ is too long (at most 64 characters).")),
        (
            r"internationali[sz]ed characters before",
            N_("Not an email address here: the part before the @ may use only ASCII letters, digits and punctuation."),
        ),
    )
)


def email_error(library_message: str, local: str) -> str:
    """Our sentence for an email-validator error about ``local``, never the library's English."""
    for pattern, template in EMAIL_ERRORS:
        found = pattern.search(library_message)
        if found:
            chars = found.groupdict().get("chars")
            return _(template, chars=_characters(chars)) if chars else _(template)
    return _("Not an email address: the part before the @ (%(local)s) is not valid.", local=local)


def _characters(detail: str) -> str:
    """The library's list (``',', SPACE, U+0009``): quoted characters kept, names made codes."""
    out = []
    for item in detail.split(", "):
        try:
            char = unicodedata.lookup(item) if item[:1] not in "'\"" and not item.startswith("U+") else None
        except KeyError:
            char = None
        if char == " ":
            out.append(_("space"))
        elif char is not None:
            out.append(f"U+{ord(char):04X}")
        else:
            out.append(item)
    return ", ".join(out)


def endpoint_from_json(protocol: str, value: Any, errors: dict[str, str]) -> dict | None:
    """Validate ``{"host","port","security"}`` for the API; errors go in ``errors`` as ``imap.port`` etc."""
    if not isinstance(value, dict):
        errors[protocol] = _('must be an object {"host", "port", "security"}')
        return None
    out: dict[str, Any] = {}
    host = value.get("host")
    try:
        if not isinstance(host, str) or not host.strip():
            raise ServerParseError("This field is required.")
        if ":" in host.strip("[]") and not host.startswith("[") and host.count(":") == 1:
            raise ServerParseError("Give the port in the port field, not in the host.")
        out["host"] = normalize_host(host)
    except ServerParseError as exc:
        errors[f"{protocol}.host"] = str(exc)
    port = value.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        errors[f"{protocol}.port"] = _("must be a whole number between 1 and 65535")
    else:
        out["port"] = port
    try:
        out["security"] = Security.parse(value.get("security", "")).value
    except ValueError as exc:
        errors[f"{protocol}.security"] = str(exc)
    unknown = set(value) - {"host", "port", "security"}
    if unknown:
        errors[f"{protocol}.{sorted(unknown)[0]}"] = _("unknown field")
    return out if len(out) == 3 else None


def endpoint_from_form(
    protocol: str,
    server_text: str,
    security: str | None,
    field: str,
    security_field: str,
    errors: dict[str, str],
) -> dict | None:
    """Validate a ``host:port`` text and a security choice from an HTML form.

    A scheme in the text (``ssl://``) must agree with the chosen security when
    one was chosen; it decides it when none was.  ``security="auto"`` is the
    SMTP form's "Use TLS" box: TLS on port 465, STARTTLS on 25 and 587.
    """
    try:
        parsed = parse_server(server_text, Protocol(protocol))
    except ServerParseError as exc:
        errors[field] = str(exc)
        return None
    chosen: Security | None = None
    if security == "auto":
        # "Use TLS" ticked: implicit TLS on the SMTPS port (or when the text says so), STARTTLS elsewhere.
        if parsed.implied_security:
            chosen = parsed.implied_security
        else:
            chosen = Security.TLS if parsed.port in (465, 993, 995) else Security.STARTTLS
    elif security:
        try:
            chosen = Security.parse(security)
        except ValueError as exc:
            errors[security_field] = str(exc)
            return None
    if parsed.implied_security and chosen and parsed.implied_security != chosen:
        errors[field] = (
            _("%(split)s:// means %(value)s, but %(value2)s is selected.", split=server_text.split('://')[0], value=parsed.implied_security.value.upper(), value2=chosen.value.upper())
        )
        return None
    final = chosen or parsed.implied_security
    if final is None:
        errors[security_field] = _("Choose the connection protection.")
        return None
    return {"host": parsed.host, "port": parsed.port, "security": final.value}


#: The largest id either database holds: PostgreSQL's ``integer`` (SQLite's is 2**63-1).
MAX_ID = 2**31 - 1


def record_id(value: Any) -> int:
    """A database id from a JSON body or a query string: a whole number from 1 to :data:`MAX_ID`.

    A larger number would reach the database and fail there (SQLite overflows past 2**63,
    PostgreSQL's ``integer`` past 2**31), so it is refused here, where the field is known.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValueError(_("must be an id (a whole number from 1 to %(MAX_ID)s)", MAX_ID=MAX_ID))
    return value


def is_id(value: Any) -> bool:
    """Whether ``value`` is an int the database can look up (see :func:`record_id`)."""
    return not isinstance(value, bool) and isinstance(value, int) and 1 <= value <= MAX_ID


#: A rule's answer for "store nothing for this field" (an empty password on edit keeps the stored one).
SKIP = object()


@dataclass(frozen=True)
class Rule:
    """How one field of a body is cleaned, for :func:`clean_fields`.

    ``clean(value, context)`` returns the value to store, :data:`SKIP`, or raises ValueError
    with the field's sentence; a DomainError (Forbidden) stops the whole request.
    ``on_create``: the field is also checked when absent from a body that creates the row
    (so a missing required field gets its sentence); ``default`` is the value it then gets.
    """

    clean: Callable[[Any, Any], Any]
    on_create: bool = False
    default: Any = None


def clean_fields(
    table: dict[str, Rule], data: dict, context: Any, creating: bool, out: dict, errors: dict[str, str]
) -> None:
    """Clean every field of ``table`` that ``data`` holds (in table order) into ``out``/``errors``."""
    for key, rule in table.items():
        if key not in data and not (creating and rule.on_create):
            continue
        try:
            value = rule.clean(data.get(key, rule.default), context)
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        if value is not SKIP:
            out[key] = value
