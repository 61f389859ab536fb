"""Noto Sans CJK SC cut down to one document's characters, before WeasyPrint lays it out.

WeasyPrint embeds a subset of every font it uses, but keeps the glyph ids (the PDF's text draws
them): its subset of Noto Sans CJK SC still has a slot for each of the 63 000 glyphs up to the
highest one used, with their advance widths — 770 KB per weight before compression, 140–170 KB
after. Subsetting the 19 MB faces, copying them out of HarfBuzz and compressing the result took
about 110 ms of a receipt's 300 here.

So each render first cuts each weight down to the characters of its own document, glyph ids
renumbered from 0, and hands that font to WeasyPrint through ``@font-face``. Pango then shapes with
a font of a few hundred glyphs, and WeasyPrint's subset of it is what the page uses and no more.
Every character of the document is in the cut, whatever it is (there is no fixed list of common
characters). A character the face lacks falls back to the system's fonts, as it always did, through
the next families of ``font-family``; with none (𠀀, U+20000, is in no font of a stock Debian) it
is drawn as the empty box, and stays in the text layer.

The cut is HarfBuzz's subsetter, the library WeasyPrint itself subsets with (libharfbuzz-subset):
about 3 ms per weight from a face mapped once per process. fontTools' subsetter takes 1.7 s for the
same cut of a CJK collection. The layout tables (GSUB, GPOS) are kept: without them the glyphs and
the kerning change, so Pango shapes exactly as with the whole font.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cffi import FFI
from weasyprint.text import ffi as weasyprint_ffi
from weasyprint.text.fonts import FontConfiguration

FAMILY = "Noto Sans CJK SC"
# The family name the cut fonts go by in documents.css: apart from the system's, so a render without
# them (bench/receipt.py's baseline) simply uses the next family, the whole system font.
SUBSET_FAMILY = "Noto Sans CJK SC Subset"
WEIGHTS = {"normal": "regular", "bold": "bold"}  # CSS font-weight → fontconfig weight name

_ffi = FFI()
_ffi.cdef("""
    typedef struct hb_blob_t hb_blob_t;
    typedef struct hb_face_t hb_face_t;
    typedef struct hb_set_t hb_set_t;
    typedef struct hb_subset_input_t hb_subset_input_t;
    typedef uint32_t hb_codepoint_t;
    typedef uint32_t hb_tag_t;
    hb_blob_t *hb_blob_create_from_file_or_fail (const char *file_name);
    void hb_blob_destroy (hb_blob_t *blob);
    const char *hb_blob_get_data (hb_blob_t *blob, unsigned int *length);
    hb_face_t *hb_face_create (hb_blob_t *blob, unsigned int index);
    unsigned int hb_face_get_glyph_count (const hb_face_t *face);
    hb_blob_t *hb_face_reference_blob (hb_face_t *face);
    void hb_face_destroy (hb_face_t *face);
    void hb_set_add (hb_set_t *set, hb_codepoint_t codepoint);
    hb_tag_t hb_tag_from_string (const char *str, int len);
    hb_subset_input_t *hb_subset_input_create_or_fail (void);
    void hb_subset_input_destroy (hb_subset_input_t *input);
    hb_set_t *hb_subset_input_unicode_set (hb_subset_input_t *input);
    hb_set_t *hb_subset_input_set (hb_subset_input_t *input, int set_type);
    void hb_subset_input_set_flags (hb_subset_input_t *input, unsigned value);
    hb_face_t *hb_subset_or_fail (hb_face_t *source, const hb_subset_input_t *input);
    hb_set_t *hb_set_create (void);
    void hb_set_destroy (hb_set_t *set);
    unsigned int hb_set_next_many (const hb_set_t *set, hb_codepoint_t codepoint, hb_codepoint_t *out,
                                   unsigned int size);
    void hb_face_collect_unicodes (hb_face_t *face, hb_set_t *out);

    typedef struct _FcPattern FcPattern;
    typedef struct _FcConfig FcConfig;
    typedef int FcBool;
    typedef enum { FcMatchPattern, FcMatchFont, FcMatchScan } FcMatchKind;
    typedef enum { FcResultMatch, FcResultNoMatch, FcResultTypeMismatch, FcResultNoId,
                   FcResultOutOfMemory } FcResult;
    FcPattern *FcNameParse (const unsigned char *name);
    FcBool FcConfigSubstitute (FcConfig *config, FcPattern *p, FcMatchKind kind);
    void FcDefaultSubstitute (FcPattern *pattern);
    FcPattern *FcFontMatch (FcConfig *config, FcPattern *p, FcResult *result);
    FcResult FcPatternGetString (const FcPattern *p, const char *object, int n, unsigned char **s);
    FcResult FcPatternGetInteger (const FcPattern *p, const char *object, int n, int *i);
    void FcPatternDestroy (FcPattern *p);
    FcConfig *FcConfigCreate (void);
    void FcConfigDestroy (FcConfig *config);

    typedef struct _PangoFcFontMap PangoFcFontMap;
    void pango_fc_font_map_set_config (PangoFcFontMap *fcfontmap, FcConfig *fcconfig);
""")
# hb_subset_sets_t and hb_subset_flags_t (hb-subset.h, stable since HarfBuzz 2.9).
_SETS_DROP_TABLE_TAG = 3
_FLAGS_NO_HINTING = 0x1
_FLAGS_DESUBROUTINIZE = 0x4
# Tables nothing reads from the cut: vertical metrics and bitmaps (the documents are horizontal,
# in outlines). WeasyPrint drops GSUB and GPOS itself when it embeds the font; Pango needs them.
_DROPPED_TABLES = (b"BASE", b"DSIG", b"EBDT", b"EBLC", b"EBSC", b"JSTF", b"LTSH", b"PCLT", b"SVG ",
                   b"VORG", b"vhea", b"vmtx")


def _dlopen(*names: str):
    for name in names:
        try:
            return _ffi.dlopen(name)
        except OSError:
            continue
    return None


# The same libraries WeasyPrint loads (weasyprint/text/ffi.py), under their usual names.
_harfbuzz = _dlopen("libharfbuzz.so.0", "harfbuzz", "harfbuzz-0.0", "libharfbuzz.0.dylib",
                    "libharfbuzz-0.dll")
_subset = _dlopen("libharfbuzz-subset.so.0", "harfbuzz-subset", "harfbuzz-subset-0.0",
                  "libharfbuzz-subset.0.dylib", "libharfbuzz-subset-0.dll")
_fontconfig = _dlopen("libfontconfig.so.1", "fontconfig-1", "fontconfig", "libfontconfig-1.dll",
                      "libfontconfig.1.dylib")
_pangoft2 = _dlopen("libpangoft2-1.0.so.0", "pangoft2-1.0-0", "pangoft2-1.0", "libpangoft2-1.0-0.dll",
                    "libpangoft2-1.0.dylib")


@dataclass(frozen=True)
class Face:
    """One face of a font file (a collection holds several) as fontconfig found it."""

    path: str
    index: int


def find_face(weight: str) -> Face | None:
    """Where fontconfig finds Noto Sans CJK SC in ``weight``, or None when it is not installed."""
    if _fontconfig is None:
        return None
    pattern = _ffi.gc(_fontconfig.FcNameParse(f"{FAMILY}:weight={weight}".encode()), _fontconfig.FcPatternDestroy)
    _fontconfig.FcConfigSubstitute(_ffi.NULL, pattern, _fontconfig.FcMatchPattern)
    _fontconfig.FcDefaultSubstitute(pattern)
    result = _ffi.new("FcResult *")
    match = _fontconfig.FcFontMatch(_ffi.NULL, pattern, result)
    if match == _ffi.NULL:
        return None
    match = _ffi.gc(match, _fontconfig.FcPatternDestroy)
    string, integer = _ffi.new("unsigned char **"), _ffi.new("int *")
    if _fontconfig.FcPatternGetString(match, b"family", 0, string) != _fontconfig.FcResultMatch:
        return None
    if _ffi.string(string[0]).decode() != FAMILY:
        return None  # fontconfig's nearest substitute, not the font itself
    _fontconfig.FcPatternGetString(match, b"file", 0, string)
    path = _ffi.string(string[0]).decode()
    _fontconfig.FcPatternGetInteger(match, b"index", 0, integer)
    return Face(path, integer[0])


@lru_cache(maxsize=None)
def _hb_face(weight: str):
    """The HarfBuzz face of ``weight``, mapped from its file once per process (None if missing)."""
    if _harfbuzz is None or _subset is None or (face := find_face(weight)) is None:
        return None
    blob = _harfbuzz.hb_blob_create_from_file_or_fail(face.path.encode())
    if blob == _ffi.NULL:
        return None
    hb_face = _harfbuzz.hb_face_create(blob, face.index)
    _harfbuzz.hb_blob_destroy(blob)  # the face holds its own reference
    if _harfbuzz.hb_face_get_glyph_count(hb_face) == 0:
        _harfbuzz.hb_face_destroy(hb_face)
        return None
    return hb_face


def cut(weight: str, text: str) -> bytes | None:
    """Noto Sans CJK SC in ``weight`` ("regular" or "bold") with the glyphs of ``text`` only.

    An OpenType (CFF) font whose glyph ids run from 0; the characters of ``text`` that the face
    lacks are simply not in it. None when the face or HarfBuzz's subsetter is not there: the
    document then falls back to the system font.
    """
    face = _hb_face(weight)
    if face is None:
        return None
    subset_input = _ffi.gc(_subset.hb_subset_input_create_or_fail(), _subset.hb_subset_input_destroy)
    if subset_input == _ffi.NULL:
        return None
    unicodes = _subset.hb_subset_input_unicode_set(subset_input)
    for codepoint in sorted(set(map(ord, text))):
        _harfbuzz.hb_set_add(unicodes, codepoint)
    dropped = _subset.hb_subset_input_set(subset_input, _SETS_DROP_TABLE_TAG)
    for tag in _DROPPED_TABLES:
        _harfbuzz.hb_set_add(dropped, _harfbuzz.hb_tag_from_string(tag, 4))
    _subset.hb_subset_input_set_flags(subset_input, _FLAGS_NO_HINTING | _FLAGS_DESUBROUTINIZE)
    result = _subset.hb_subset_or_fail(face, subset_input)
    if result == _ffi.NULL:
        return None
    try:
        blob = _harfbuzz.hb_face_reference_blob(result)
        length = _ffi.new("unsigned int *")
        data = _harfbuzz.hb_blob_get_data(blob, length)
        font = _ffi.unpack(data, length[0]) if data != _ffi.NULL and length[0] else None
        _harfbuzz.hb_blob_destroy(blob)
        return font
    finally:
        _harfbuzz.hb_face_destroy(result)


@lru_cache(maxsize=None)
def coverage(weight: str) -> frozenset[int]:
    """The code points Noto Sans CJK SC has in ``weight`` (empty when it is not installed)."""
    face = _hb_face(weight)
    if face is None:
        return frozenset()
    unicodes = _ffi.gc(_harfbuzz.hb_set_create(), _harfbuzz.hb_set_destroy)
    _harfbuzz.hb_face_collect_unicodes(face, unicodes)
    found, batch, last = [], _ffi.new("hb_codepoint_t[4096]"), 0xFFFFFFFF  # HB_SET_VALUE_INVALID
    while count := _harfbuzz.hb_set_next_many(unicodes, last, batch, 4096):
        found.extend(batch[0:count])
        last = found[-1]
    return frozenset(found)


@dataclass(frozen=True)
class DocumentFonts:
    """The fonts cut for one document: CSS font-weight → OpenType font, and whether they suffice."""

    fonts: dict[str, bytes]
    complete: bool  # every character of the document is in both weights

    def font_configuration(self) -> FontConfiguration:
        """Where WeasyPrint looks fonts up for this document.

        Only the document's own fonts when they hold every character; otherwise the system's
        fonts too, so that a character Noto Sans CJK SC lacks falls back as it always did.
        """
        return OwnFontsConfiguration() if self.complete and _pangoft2 is not None else FontConfiguration()


def for_document(text: str) -> DocumentFonts | None:
    """Both weights of Noto Sans CJK SC cut down to ``text``, or None if one cannot be made."""
    fonts = {}
    for css_weight, weight in WEIGHTS.items():
        if (font := cut(weight, text)) is None:
            return None
        fonts[css_weight] = font
    # Control characters (the markup's line breaks among them) are never drawn, whatever the font.
    wanted = {codepoint for codepoint in map(ord, set(text)) if not _is_control(codepoint)}
    return DocumentFonts(fonts, all(wanted <= coverage(weight) for weight in WEIGHTS.values()))


def _is_control(codepoint: int) -> bool:
    return codepoint < 0x20 or 0x7F <= codepoint < 0xA0


def _address(pointer, ffi) -> int:
    return int(ffi.cast("uintptr_t", pointer))


class OwnFontsConfiguration(FontConfiguration):
    """A font configuration that knows only the fonts its documents' ``@font-face`` rules add.

    With WeasyPrint's own, fontconfig and Pango rank every installed font (68 faces of Noto CJK,
    DejaVu and Liberation here) for each font description of the page: about 10 ms of a receipt's
    render, spent on fonts a document that brings its own never draws. Used only when the
    document's fonts hold all of its characters.
    """

    def __init__(self):
        super().__init__()
        # WeasyPrint's pointers come from its own cffi instance: hand them over by address.
        config = _fontconfig.FcConfigCreate()
        font_map = _ffi.cast("PangoFcFontMap *", _address(self.font_map, weasyprint_ffi.ffi))
        _pangoft2.pango_fc_font_map_set_config(font_map, config)
        _fontconfig.FcConfigDestroy(config)  # the font map keeps its own reference
        self._config = weasyprint_ffi.ffi.cast("FcConfig *", _address(config, _ffi))
