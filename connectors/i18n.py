"""``N_``: marks an English text for the translation catalogues without translating it here.

``connectors`` and ``plugins`` import no Flask, so they cannot know the reader's language: they
mark their sentences with ``N_`` (``pybabel extract -k N_`` finds them) and the web translates
the stored English text when it shows it (``webapp.i18n.translate_stored``).
"""

from __future__ import annotations

#: Marked texts with ``{name}`` fields: a text built from one with ``str.format`` is matched
#: against them when shown, and rebuilt from the translated template (webapp.i18n).
TEMPLATES: list[str] = []


def N_(text: str) -> str:  # noqa: N802  (the conventional name of the gettext no-op marker)
    """Return ``text`` unchanged; extraction picks it up as a msgid.

    Mark module-level constants: a template is known to the web once its module is imported.
    """
    if "{" in text and text not in TEMPLATES:
        TEMPLATES.append(text)
    return text
