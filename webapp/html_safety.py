"""Which HTML Mailroom lets through: one module, three named policies, all built on nh3.

Every piece of HTML that reaches a page, an API answer or an outgoing message
passes :func:`clean` with one of the policies below; nothing else in Mailroom
sanitizes HTML.  (Turning HTML into plain text, ``connectors.mime_text.html_to_text``
and ``connectors.outgoing.html_to_text``, is conversion, not sanitizing: its
output is text and is escaped wherever it is shown.)

* :data:`MESSAGE_DISPLAY`: received mail shown in the message view and the
  messages API.  The strictest: a short list of layout tags, no attributes but
  a link's ``href`` (http, https, mailto only; relative links dropped), no
  ``style``, no images (a remote image tells the sender the mail was read), and
  the content of script, style, head, iframe, svg, ... removed with the tag.
* :data:`SIGNATURE`: the company's central signature template and each
  mailbox's own HTML signature.  nh3's tags plus ``style`` limited to layout
  properties (nothing that loads a URL), images only from ``https://``.
* :data:`OUTGOING`: the HTML body a person writes in compose or the sending
  API.  nh3's defaults (no script or style content, no event attributes, no
  ``javascript:`` URLs) plus ``style`` limited to the signature's layout
  properties, so a signature in a reply's or forward's draft keeps its look;
  images are the sender's choice and stay (the recipient's mail program decides
  whether to load them).

Every policy removes ``<script>`` with its content, every ``on*=`` attribute
and every ``javascript:`` URL; ``tests/test_html_safety.py`` checks each policy
against those and against ``style`` and remote images.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import nh3
from markupsafe import Markup, escape

AttributeFilter = Callable[[str, str, str], str | None]


@dataclass(frozen=True)
class Policy:
    """One allow-list for :func:`nh3.clean`; ``None`` fields keep nh3's default."""

    name: str
    tags: frozenset[str] | None = None
    attributes: dict[str, frozenset[str]] | None = None
    url_schemes: frozenset[str] | None = None
    clean_content_tags: frozenset[str] = frozenset({"script", "style"})
    link_rel: str | None = "noopener noreferrer"
    style_properties: frozenset[str] | None = None
    attribute_filter: AttributeFilter | None = None
    relative_urls: bool = True
    #: Strip leading and trailing white space from the result.
    strip: bool = False

    def clean(self, markup: str | None) -> str:
        """``markup`` with everything this policy does not allow removed ('' for None or '')."""
        if not markup:
            return ""
        kwargs: dict = {"clean_content_tags": set(self.clean_content_tags), "link_rel": self.link_rel}
        if self.tags is not None:
            kwargs["tags"] = set(self.tags)
        if self.attributes is not None:
            kwargs["attributes"] = {tag: set(names) for tag, names in self.attributes.items()}
        if self.url_schemes is not None:
            kwargs["url_schemes"] = set(self.url_schemes)
        if self.style_properties is not None:
            kwargs["filter_style_properties"] = set(self.style_properties)
        if self.attribute_filter is not None:
            kwargs["attribute_filter"] = self.attribute_filter
        if not self.relative_urls:
            kwargs["url_relative"] = "deny"
        cleaned = nh3.clean(markup, **kwargs)
        return cleaned.strip() if self.strip else cleaned


# -- message display ------------------------------------------------------------------------

_DISPLAY_TAGS = frozenset(
    {
        "p", "div", "br", "span", "b", "strong", "i", "em", "u", "ul", "ol", "li", "blockquote", "pre",
        "code", "table", "thead", "tbody", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "a",
    }
)  # fmt: skip
# Removed with everything inside them, not just unwrapped.
_DISPLAY_DROPPED = frozenset(
    {"script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg", "math"}
)

MESSAGE_DISPLAY = Policy(
    name="message display",
    tags=_DISPLAY_TAGS,
    attributes={"*": frozenset(), "a": frozenset({"href"})},  # "*": not even nh3's generic lang/title
    url_schemes=frozenset({"http", "https", "mailto"}),
    clean_content_tags=_DISPLAY_DROPPED,
    link_rel="noopener noreferrer nofollow",
    relative_urls=False,
)


# -- signatures -----------------------------------------------------------------------------


def _https_images_only(tag: str, attr: str, value: str) -> str | None:
    """Images only from https:// (a plain http image leaks the reader's address unencrypted)."""
    if tag == "img" and attr == "src" and not value.strip().lower().startswith("https://"):
        return None
    return value


def _attributes_with(*extra: str) -> dict[str, frozenset[str]]:
    """nh3's allowed attributes, plus ``extra`` on every allowed tag."""
    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    for tag in nh3.ALLOWED_TAGS:
        attributes.setdefault(tag, set()).update(extra)
    return {tag: frozenset(names) for tag, names in attributes.items()}


# Inline CSS that lays out a signature; nothing that loads a URL (background, …) or moves the page.
_SIGNATURE_STYLE = frozenset(
    {
        "color", "font", "font-family", "font-size", "font-style", "font-weight", "line-height",
        "text-align", "text-decoration", "vertical-align",
        "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
        "padding", "padding-top", "padding-bottom", "padding-left", "padding-right",
        "border", "border-top", "border-bottom", "border-left", "border-right", "border-collapse",
        "width", "height", "max-width",
    }
)  # fmt: skip

SIGNATURE = Policy(
    name="signature",
    attributes=_attributes_with("style", "title"),
    url_schemes=frozenset({"http", "https", "mailto", "tel"}),
    style_properties=_SIGNATURE_STYLE,
    attribute_filter=_https_images_only,
    strip=True,
)


# -- outgoing mail --------------------------------------------------------------------------

OUTGOING = Policy(
    name="outgoing mail",
    # A reply's or forward's draft holds the sender's signature: its layout survives, under the
    # same CSS properties a signature may use (nothing that loads a URL or moves the page).
    attributes=_attributes_with("style"),
    style_properties=_SIGNATURE_STYLE,
)

POLICIES: dict[str, Policy] = {p.name: p for p in (MESSAGE_DISPLAY, SIGNATURE, OUTGOING)}


def clean(markup: str | None, policy: Policy) -> str:
    """``markup`` made safe under ``policy`` (one of :data:`POLICIES`)."""
    return policy.clean(markup)


def for_display(markup: str | None) -> str:
    """Received mail as the message view and the API may show it (:data:`MESSAGE_DISPLAY`)."""
    return MESSAGE_DISPLAY.clean(markup)


def for_signature(markup: str | None) -> str:
    """A signature or the central signature template (:data:`SIGNATURE`)."""
    return SIGNATURE.clean(markup)


def for_outgoing(markup: str | None) -> str:
    """The HTML body of a message Mailroom sends (:data:`OUTGOING`)."""
    return OUTGOING.clean(markup)


#: An https:// address in plain text; a sentence's closing ".", ",", ")" … is not part of it.
_URL = re.compile(r"https://[^\s<>\"']*[^\s<>\"'.,;:)]")


def link_urls(text: str | None) -> Markup:
    """Plain text (a plugin's hint) escaped, with its https:// addresses as links: plugins stay
    free of HTML, and the page still lets a person click the address a hint names."""
    escaped = str(escape(text or ""))
    return Markup(
        _URL.sub(
            lambda m: f'<a href="{m.group(0)}" target="_blank" rel="noopener noreferrer">{m.group(0)}</a>',
            escaped,
        )
    )
