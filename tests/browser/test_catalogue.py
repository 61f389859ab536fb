"""Every message the pages use has a Chinese translation (Chinese is the default language)."""
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
METHODS = [("api/**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}


def test_every_message_is_translated_into_chinese():
    with (ROOT / "translations/zh/LC_MESSAGES/messages.po").open("rb") as po:
        catalog = read_po(po)
    used = {message if isinstance(message, str) else message[0]
            for _file, _line, message, _comments, _context in extract_from_dir(ROOT, METHODS, keywords=KEYWORDS)}
    assert len(used) > 50  # the extraction found the pages
    untranslated = sorted(m for m in used if not catalog.get(m) or not catalog.get(m).string)
    assert untranslated == []
