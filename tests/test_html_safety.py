"""webapp.html_safety: each named policy against scripts, event attributes, javascript: URLs, style and images."""

from __future__ import annotations

import pytest

from webapp import html_safety
from webapp.html_safety import MESSAGE_DISPLAY, OUTGOING, SIGNATURE

ALL = [MESSAGE_DISPLAY, SIGNATURE, OUTGOING]

ATTACKS = [
    "<p>Hi<script>alert(1)</script></p>",
    "<p>Hi<SCRIPT type='text/javascript'>alert(1)</SCRIPT></p>",
    '<p onclick="alert(1)">Hi</p>',
    '<img src="https://cdn.example/x.png" onerror="alert(1)">',
    '<a href="javascript:alert(1)">Hi</a>',
    '<a href=" JaVaScRiPt:alert(1)">Hi</a>',
    "<svg onload=alert(1)><circle/></svg>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<form action="https://evil.example"><input name=q></form>',
]


@pytest.mark.parametrize("policy", ALL, ids=lambda p: p.name)
@pytest.mark.parametrize("markup", ATTACKS)
def test_no_policy_lets_script_through(policy, markup):
    cleaned = policy.clean(markup).lower()
    assert "<script" not in cleaned and "alert" not in cleaned and "javascript" not in cleaned
    assert " on" not in cleaned.replace(" only", "")  # no onclick=, onerror=, onload=
    assert "<iframe" not in cleaned and "<form" not in cleaned and "<input" not in cleaned


@pytest.mark.parametrize("policy", ALL, ids=lambda p: p.name)
def test_every_policy_keeps_text_and_simple_markup(policy):
    assert (
        policy.clean("<p>Grüße <b>aus</b> Köln &amp; 1 &lt; 2</p>")
        == "<p>Grüße <b>aus</b> Köln &amp; 1 &lt; 2</p>"
    )
    assert policy.clean("") == "" and policy.clean(None) == ""


def test_named_policies_are_the_module_functions():
    markup = '<p style="color: red">x<img src="https://cdn.example/a.png"></p>'
    assert html_safety.for_display(markup) == html_safety.clean(
        markup, html_safety.POLICIES["message display"]
    )
    assert html_safety.for_signature(markup) == html_safety.clean(markup, html_safety.POLICIES["signature"])
    assert html_safety.for_outgoing(markup) == html_safety.clean(
        markup, html_safety.POLICIES["outgoing mail"]
    )


# -- message display: received mail -----------------------------------------------------------


def test_display_drops_style_images_and_every_attribute_but_a_safe_href():
    cleaned = MESSAGE_DISPLAY.clean(
        '<div style="color:red" class="x" id="y" title="t"><style>p{color:red}</style>'
        '<img src="https://tracker.example/p.gif"><img src="http://tracker.example/p.gif">'
        '<a href="https://example.com/a?b=1&c=2" target="_blank">ok</a><a href="/relative">rel</a>'
        '<a href="mailto:ann@example.com">mail</a><a href="data:text/html,x">data</a></div>'
    )
    assert "style" not in cleaned and "color" not in cleaned and "class" not in cleaned
    assert "<img" not in cleaned and "tracker" not in cleaned
    assert "title" not in cleaned and "target" not in cleaned and "id=" not in cleaned
    assert 'href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow"' in cleaned
    assert 'href="mailto:ann@example.com"' in cleaned
    assert "/relative" not in cleaned and "data:" not in cleaned


def test_display_removes_the_content_of_head_title_and_embedded_documents():
    cleaned = MESSAGE_DISPLAY.clean(
        "<html><head><title>T</title></head><body><h1>Title</h1><noscript>ns</noscript>"
        "<object>obj</object><template>tpl</template><math>m</math><p>Body</p></body></html>"
    )
    assert cleaned == "<h1>Title</h1><p>Body</p>"


# -- signature ----------------------------------------------------------------------------------


def test_signature_keeps_layout_style_but_not_style_that_loads_or_moves():
    cleaned = SIGNATURE.clean(
        '<p style="color: red; font-weight: bold; position: fixed; background: url(https://t.example/x)">Hi</p>'
    )
    assert "color:red" in cleaned.replace(" ", "") and "font-weight" in cleaned
    assert "position" not in cleaned and "url(" not in cleaned and "background" not in cleaned


def test_signature_images_only_from_https():
    cleaned = SIGNATURE.clean(
        '<img src="https://cdn.example/logo.png" alt="logo"><img src="http://cdn.example/p.png">'
        '<img src="data:image/png;base64,AAAA"><img src="logo.png">'
    )
    assert '<img src="https://cdn.example/logo.png" alt="logo">' in cleaned
    assert (
        "http://" not in cleaned
        and "data:" not in cleaned
        and 'logo.png"' not in cleaned.replace("https://cdn.example/logo.png", "")
    )


def test_signature_drops_style_elements_and_strips_outer_space():
    assert SIGNATURE.clean("  <style>p{}</style><b>Ann</b>  ") == "<b>Ann</b>"
    assert 'href="tel:+391234"' in SIGNATURE.clean('<a href="tel:+391234">call</a>')


# -- outgoing mail ------------------------------------------------------------------------------


def test_outgoing_keeps_the_signature_s_layout_style_only_and_drops_style_elements():
    """A reply's draft carries the signature: its inline layout stays, under the signature's CSS
    properties; what loads a URL or moves the page goes, and so do <style> elements."""
    cleaned = OUTGOING.clean(
        '<p style="color:red; position:fixed; background:url(https://t.example/x)">Hi</p>'
        "<style>p{color:red}</style>"
    )
    assert cleaned == '<p style="color:red">Hi</p>'


def test_outgoing_keeps_images_the_sender_chose_and_safe_links():
    cleaned = OUTGOING.clean(
        '<img src="https://cdn.example/chart.png" alt="chart"><a href="https://example.com">site</a>'
    )
    assert '<img src="https://cdn.example/chart.png" alt="chart">' in cleaned
    assert '<a href="https://example.com" rel="noopener noreferrer">site</a>' in cleaned
