"""Receipts and slips as PDF/A-3b: plain data through a Jinja template, laid out by WeasyPrint.

No Flask and no ORM here: the caller hands over the dicts built by ``workflow.receipts`` and the
absolute URLs to print. The text is set in Noto Sans CJK SC (a system font found through
fontconfig), cut down to the document's own characters before layout (``pdf.fonts``) and embedded,
so a receipt stays small, renders fast and its text can be searched.

Nothing a template receives can make WeasyPrint fetch anything: templates autoescape, and the URL
fetcher serves only ``data:`` URIs, the stylesheets, images and fonts inside ``templates/pdf/`` and
the fonts cut for the document being rendered (Indico's receipts do the same with their own static
files); tests/security/test_pdf_fetch.py renders documents whose every text is markup that fetches.

The output is deterministic: the PDF's dates come from the data (the case's own timestamps), the
file identifier is WeasyPrint's MD5 of the content (``pdf_identifier=True`` for PDF/A), font subset
prefixes are hashes too, the fonts cut for a document depend on its characters only, and the JSON
attachment is dumped with sorted keys.
"""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from urllib.parse import unquote, urlsplit

import segno
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from weasyprint import CSS, HTML, Attachment
from weasyprint.css import ColorProfile
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from pdf import fonts

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "pdf"
PDF_VARIANT = "pdf/a-3b"
OUTPUT_INTENT = "--srgb"

COMPANY_KINDS = {"llc": "有限责任公司", "sole_proprietorship": "个人独资企业", "partnership": "合伙企业",
                 "branch": "分公司"}
CHANNELS = {"window": "窗口", "online": "网上", "mail": "邮寄"}
# Output fields of the contract's steps, in print order; a step a hall adds shows its raw keys.
OUTPUT_LABELS = {
    "uscc": "统一社会信用代码", "licence_no": "营业执照编号",
    "filing_no": "备案号", "seals": "印章",
    "taxpayer_type": "纳税人类型", "ukey_issued": "税务UKey",
    "invoice_kind": "发票种类", "quantity": "数量",
    "bank_name": "开户银行", "account_no": "账号",
}
VALUE_LABELS = {
    "seals": {"company": "公章", "finance": "财务专用章", "invoice": "发票专用章", "contract": "合同专用章",
              "legal_representative": "法定代表人名章", "customs": "报关专用章"},
    "taxpayer_type": {"small_scale": "小规模纳税人", "general": "一般纳税人"},
    "invoice_kind": {"digital_ordinary": "数电普通发票", "digital_special": "数电专用发票",
                     "paper_ordinary": "纸质普通发票", "paper_special": "纸质专用发票"},
    "ukey_issued": {True: "已发放", False: "未发放"},
}
STEP_STATES = {"done": "已办结", "skipped": "未申请", "refused": "不予办理", "waiting": "待办",
               "ready": "待办", "in_progress": "办理中"}


# What a document may load from templates/pdf/: stylesheets, images and fonts, never the templates.
RESOURCE_SUFFIXES = frozenset({".css", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".otf", ".ttf", ".woff", ".woff2"})


class TemplateFetcher(URLFetcher):
    """Serve ``data:`` URIs, the stylesheets, images and fonts inside templates/pdf/, and ``fonts``;
    refuse every other URL (other files, other hosts' files, http, https, ftp …).

    ``fonts`` maps ``font:<name>`` URLs to the fonts cut for the document being rendered.
    """

    def __init__(self, fonts: dict[str, bytes] | None = None):
        # A refused URL is skipped (WeasyPrint logs it) and the document still renders: with
        # fail_on_errors, WeasyPrint turns the refusal into FatalURLFetchingError, a BaseException
        # that no Flask or gunicorn handler catches. Legitimate resources are checked by the tests
        # that no rendering logs a warning (tests/pdf, tests/security/test_pdf_fetch.py).
        super().__init__(allowed_protocols={"data", "file"})
        self._fonts = fonts or {}

    def fetch(self, url, headers=None):
        if url.startswith("font:"):
            if url not in self._fonts:
                raise ValueError(f"refused: {url} is not a font of this document")
            return URLFetcherResponse(url, self._fonts[url])
        if url.startswith("file:"):
            parts = urlsplit(url)
            path = Path(unquote(parts.path)).resolve()  # resolved: no way out by .. or a symbolic link
            if parts.netloc not in ("", "localhost") or not path.is_relative_to(TEMPLATES) \
                    or path.suffix.lower() not in RESOURCE_SUFFIXES or not path.is_file():
                raise ValueError(f"refused: {url} is not a stylesheet, image or font of templates/pdf/")
            return URLFetcherResponse(url, path.read_bytes())
        if not url.startswith("data:"):
            raise ValueError(f"refused: {url.split(':', 1)[0]} URLs are not fetched")
        return super().fetch(url, headers)


def qr_image(url: str) -> Markup:
    """The URL as a QR code: a PNG of one pixel per module, drawn without smoothing.

    WeasyPrint parses and draws an SVG's path in Python, which cost about 10 ms of a receipt's
    render for the code's 700 segments; the 49 × 49 image costs next to nothing and, drawn 30 mm
    wide with ``image-rendering: pixelated`` (``/Interpolate false``), keeps sharp modules.
    """
    uri = segno.make(url, error="m").png_data_uri(scale=1, border=4)
    return Markup('<img src="{}" alt="{}">').format(uri, url)


def hall_datetime(value: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return datetime.fromisoformat(value).strftime(fmt) if value else "—"


def whole_minutes(minutes: float) -> int:
    """Minutes rounded half up (185.5 → 186), the same way wherever a receipt shows them."""
    return int(Decimal(str(minutes)).quantize(Decimal(1), ROUND_HALF_UP))


def duration(minutes: float | None) -> str:
    """Working minutes as 小时/分钟, rounded to the minute."""
    if minutes is None:
        return "—"
    hours, rest = divmod(whole_minutes(minutes), 60)
    return f"{hours} 小时 {rest} 分钟" if hours else f"{rest} 分钟"


def working_days(minutes: int) -> str:
    """A target in working days (7 working hours a day), as the promise is worded: 0.5 个工作日."""
    return f"{Decimal(minutes) / 420:.2f}".rstrip("0").rstrip(".")


def money(value: str) -> str:
    return f"{Decimal(value):,.2f}"


def output_lines(outputs: dict) -> list[tuple[str, str]]:
    """A step's outputs as (label, text) pairs: known fields first, in the contract's order."""
    known = [key for key in OUTPUT_LABELS if key in outputs]
    lines = []
    for key in known + sorted(k for k in outputs if k not in OUTPUT_LABELS):
        value, labels = outputs[key], VALUE_LABELS.get(key, {})
        if isinstance(value, list):
            text = "、".join(str(labels.get(v, v)) for v in value)
        elif isinstance(value, bool):
            text = labels.get(value, "是" if value else "否")
        else:
            text = str(labels.get(value, value))
        lines.append((OUTPUT_LABELS.get(key, key), text))
    return lines


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(hall_datetime=hall_datetime, duration=duration, whole_minutes=whole_minutes,
                       working_days=working_days, money=money)
    env.globals.update(company_kinds=COMPANY_KINDS, channels=CHANNELS, step_states=STEP_STATES,
                       output_lines=output_lines, qr_image=qr_image)
    return env


@lru_cache(maxsize=1)
def _resources() -> tuple[CSS, bytes, str]:
    """The parsed stylesheet, the sRGB profile and the characters every document may print.

    Shared by every render (all read-only). The characters are the stylesheet's own (generated
    content such as "第 页 共") and printable ASCII (what autoescaping turns into entities).
    The fetcher and the font configuration hold per-render state (the document's fonts), so
    each render gets its own.
    """
    css_text = (TEMPLATES / "documents.css").read_text()
    css = CSS(string=css_text, base_url=TEMPLATES.as_uri() + "/", url_fetcher=TemplateFetcher())
    always = "".join(sorted(set(css_text) | set(map(chr, range(0x20, 0x7F)))))
    return css, files("weasyprint.pdf").joinpath("sRGB2014.icc").read_bytes(), always


def _document_fonts(text: str) -> tuple[FontConfiguration, list[CSS]]:
    """The font configuration and the ``@font-face`` rules for a document of ``text``.

    The rules name Noto Sans CJK SC cut down to ``text`` (``pdf.fonts``). Without the font or
    HarfBuzz's subsetter there are none, and documents.css falls back to the system's whole font:
    the same document, only slower and bigger.
    """
    cut = fonts.for_document(text)
    if cut is None:
        return FontConfiguration(), []
    font_config = cut.font_configuration()
    faces = {f"font:{weight}": font for weight, font in cut.fonts.items()}
    rules = "".join(f'@font-face {{ font-family: "{fonts.SUBSET_FAMILY}"; font-weight: {weight}; '
                    f'src: url("font:{weight}") format("opentype") }}\n' for weight in cut.fonts)
    return font_config, [CSS(string=rules, url_fetcher=TemplateFetcher(faces), font_config=font_config)]


def _output_intent(icc: bytes) -> dict:
    """PDF/A's sRGB output intent, as a profile of its own for each render.

    WeasyPrint's default (``output_intent="srgb"``) opens its bundled ICC file and never closes it,
    a ResourceWarning on every render; passing the same profile under another name (the
    ``output_intent`` option of WeasyPrint PR #2778) avoids that. A fresh profile per render,
    because littlecms re-serialises a profile that was written once, and the bytes would change.
    """
    return {OUTPUT_INTENT: ColorProfile(io.BytesIO(icc), "sRGB2014.icc", "relative-colorimetric",
                                        (["r"], ["g"], ["b"]))}


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(timezone.utc)


def _render(template: str, data: dict, attachment_name: str, issued_at: str, *, system_fonts: bool,
            **context) -> bytes:
    css, icc, always = _resources()
    html = environment().get_template(template).render(data=data, issued_at=issued_at, **context)
    # The markup's characters are a superset of its text: every character the page can show.
    font_config, font_faces = (FontConfiguration(), []) if system_fonts else _document_fonts(html + always)
    payload = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2).encode()
    # Attachment dates default to now(): give the document's own, so the bytes do not change.
    attachment = Attachment(string=payload, name=attachment_name, description="Case data (JSON)",
                            created=_utc(issued_at), modified=_utc(issued_at), relationship="Data")
    document = HTML(string=html, base_url=TEMPLATES.as_uri() + "/", url_fetcher=TemplateFetcher()).render(
        stylesheets=[*font_faces, css], font_config=font_config, color_profiles=_output_intent(icc),
        output_intent=OUTPUT_INTENT)
    return document.write_pdf(pdf_variant=PDF_VARIANT, output_intent=OUTPUT_INTENT, attachments=[attachment])


def render_receipt(data: dict, verify_url: str, *, system_fonts: bool = False) -> bytes:
    """The combined receipt (办结回执) of a finished case, with the QR code of ``verify_url``.

    ``system_fonts`` embeds Noto Sans CJK SC as WeasyPrint finds it through fontconfig, without
    cutting it down first: the same document, slower and bigger (bench/receipt.py's baseline).
    """
    return _render("receipt.html", {**data, "verify_url": verify_url}, f"{data['case_no']}-receipt.json",
                   data["completed_at"], system_fonts=system_fonts, verify_url=verify_url)


def render_slip(data: dict, track_url: str, *, system_fonts: bool = False) -> bytes:
    """The acceptance slip (受理通知书) with the QR code of the applicant's tracking page."""
    return _render("slip.html", {**data, "track_url": track_url}, f"{data['case_no']}-slip.json",
                   data["accepted_at"], system_fonts=system_fonts, track_url=track_url)
