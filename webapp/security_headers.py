"""Browser hardening on every answer: the security headers, ProxyFix, and ``Secure`` cookies.

Every answer (pages, API, static files, errors, redirects) carries a strict
Content-Security-Policy: scripts and styles only from Mailroom's own files, so
an injected ``<script>``, ``onclick=`` or ``style=`` does nothing.  The
templates keep no inline script or style for that reason (a test scans them).

Behind a TLS proxy the app sees plain HTTP from the proxy; with
``MAILROOM_TRUSTED_PROXIES=n`` werkzeug's ProxyFix believes the last ``n``
``X-Forwarded-*`` hops, so ``request.is_secure`` tells the truth and the
session cookie gets ``Secure`` and the answer HSTS.  Without trusted proxies
those headers are ignored: a client cannot claim HTTPS by sending them.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

#: The policy of every answer: own scripts, styles, images (and data: images), nothing framed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

#: A document shown inside a console page's sandboxed frame (the signature preview): no script at
#: all, no requests but images; inline style because signatures carry ``style=`` attributes (nh3
#: keeps a filtered list of properties), https images because a signature's logo is one.
FRAMED_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()"
    ),
}

_FORM_TARGETS = "mailroom.form_action_targets"

#: One year; the proxy may send a longer one with includeSubDomains/preload if the domain allows it.
HSTS = "max-age=31536000"


def init_app(app: Flask) -> None:
    """Trust ``TRUSTED_PROXIES`` proxies, make cookies Secure over HTTPS, add the headers."""
    hops = app.config.get("TRUSTED_PROXIES") or 0
    if hops > 0:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    app.session_interface = HttpsAwareSessionInterface()
    app.after_request(add_security_headers)


def allow_form_targets(origins: Iterable[str]) -> None:
    """Let this answer's forms lead to ``origins`` as well as to Mailroom itself.

    Browsers apply ``form-action`` to every redirect that follows a form post, so the
    connect form, whose answer redirects to an OAuth2 provider's consent page, names
    the configured providers' origins (``https://host[:port]``) in its own policy.
    """
    request.environ[_FORM_TARGETS] = " ".join(origins)  # per request (g can outlive one in tests)


def add_security_headers(response: Response) -> Response:
    """The headers of :data:`HEADERS` (a view may set its own first), HSTS over HTTPS only."""
    targets = request.environ.get(_FORM_TARGETS)
    if targets:
        response.headers.setdefault(
            "Content-Security-Policy", CSP.replace("form-action 'self'", f"form-action 'self' {targets}")
        )
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def framed(response: Response) -> Response:
    """Mark ``response`` as a document for a same-origin sandboxed frame (see :data:`FRAMED_CSP`)."""
    response.headers["Content-Security-Policy"] = FRAMED_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def cookies_secure(app: Flask) -> bool:
    """Secure when configured (``MAILROOM_SECURE_COOKIES=1``) or when this request came over HTTPS."""
    if app.config.get("SESSION_COOKIE_SECURE"):
        return True
    return has_request_context() and request.is_secure


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session whose cookie is ``Secure`` whenever the request is HTTPS.

    Flask's own setting is all or nothing; per request, ``make run`` on
    http://127.0.0.1:5000 keeps working while the same install behind a TLS
    proxy sends its session cookie over HTTPS only.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return cookies_secure(app)
