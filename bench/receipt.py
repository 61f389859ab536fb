"""What a combined receipt costs to render, and how big it is.

Renders the receipt of a typical finished case (five steps, the data ``workflow.receipts`` builds)
once cold (fonts looked up, stylesheet parsed), then RUNS more times, and prints the median and the
min–max render time (wall clock, and the median CPU time, steadier on a busy machine), the file size
and what the embedded font subsets weigh; then the same for an acceptance slip. Run: ``.venv/bin/python bench/receipt.py``.
"""
import io
import statistics
import time
from collections.abc import Callable

from pypdf import PdfReader

from pdf.render import render_receipt, render_slip

RUNS = 9
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


def measure(label: str, render: Callable[[], bytes]) -> None:
    began = time.perf_counter()
    pdf = render()
    cold_ms = (time.perf_counter() - began) * 1e3
    samples, cpu = [], []
    for _ in range(RUNS):
        began, began_cpu = time.perf_counter(), time.process_time()
        assert render() == pdf, "renders differ"
        samples.append((time.perf_counter() - began) * 1e3)
        cpu.append((time.process_time() - began_cpu) * 1e3)
    reader = PdfReader(io.BytesIO(pdf))
    fonts = {}
    for font in reader.pages[0]["/Resources"]["/Font"].values():
        font = font.get_object()
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        stream = (descriptor.get("/FontFile3") or descriptor["/FontFile2"]).get_object()
        fonts[str(font["/BaseFont"])[1:]] = len(stream._data)  # as stored: compressed
    print(f"{label}: median {statistics.median(samples):.0f} ms (min {min(samples):.0f}, max {max(samples):.0f}; "
          f"{RUNS} runs; first render {cold_ms:.0f} ms; CPU median {statistics.median(cpu):.0f} ms), "
          f"{len(pdf) / 1024:.0f} KiB, {len(reader.pages)} page(s)")
    for name, size in fonts.items():
        print(f"  font {name}: {size / 1024:.0f} KiB embedded")


if __name__ == "__main__":
    measure("receipt", lambda: render_receipt(RECEIPT, URL))
    measure("slip   ", lambda: render_slip(SLIP, TRACK))
