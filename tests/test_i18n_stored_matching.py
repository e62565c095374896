"""A stored English text is matched against the templates without backtracking (webapp.i18n._Shape).

The values inside a stored line are anyone's text: an email's subject and sender in a filter's
line, a server's answer in "not moved … the server refused (…)".  Matched with ``(.*?)`` regular
expressions, a value that begins like a template and repeats its separators ("Synced folders: "
then "; new: , flag changes: , removed: (" over and over) made one line take minutes to show in
Italian or Polish: the email log page, for every reader of it, hung on it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.i18n_catalogues import compile_catalogues
from webapp import i18n

ROOT = Path(__file__).resolve().parent.parent

#: A filter's line whose "server refused" reason is a hostile server's answer of 4,000 characters.
_SCRIPT = textwrap.dedent(
    """
    from webapp import create_app, i18n
    from webapp.jobs.filter_actions import WORDS

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x"})
    reason = "Synced folders: " + "; new: , flag changes: , removed: (" * 115
    refused = WORDS["not_moved"].format(folder="Archive", reason=reason)
    line = WORDS["line"].format(names="R", subject="Hi", sender="a@example.test", folder="INBOX", actions=refused)
    with app.test_request_context("/", headers={"Accept-Language": "it"}):
        shown = i18n.translate_stored(line)
    assert shown.startswith("Filtro R") and reason in shown, shown[:200]
    print("shown")
    """
)


def test_a_hostile_value_in_a_stored_line_does_not_hang_its_translation():
    compile_catalogues()
    # The old matcher needed far more than an hour for this line; the new one a few milliseconds.
    # The generous limit is only there so a regression fails instead of hanging the suite.
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0 and "shown" in done.stdout, done.stderr[-2000:]


def test_each_field_is_read_as_the_regular_expression_read_it():
    """The first place each following piece fits; the last piece ends the text; one field used
    twice must hold the same value; the forms' "No" variant of a template saying None."""
    (shape,) = i18n._compile("Filter {names} on {subject} from {sender}.")
    assert shape.match("Filter R on a from b from c.") == {"names": "R", "subject": "a", "sender": "b from c"}
    assert shape.match("Filter R on a from b") is None  # the last piece must end the text
    assert shape.match("Filter R from b.") is None  # a piece missing
    (twice,) = i18n._compile("{a} and {a}.")
    assert twice.match("x and x.") == {"a": "x"} and twice.match("x and y.") is None
    plain, variant = i18n._compile("Verify certificate: None ({why})")
    assert plain.match("Verify certificate: None (off)") == {"why": "off"}
    assert variant.match('Verify certificate: "No" (off)') == {"why": "off"}
    (whole,) = i18n._compile("Nothing to fill in.")
    assert whole.match("Nothing to fill in.") == {} and whole.match("Nothing to fill in. Really.") is None
