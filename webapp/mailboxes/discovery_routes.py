"""The connect form's "Find settings": start discovery for the typed address; the page polls the job."""

from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user, login_required

from ..errors import DomainError
from ..jobs import discovery
from . import bp
from .jobs import accepted


@bp.route("/discover", methods=["POST"])
@login_required
def discover():
    """JSON ``{"email"}`` in, 202 ``{"job_id","status_url"}`` out (CSRF token in the X-CSRFToken header)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify({"error": 'Send a JSON object {"email": ...}.'}), 400
    try:
        return accepted(discovery.start(body, current_user))
    except DomainError as exc:
        return jsonify(exc.as_dict()), exc.status
