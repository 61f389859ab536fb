"""What a combined receipt costs to render and weighs, beside the same receipt rendered naively.

Ours is ``pdf.render.render_receipt``: Noto Sans CJK SC cut down to the document's characters
before layout (``pdf.fonts``), the QR code as a small PNG. The ceiling, "naive", is the same
receipt's HTML (same template, same data) through WeasyPrint's one-liner,
``HTML(string=...).write_pdf(stylesheets=[documents.css])``, with the whole Noto Sans CJK collection
as fontconfig finds it and the QR code as segno's inline SVG, as the receipt had it before issue 8:
the 320 KB of the issue. Beside both, "fonts only" is ``render_receipt(system_fonts=True)``, our
renderer with the whole font: the share of the gain that is the fonts'.

Each round renders all three once, in turn, so that they see the same load (the machines are
shared); after one unrecorded warm-up of each, at least :data:`RUNS` rounds (``BENCH_RUNS`` raises
it). Wall-clock medians with their min–max, and CPU-time medians, steadier on a busy machine.
Every render must give the same bytes, and pypdf must find the company name, the case number and
the step names in the text. Then the same for the acceptance slip, and the size of a receipt whose
company name has characters from the far end of the font (龘, 𡘙 in CJK Extension B, 𰻞 in G).

Records benchmark "receipts": figures "render time" and "size" (the receipt), "slip render time"
and "slip size". Run: ``.venv/bin/python bench/receipt.py``.
"""
from __future__ import annotations

import copy
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import segno
from markupsafe import Markup
from pypdf import PdfReader
from weasyprint import CSS, HTML

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import RUNS, Figures, Result, record, timed  # noqa: E402

from pdf import render  # noqa: E402

SCRIPT = "receipt"
ROUNDS = max(RUNS, 11)  # a round is cheap; more rounds steady the medians on a busy machine
SIZE_TARGET = 150_000  # bytes: "< 150 KB", read as the stricter kilo of 1 000
URL = "https://hall.example.gov.cn/verify/IktCMjAyNjExMjMtMDAwMSI.QJ0f3oL3nqs-8n0b2zXTDd1wHcA"
TRACK = "https://hall.example.gov.cn/track?case_no=KB20261123-0001&code=BXWRUCBAGD"


def _step(key, zh, en, department, department_zh, clerk, start, done, outputs, used):
    return {"step": key, "title": {"zh": zh, "en": en}, "department": department,
            "department_name": {"zh": department_zh, "en": department}, "state": "done", "clerk": clerk,
            "started_at": f"2026-11-23T{start}:00+08:00", "done_at": f"2026-11-23T{done}:00+08:00",
            "outputs": outputs, "sla": {"target_minutes": 60, "used_minutes": used, "deadline": None,
                                        "status": "on_track", "paused": False, "on_time": True}}


COMMON = {
    "hall": "广州市白云区政务服务中心", "case_no": "KB20261123-0001",
    "definition": {"name": "company_opening", "version": 1, "title": {"zh": "企业开办", "en": "Company opening"}},
    "company": {"name": "广州市白云区示例科技有限公司", "kind": "llc", "registered_capital": "1000000.00",
                "address": "广州市白云区云城西路888号"},
    "legal_representative": {"name": "张三", "id_number": "4401**********1231"},
    "channel": "window", "submitted_at": "2026-11-23T09:01:00+08:00", "accepted_at": "2026-11-23T09:05:00+08:00",
    "sla": {"target_minutes": 210, "used_minutes": 185.0, "deadline": "2026-11-23T14:05:00+08:00",
            "status": "warning", "paused": False, "on_time": True},
    "calendar_confirmed": True,
}
RECEIPT = {
    **COMMON, "document": "receipt", "completed_at": "2026-11-23T13:40:00+08:00",
    "uscc": "91440111MAAY4CL12Y", "licence_no": "440111077777868",
    "steps": [
        _step("registration", "设立登记", "Business registration", "market_regulation", "市场监管", "王小明",
              "09:05", "10:15", {"uscc": "91440111MAAY4CL12Y", "licence_no": "440111077777868"}, 70),
        _step("seal", "刻章备案", "Seal engraving and filing", "public_security", "公安", "李警官", "10:15", "11:00",
              {"filing_no": "GA347712782", "seals": ["company", "finance", "invoice"]}, 45),
        _step("tax", "涉税信息确认", "Tax confirmation", "taxation", "税务", "陈税务", "10:15", "11:05",
              {"taxpayer_type": "small_scale", "ukey_issued": True}, 50),
        _step("invoice", "首次申领发票", "First invoices", "taxation", "税务", "陈税务", "11:05", "13:40",
              {"invoice_kind": "digital_ordinary", "quantity": 25}, 45),
        _step("bank", "银行开户", "Bank account", "bank", "银行", "赵经理", "10:15", "11:30",
              {"bank_name": "中国工商银行广州白云支行", "account_no": "360255564639800631"}, 75),
    ],
}
SLIP = {
    **COMMON, "document": "slip", "state": "in_progress", "tracking_code": "BXWRUCBAGD", "accepted_by": "刘窗口",
    "shareholders": [{"name": "张三", "id_number": "4401**********1231", "contribution": "600000.00"},
                     {"name": "李四", "id_number": "4401**********4568", "contribution": "400000.00"}],
    "requested_steps": [{"step": s["step"], "title": s["title"], "department": s["department"],
                         "department_name": s["department_name"]} for s in RECEIPT["steps"]],
    "missing_materials": ["住所使用证明（租赁合同）"],
}
RARE = copy.deepcopy(RECEIPT)
RARE["company"]["name"] = "广州市龘𡘙𰻞科技有限公司"


def qr_svg(url: str) -> Markup:
    """The QR code as the receipt drew it before issue 8: segno's inline SVG."""
    return Markup(segno.make(url, error="m").svg_inline(omitsize=True, border=4, dark="#000"))


def naive(template: str, data: dict, **context) -> bytes:
    """The same receipt through WeasyPrint's one-liner: whole system fonts, the QR code as SVG."""
    html = render.environment().get_template(template).render(
        data=data, issued_at=data.get("completed_at") or data["accepted_at"], qr_image=qr_svg, **context)
    stylesheet = CSS(string=(render.TEMPLATES / "documents.css").read_text() + ".verify .qr svg { display: block; "
                     "width: 30mm; height: 30mm }", base_url=render.TEMPLATES.as_uri() + "/")
    return HTML(string=html, base_url=render.TEMPLATES.as_uri() + "/", url_fetcher=render.TemplateFetcher()).write_pdf(
        stylesheets=[stylesheet])


def interleaved(renders: dict[str, Callable[[], bytes]], rounds: int = ROUNDS) -> dict[str, dict]:
    """Render each once unrecorded, then ``rounds`` times in turn; wall and CPU times, and the bytes."""
    outputs = {name: render_() for name, render_ in renders.items()}
    wall = {name: [] for name in renders}
    cpu = {name: [] for name in renders}
    for _ in range(rounds):
        for name, render_ in renders.items():
            began = time.process_time()
            seconds = timed(lambda: _same(render_(), outputs[name], name))
            cpu[name].append((time.process_time() - began) * 1e3)
            wall[name].append(seconds * 1e3)
    return {name: {"wall": Figures(wall[name], "ms"), "cpu": Figures(cpu[name], "ms"), "pdf": outputs[name]}
            for name in renders}


def _same(pdf: bytes, first: bytes, name: str) -> None:
    assert pdf == first, f"{name}: renders differ"


def fonts_of(pdf: bytes) -> dict[str, int]:
    """The embedded fonts and what each weighs in the file (compressed, as stored)."""
    found = {}
    for font in PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]["/Font"].values():
        font = font.get_object()
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        stream = (descriptor.get("/FontFile3") or descriptor.get("/FontFile2")).get_object()
        found[str(font["/BaseFont"])[1:]] = len(stream._data)
    return found


def check_text(pdf: bytes, expected: list[str]) -> None:
    """pypdf finds every expected string in the text layer."""
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).replace("\n", "")
    missing = [item for item in expected if item not in text]
    assert not missing, f"not in the text: {missing}"


def kib(size: int) -> float:
    return size / 1024


def measure(label: str, template: str, data: dict, ours: Callable[[], bytes], fonts_only: Callable[[], bytes],
            expected: list[str], time_figure: str, size_figure: str, **context) -> None:
    runs = interleaved({"ours": ours, "naive": lambda: naive(template, data, **context), "fonts only": fonts_only})
    for name, run in runs.items():
        check_text(run["pdf"], expected)
        print(f"{label}, {name}: {run['wall']}, CPU median {run['cpu'].median:.0f} ms, {kib(len(run['pdf'])):.1f} KiB")
        for font, weight in fonts_of(run["pdf"]).items():
            print(f"    font {font}: {kib(weight):.1f} KiB")
    mine, ceiling, whole = runs["ours"], runs["naive"], runs["fonts only"]
    ratio = mine["wall"].median / ceiling["wall"].median
    cpu_ratio = mine["cpu"].median / ceiling["cpu"].median
    fonts_ratio = mine["wall"].median / whole["wall"].median
    size, naive_size = len(mine["pdf"]), len(ceiling["pdf"])
    print(f"{label}: ours / naive {ratio:.2f} (CPU {cpu_ratio:.2f}); ours / fonts only {fonts_ratio:.2f} "
          f"(CPU {mine['cpu'].median / whole['cpu'].median:.2f}); size {size / naive_size:.0%} of naive")
    notes = (f"{len(mine['wall'].values)} interleaved rounds; CPU medians {mine['cpu'].median:.0f} vs "
             f"{ceiling['cpu'].median:.0f} ms ({cpu_ratio:.2f}); our renderer with the whole font (fonts only) "
             f"{whole['wall'].median:.0f} ms wall, {whole['cpu'].median:.0f} ms CPU, {kib(len(whole['pdf'])):.0f} KiB")
    record(SCRIPT, Result(benchmark="receipts", figure=time_figure, measured=mine["wall"].as_dict(),
                          ceiling=ceiling["wall"].as_dict(), target="≤ ½ the naive time",
                          met=mine["wall"].median <= ceiling["wall"].median / 2, notes=notes,
                          extra={"cpu_ms": {name: run["cpu"].as_dict() for name, run in runs.items()},
                                 "fonts_only_ms": whole["wall"].as_dict(), "ratio": ratio, "cpu_ratio": cpu_ratio,
                                 "fonts_only_ratio": fonts_ratio}))
    record(SCRIPT, Result(benchmark="receipts", figure=size_figure,
                          measured=Figures([kib(size)] * len(mine["wall"].values), "KiB").as_dict(),
                          ceiling=Figures([kib(naive_size)] * len(ceiling["wall"].values), "KiB").as_dict(),
                          target="< 150 KB", met=size < SIZE_TARGET,
                          notes=f"{size:,} bytes against {naive_size:,}; the same bytes on every render; fonts "
                                + ", ".join(f"{n} {kib(w):.1f} KiB" for n, w in fonts_of(mine["pdf"]).items()),
                          extra={"bytes": size, "naive_bytes": naive_size, "fonts_only_bytes": len(whole["pdf"])}))


if __name__ == "__main__":
    steps = [step["title"]["zh"] for step in RECEIPT["steps"]]
    measure("receipt", "receipt.html", {**RECEIPT, "verify_url": URL},
            lambda: render.render_receipt(RECEIPT, URL), lambda: render.render_receipt(RECEIPT, URL, system_fonts=True),
            [RECEIPT["company"]["name"], RECEIPT["case_no"], *steps], "render time", "size", verify_url=URL)
    measure("slip", "slip.html", {**SLIP, "track_url": TRACK},
            lambda: render.render_slip(SLIP, TRACK), lambda: render.render_slip(SLIP, TRACK, system_fonts=True),
            [SLIP["company"]["name"], SLIP["case_no"], SLIP["tracking_code"], *steps],
            "slip render time", "slip size", track_url=TRACK)
    rare = render.render_receipt(RARE, URL)
    check_text(rare, [RARE["company"]["name"], RARE["case_no"], *steps])
    print(f"receipt with {RARE['company']['name']}: {kib(len(rare)):.1f} KiB, text found; fonts "
          + ", ".join(f"{name} {kib(weight):.1f} KiB" for name, weight in fonts_of(rare).items()))
