"""The combined receipt, the acceptance slip and the public verification of a printed receipt."""
from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pypdfium2
import pytest
import time_machine
import zxingcpp
from pypdf import PdfReader

from pdf.render import TEMPLATES, TemplateFetcher
from workflow import operations as ops, receipts
from workflow.clock import utcnow

SECRET = "test"  # the tests' app SECRET_KEY (tests/conftest.py)
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def staff(client, factory):
    """GET as a window clerk."""
    headers = {"Authorization": f"Bearer {factory.token()}"}
    return lambda path, **kwargs: client.get(f"/api/v1{path}", headers=headers, **kwargs)


def receipt_of(staff, case):
    response = staff(f"/cases/{case.case_no}/receipt.pdf")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def qr_codes(pdf: bytes) -> list[str]:
    """The texts of the QR codes found on the first page, rendered at 144 dpi."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=2).to_pil()
    finally:
        document.close()
    return [code.text for code in zxingcpp.read_barcodes(image) if code.format == zxingcpp.BarcodeFormat.QRCode]


def verify_url(case_no: str) -> str:
    return f"http://localhost/verify/{receipts.sign_case_no(SECRET, case_no)}"


# The combined receipt


def test_receipt_shows_the_company_every_step_and_the_verification_url(staff, factory):
    case = factory.case("ready")
    response = receipt_of(staff, case)
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'inline; filename="{case.case_no}-receipt.pdf"'
    text = text_of(response.data)
    uscc = case.step("registration").outputs["uscc"]
    for expected in (case.case_no, "广州市白云区政务服务中心", "广州市白云区示例科技有限公司", uscc,
                     case.step("registration").outputs["licence_no"], "有限责任公司", "1,000,000.00", "张三",
                     "0.5 个工作日", "按时办结", verify_url(case.case_no)):
        assert expected in text
    for title, department in (("设立登记", "市场监管"), ("刻章备案", "公安"), ("涉税信息确认", "税务"),
                              ("首次申领发票", "税务"), ("银行开户", "银行")):
        assert re.search(f"{title}.*\n.*\n?{department}", text), title
    assert case.step("bank").outputs["account_no"] in text
    assert "公章、财务专用章、发票专用章" in text


def test_receipt_masks_the_legal_representatives_id_number(staff, factory):
    case = factory.case("ready")
    full = case.application["legal_representative"]["id_number"]
    text = text_of(receipt_of(staff, case).data)
    assert full not in text
    assert f"{full[:4]}**********{full[-4:]}" in text


def test_receipt_marks_skipped_steps_and_a_late_case(staff, factory):
    with time_machine.travel("2026-11-23 09:00 +0800", tick=False) as traveller:
        case = factory.case("in_progress", wants={"seal": False, "invoice": True, "bank": False})
        traveller.shift(timedelta(days=1))  # a working day and more: far past the 210-minute promise
        factory.finish_steps(case)
        factory.session.commit()
    text = text_of(receipt_of(staff, case).data)
    assert "超时办结" in text and "按时办结" not in text
    assert text.count("未申请") == 2


def test_receipt_says_when_the_calendar_was_not_confirmed(staff, factory):
    with time_machine.travel("2031-03-03 09:00 +0800", tick=False):  # no holiday data for 2031
        case = factory.case("ready")
    text = text_of(receipt_of(staff, case).data)
    assert "节假日安排未经确认，暂按周一至周五计算" in text


def test_receipt_is_pdf_a_3b_with_metadata_and_the_case_data_attached(staff, factory):
    case = factory.case("ready")
    reader = PdfReader(io.BytesIO(receipt_of(staff, case).data))
    assert reader.pdf_header == "%PDF-1.7"
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp
    assert reader.trailer["/Root"]["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"
    assert reader.trailer["/Root"]["/Lang"] == "zh-CN"
    assert case.case_no in reader.metadata.title and "广州市白云区示例科技有限公司" in reader.metadata.title
    assert reader.metadata.author == "广州市白云区政务服务中心"
    assert reader.metadata.creation_date == case.ready_at.replace(microsecond=0)
    (attached,) = reader.attachments[f"{case.case_no}-receipt.json"]
    data = json.loads(attached)
    assert data["case_no"] == case.case_no and data["verify_url"] == verify_url(case.case_no)
    assert data["uscc"] == case.step("registration").outputs["uscc"]
    assert [s["step"] for s in data["steps"]] == [s.key for s in case.steps]
    assert case.application["legal_representative"]["id_number"] not in attached.decode()


def test_fonts_are_embedded_and_subset(staff, factory):
    reader = PdfReader(io.BytesIO(receipt_of(staff, factory.case("ready")).data))
    fonts = [font.get_object() for font in reader.pages[0]["/Resources"]["/Font"].values()]
    assert len(fonts) == 2
    for font in fonts:
        assert re.fullmatch(r"/[A-Z]{6}\+Noto-Sans-CJK-SC-Subset(-Bold)?", font["/BaseFont"])
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        assert "/FontFile3" in descriptor or "/FontFile2" in descriptor


def test_downloading_again_gives_the_same_bytes_even_after_delivery(staff, factory):
    case = factory.case("ready")
    first = receipt_of(staff, case).data
    assert receipt_of(staff, case).data == first
    ops.deliver_case(factory.session, case, factory.window, method="counter")
    factory.session.commit()
    with time_machine.travel(utcnow() + timedelta(days=40)):
        assert receipt_of(staff, case).data == first


@pytest.mark.parametrize("state", ["submitted", "in_progress", "suspended", "rejected"])
def test_no_receipt_before_the_case_is_ready(staff, factory, state):
    case = factory.case(state)
    response = staff(f"/cases/{case.case_no}/receipt.pdf")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["state"] == state


def test_documents_are_for_staff_only(client, factory):
    case = factory.case("ready")
    for document in ("receipt", "slip"):
        response = client.get(f"/api/v1/cases/{case.case_no}/{document}.pdf")
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"


def test_unknown_case_has_no_receipt(staff):
    assert staff("/cases/KB20260101-9999/receipt.pdf").status_code == 404


# The acceptance slip


@pytest.mark.parametrize("state", ["submitted", "rejected", "withdrawn"])
def test_no_slip_unless_accepted(staff, factory, state):
    case = factory.case("submitted")
    if state == "withdrawn":
        ops.withdraw_case(factory.session, case, factory.window, reason="申请人撤回")
    elif state == "rejected":
        ops.reject_case(factory.session, case, factory.window, reason="名称重复")
    factory.session.commit()
    response = staff(f"/cases/{case.case_no}/slip.pdf")
    assert response.status_code == 409
    assert response.json["state"] == state


@pytest.mark.parametrize("state", ["in_progress", "suspended", "ready", "delivered"])
def test_slip_from_acceptance_on(staff, factory, state):
    case = factory.case(state)
    response = staff(f"/cases/{case.case_no}/slip.pdf")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'inline; filename="{case.case_no}-slip.pdf"'
    text = text_of(response.data)
    assert "受理通知书" in text and "广州市白云区示例科技有限公司" in text and case.tracking_code in text
    assert "时限中止" in text if state == "suspended" else "前" in text


def test_slip_lists_the_materials_to_supplement_and_links_the_tracking_page(client, staff, factory):
    case = factory.case("submitted")
    ops.accept_case(factory.session, case, factory.window,
                    missing_materials=["股东身份证明复印件", "住所使用证明（租赁合同）"])
    factory.session.commit()
    pdf = staff(f"/cases/{case.case_no}/slip.pdf").data
    text = text_of(pdf)
    assert "容缺受理" in text and "股东身份证明复印件" in text and "住所使用证明（租赁合同）" in text
    for masked in (case.application["legal_representative"]["id_number"],
                   case.application["shareholders"][1]["id_number"]):
        assert masked not in text
    (url,) = qr_codes(pdf)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "localhost", "/track")
    assert parse_qs(parts.query) == {"case_no": [case.case_no], "code": [case.tracking_code]}
    assert url in text


def test_with_the_halls_server_name_set_a_forged_host_header_changes_no_printed_address(app, client, factory):
    app.config["SERVER_NAME"] = "zwfw.example.gov.cn"
    case = factory.case("ready")
    headers = {"Authorization": f"Bearer {factory.token()}", "Host": "attacker.example"}
    printed = []
    for document in ("slip", "receipt"):
        response = client.get(f"/api/v1/cases/{case.case_no}/{document}.pdf", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        printed += qr_codes(response.data)
    assert [urlsplit(url).netloc for url in printed] == ["zwfw.example.gov.cn"] * 2


def test_slip_without_missing_materials_is_a_plain_acceptance(staff, factory):
    text = text_of(staff(f"/cases/{factory.case('in_progress').case_no}/slip.pdf").data).replace("\n", "")
    assert "现予受理" in text and "容缺" not in text and "需补正" not in text


# Verification


def test_the_qr_code_leads_to_a_valid_verification(client, staff, factory):
    case = factory.case("ready")
    (url,) = qr_codes(receipt_of(staff, case).data)
    assert url == verify_url(case.case_no)
    path = urlsplit(url).path

    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    uscc = case.step("registration").outputs["uscc"]
    assert "回执有效" in html and "广州市白云区示例科技有限公司" in html and uscc in html

    api = client.get(f"/api/v1{path}")
    assert api.status_code == 200
    assert api.json == {"valid": True, "case_no": case.case_no, "company_name": "广州市白云区示例科技有限公司",
                        "uscc": uscc, "completed_at": receipts.hall_time(case.ready_at)}


def tampered(token: str) -> list[str]:
    payload, signature = token.split(".")
    other = "A" if signature[0] != "A" else "B"
    return [
        f"{payload}.{other}{signature[1:]}",  # a changed signature
        f"{receipts.sign_case_no(SECRET, 'KB20260101-0001').split('.')[0]}.{signature}",  # another case's payload
        receipts.sign_case_no("not the hall's key", receipts.read_token(SECRET, token)),  # a forger's own key
        token[:-3],  # cut short
        "not-a-token",
    ]


def test_forged_or_changed_tokens_are_refused(client, factory):
    case = factory.case("ready")
    for token in tampered(receipts.sign_case_no(SECRET, case.case_no)):
        api = client.get(f"/api/v1/verify/{token}")
        assert api.status_code == 404, token
        assert api.mimetype == "application/problem+json"
        assert api.json["valid"] is False
        page = client.get(f"/verify/{token}")
        assert page.status_code == 404
        html = page.get_data(as_text=True)
        assert "回执无效" in html and "广州市白云区示例科技有限公司" not in html
        assert "Not a valid receipt" in client.get(f"/verify/{token}?lang=en").get_data(as_text=True)


def test_a_genuine_token_of_an_unfinished_case_is_not_a_receipt(client, factory):
    case = factory.case("in_progress")
    token = receipts.sign_case_no(SECRET, case.case_no)
    assert client.get(f"/api/v1/verify/{token}").json["valid"] is False
    assert client.get(f"/verify/{token}").status_code == 404


def test_verify_page_in_chinese_and_english_without_scripts(client, factory):
    case = factory.case("delivered")
    path = urlsplit(verify_url(case.case_no)).path
    chinese = client.get(path).get_data(as_text=True)
    english = client.get(f"{path}?lang=en").get_data(as_text=True)
    assert '<html lang="zh-CN">' in chinese and "统一社会信用代码" in chinese
    assert '<html lang="en">' in english and "Valid receipt" in english and "Unified social credit code" in english
    for html in (chinese, english):
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert "<script" not in html and "style=" not in html and "http" not in html
        assert 'href="/static/css/site.css"' in html
    stylesheet = client.get("/static/css/site.css")
    assert stylesheet.status_code == 200 and stylesheet.mimetype == "text/css"
    stylesheet.close()


def test_user_data_is_escaped_in_the_receipt_and_the_page(client, staff, factory):
    company = {"name": SCRIPT, "kind": "llc", "registered_capital": "1000000.00",
               "address": '<img src="file:///etc/passwd">', "business_scope": "软件开发"}
    case = factory.case("ready", company=company)
    text = text_of(receipt_of(staff, case).data)
    assert SCRIPT in text and '<img src="file:///etc/passwd">' in text  # printed as text, not markup
    html = client.get(urlsplit(verify_url(case.case_no)).path).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html


# The renderer's boundaries


def test_the_fetcher_serves_only_data_uris_and_the_pdf_templates():
    fetcher = TemplateFetcher()
    assert fetcher.fetch("data:text/plain,hello").read() == b"hello"
    assert b"@page" in fetcher.fetch((TEMPLATES / "documents.css").as_uri()).read()
    for url in ("file:///etc/passwd", (TEMPLATES.parent / "base.html").as_uri(),
                f"{TEMPLATES.as_uri()}/../base.html", "http://example.com/x.png", "https://example.com/x.css",
                "ftp://example.com/x"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_rendering_logs_no_warnings(staff, factory, caplog):
    case = factory.case("ready")
    with caplog.at_level(logging.WARNING):
        receipt_of(staff, case)
        staff(f"/cases/{case.case_no}/slip.pdf")
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("weasyprint", "fontTools"))] == []


def test_the_engine_and_the_renderer_load_no_flask():
    code = ("import sys, workflow.receipts, pdf.render;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'api', 'flask_smorest')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
