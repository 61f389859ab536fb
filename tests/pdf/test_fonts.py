"""The fonts of receipts and slips: cut down to each document, small, every character kept."""
from __future__ import annotations

import io
import re

import pypdfium2
import pytest
from fontTools.ttLib import TTFont
from PIL import ImageChops
from pypdf import PdfReader

from pdf import fonts, render
from workflow import receipts

TYPICAL_LIMIT = 150_000  # bytes; the whole system font made 330 000
# 龘 (U+9F98), 𡘙 (U+21619, CJK Extension B) and 𰻞 (U+30EDE, Extension G) are in Noto Sans CJK SC,
# near the end of its 65 000 glyphs.
RARE_NAME = "广州市龘𡘙𰻞科技有限公司"
NOWHERE = "𠀀"  # U+20000: in no font of a stock Debian


def receipt_pdf(factory, **company) -> bytes:
    case = factory.case("ready", **({"company": _company(**company)} if company else {}))
    data = receipts.receipt_data(factory.session, case)
    return render.render_receipt(data, f"https://hall.example.gov.cn/verify/{case.case_no}")


def slip_pdf(factory, **company) -> bytes:
    case = factory.case("in_progress", **({"company": _company(**company)} if company else {}))
    data = receipts.slip_data(factory.session, case)
    return render.render_slip(data, f"https://hall.example.gov.cn/track?case_no={case.case_no}&code=X")


def _company(**overrides) -> dict:
    return {"name": "广州市白云区示例科技有限公司", "kind": "llc", "registered_capital": "1000000.00",
            "address": "广州市白云区云城西路888号", "business_scope": "软件开发", **overrides}


def text_of(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).replace("\n", "")


def fonts_of(pdf: bytes) -> dict[str, dict]:
    reader = PdfReader(io.BytesIO(pdf))
    return {str(font.get_object()["/BaseFont"]): font.get_object()
            for page in reader.pages for font in page["/Resources"]["/Font"].values()}


def unicode_map(font) -> set[str]:
    """The characters a font's ToUnicode CMap gives its glyphs."""
    cmap = font["/ToUnicode"].get_object().get_data().decode()
    return {bytes.fromhex(target).decode("utf-16-be") for target in re.findall(r"<[0-9a-f]{4}> <([0-9a-f]+)>", cmap)}


def embedded(font) -> TTFont:
    descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
    return TTFont(io.BytesIO((descriptor.get("/FontFile3") or descriptor["/FontFile2"]).get_object().get_data()))


@pytest.mark.parametrize("document", [receipt_pdf, slip_pdf])
def test_a_typical_document_is_small_and_its_fonts_hold_only_its_glyphs(factory, document):
    pdf = document(factory)
    assert len(pdf) < TYPICAL_LIMIT
    for name, font in fonts_of(pdf).items():
        assert "Noto-Sans-CJK-SC-Subset" in name
        # The glyphs the page draws, and no empty slots up to glyph 63 000.
        assert len(embedded(font).getGlyphOrder()) < 600, name


@pytest.mark.parametrize("document", [receipt_pdf, slip_pdf])
def test_rare_characters_are_drawn_from_the_font_and_extractable(factory, document):
    pdf = document(factory, name=RARE_NAME, address="广州市白云区齉鼻路8号")
    text = text_of(pdf)
    assert RARE_NAME in text and "齉鼻路" in text
    assert len(pdf) < TYPICAL_LIMIT
    drawn = set().union(*(unicode_map(font) for font in fonts_of(pdf).values()))
    assert set("龘𡘙𰻞齉") <= drawn
    assert all("Noto-Sans-CJK-SC-Subset" in name for name in fonts_of(pdf))


def test_receipt_text_has_the_case_and_every_step(factory):
    case = factory.case("ready", company=_company(name=RARE_NAME))
    pdf = render.render_receipt(receipts.receipt_data(factory.session, case), "https://hall.example.gov.cn/v/x")
    text = text_of(pdf)
    for expected in (RARE_NAME, case.case_no, "设立登记", "刻章备案", "涉税信息确认", "首次申领发票", "银行开户"):
        assert expected in text


def test_a_character_the_font_lacks_falls_back_to_the_system_fonts(factory):
    pdf = receipt_pdf(factory, name="广州市♛科技有限公司")  # U+265B: DejaVu has it, Noto Sans CJK not
    assert "广州市♛科技有限公司" in text_of(pdf)
    assert any("DejaVu" in name for name in fonts_of(pdf))
    assert len(pdf) < TYPICAL_LIMIT


def test_a_character_no_font_has_is_kept_in_the_text(factory):
    """Drawn as the empty box, as before; still in the text, as PDFium (and poppler) read it.

    WeasyPrint then encodes that font through an embedded CMap, which pypdf does not read.
    """
    pdf = receipt_pdf(factory, name=f"广州市{NOWHERE}科技有限公司")
    document = pypdfium2.PdfDocument(pdf)
    try:
        text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    assert f"广州市{NOWHERE}科技有限公司" in text


def test_the_cut_fonts_draw_the_page_the_whole_font_draws(factory):
    case = factory.case("ready")
    data = receipts.receipt_data(factory.session, case)
    url = f"https://hall.example.gov.cn/verify/{case.case_no}"
    cut, whole = render.render_receipt(data, url), render.render_receipt(data, url, system_fonts=True)
    assert len(cut) < len(whole) / 4
    assert text_of(cut) == text_of(whole)
    images = []
    for pdf in (cut, whole):
        document = pypdfium2.PdfDocument(pdf)
        try:
            images.append(document[0].render(scale=1.5).to_pil().convert("L"))
        finally:
            document.close()
    assert ImageChops.difference(*images).getbbox() is None


# pdf.fonts on its own


def test_the_cut_holds_every_character_of_the_text_the_face_has():
    text = "企业开办 ABC 123 " + RARE_NAME + "ÀΩЖ한カ"
    cut = fonts.for_document(text)
    assert cut is not None and cut.complete
    for weight, font in cut.fonts.items():
        face = TTFont(io.BytesIO(font))
        assert set(map(ord, text)) <= set(face.getBestCmap()), weight
        assert len(face.getGlyphOrder()) < 100  # renumbered from 0, not 65 000 slots
        assert "GSUB" in face and "GPOS" in face and "vmtx" not in face


def test_a_text_with_a_character_the_face_lacks_is_not_complete():
    assert fonts.for_document("企业\n\t" + RARE_NAME).complete  # control characters are never drawn
    cut = fonts.for_document("企业" + NOWHERE)
    assert not cut.complete
    assert type(cut.font_configuration()) is not fonts.OwnFontsConfiguration
    assert type(fonts.for_document("企业").font_configuration()) is fonts.OwnFontsConfiguration


def test_the_cut_depends_on_the_characters_only():
    assert fonts.for_document("龘企业ab") == fonts.for_document("ba业企龘龘")


def test_the_fetcher_serves_only_the_fonts_it_was_given():
    fetcher = render.TemplateFetcher({"font:normal": b"OTTO..."})
    assert fetcher.fetch("font:normal").read() == b"OTTO..."
    for url in ("font:bold", "font:../../etc/passwd"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    with pytest.raises(ValueError):
        render.TemplateFetcher().fetch("font:normal")
