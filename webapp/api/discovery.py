"""``POST /api/v1/discover``: suggest server settings for an email address (runs as a job)."""

from __future__ import annotations

from flask import g, jsonify

from .. import job_status
from ..errors import Invalid
from . import _json, bp, token_required


def start_discovery(body: dict, owner, *, api: bool = True) -> dict:
    """Validate ``{"email"}`` (422 naming the field), stash the address, enqueue the job."""
    from connectors.discovery import validate_email

    from ..discovery_jobs import discover_settings, job_timeout, stash_request
    from ..queue import get_redis

    unknown = sorted(set(body) - {"email"})
    fields = {key: "unknown field" for key in unknown}
    email = body.get("email")
    if not isinstance(email, str):
        fields["email"] = "Enter an email address, e.g. someone@example.com."
    else:
        try:
            email = validate_email(email)[0]
        except ValueError as exc:
            fields["email"] = str(exc)
    if fields:
        raise Invalid(fields)
    key = stash_request(get_redis(), email)
    return job_status.enqueue(
        discover_settings, key, owner=owner, kind="discovery", timeout=job_timeout(), api=api
    )


@bp.post("/discover")
@token_required
def discover():
    body = start_discovery(_json(), g.api_user)
    return jsonify(body), 202, {"Location": body["status_url"]}
