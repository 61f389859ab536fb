"""The HTML pages, one blueprint per audience (window, agency, supervisor, admin, public)."""

from flask_babel import get_locale


def page_lang() -> str:
    """The page's language as titles in the definitions key it: ``"zh"`` or ``"en"`` (Babel's choice)."""
    return "en" if get_locale().language == "en" else "zh"
