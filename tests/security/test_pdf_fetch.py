"""WeasyPrint fetches nothing a receipt's or a slip's text asks for (issue 9, item 3).

Every text the documents print (company name, address, names, materials, outputs, clerks' display
names) is filled with markup that would make WeasyPrint fetch: images, stylesheets, ``@import``,
CSS ``url()``, attachments (which would embed the file in the PDF), objects, SVG images, a nested
SVG inside a ``data:`` URI, scheme-relative and ``..`` URLs, ``file:///etc/passwd``, and
``http://127.0.0.1:<port>`` of a listener this test runs. Rendered by the app, the documents print
that markup as text, the listener sees no connection, nothing is attached but the case's JSON and
the only image is the QR code. Rendered with escaping switched off, so that the markup is live, the
URL fetcher alone still lets nothing through, where WeasyPrint's default fetcher does connect (so
the listener and the markup are known to work). Then the fetcher's rules, URL by URL.
"""
from __future__ import annotations

import io
import socket
import threading

import pytest
from PIL import Image
from pypdf import PdfReader
from weasyprint import HTML

from pdf import render
from tests.security.test_xss import finished_case, pdf_text
from workflow import receipts

def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(out, "PNG")
    return out.getvalue()


PNG = _png()  # what the listener answers: a real image, which WeasyPrint would draw had it fetched it


class Listener:
    """A TCP server on 127.0.0.1 that answers any request with a tiny PNG and records every connection."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fetch-listener", daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _address = self.socket.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    request = connection.recv(4096).decode("latin-1")
                except OSError:
                    request = ""
                self.requests.append(request.split("\r\n", 1)[0] or "(connection without a request)")
                try:
                    connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\nContent-Length: "
                                       + str(len(PNG)).encode() + b"\r\n\r\n" + PNG)
                except OSError:
                    pass

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def fetching_texts(port: int) -> dict[str, str]:
    """Markup that fetches, by the code of the field it goes into (each within that field's length)."""
    here = f"http://127.0.0.1:{port}"
    return {
        "cn": f'<img src="{here}/company.png">',  # 100
        "ad": f"""<img src="data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'><image href='{here}/nested.png'/></svg>">""",
        "bs": f"<img src={here}/scope.png>",  # not printed
        "lr": '<link rel=attachment href="file:///etc/passwd">',  # 64
        "s1": f"<style>@import url({here}/import.css);</style>",  # 100
        "s2": f'<div style="background:url({here}/bg.png)">x</div>',
        "m1": f"<link rel=stylesheet href={here}/link.css><object data={here}/object.png></object>",  # 200
        "m2": f"<a rel=attachment href={here}/attached.txt>x</a><svg><image href={here}/svg.png /></svg>",
        "ln": '<img src="file:///etc/passwd">',  # 64
        "fn": f"<img src=//127.0.0.1:{port}/relative.png>",  # 64
        "bn": "<img src=../../../../../../etc/passwd> p{background:url(file:///etc/passwd)}",  # 128
        "u1d": f"<embed src={here}/embed.png>",  # 64: the clerk who accepted (slip)
        "u2d": f"<iframe src={here}/iframe.html></iframe>",  # the clerks who did the steps (receipt)
        "u3d": f"<link rel=attachment href={here}/a.txt>",
        "u4d": f"<img src='{here}/tax.png'>",
        "u5d": f"<video poster={here}/poster.png></video>",
    }


SLIP = ("cn", "ad", "lr", "s1", "s2", "m1", "m2", "u1d")
RECEIPT = ("cn", "ad", "lr", "ln", "fn", "bn", "u2d", "u3d", "u4d", "u5d")


def _texts(port: int):
    texts = fetching_texts(port)
    return lambda code: texts.get(code) or f"<img src=http://127.0.0.1:{port}/{code}.png>"


def _check_document(pdf: bytes, case_no: str, document: str, *, only_the_qr_code: bool = True) -> None:
    """Nothing attached but the case's data, no line of /etc/passwd, no image but the QR code."""
    reader = PdfReader(io.BytesIO(pdf))
    assert set(reader.attachments) == {f"{case_no}-{document}.json"}
    assert "root:" not in "".join(page.extract_text() for page in reader.pages)
    if only_the_qr_code:  # (pages share one resource dictionary: an image is listed on each page)
        assert len({image.data for page in reader.pages for image in page.images}) == 1


def test_documents_print_fetching_markup_as_text_and_fetch_nothing(client, factory, listener):
    texts = _texts(listener.port)
    staff, case = finished_case(factory.session, texts)
    token = factory.token()
    for document, codes in (("slip", SLIP), ("receipt", RECEIPT)):
        response = client.get(f"/api/v1/cases/{case.case_no}/{document}.pdf", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        _check_document(response.data, case.case_no, document)
        text = pdf_text(response.data)
        missing = [code for code in codes if "".join(texts(code).split()) not in text]
        assert missing == [], f"the {document} does not print as text: {missing}"
    assert listener.requests == []


def _raw_environment(monkeypatch):
    """The PDF templates with autoescaping off: every text becomes live markup, as a careless
    ``|safe`` or a template bug would make it."""
    raw = render.environment().overlay(autoescape=False)
    monkeypatch.setattr(render, "environment", lambda: raw)
    return raw


def test_with_escaping_off_the_fetcher_alone_lets_nothing_through(factory, listener, monkeypatch):
    texts = _texts(listener.port)
    staff, case = finished_case(factory.session, texts)
    slip, receipt = receipts.slip_data(factory.session, case), receipts.receipt_data(factory.session, case)
    raw = _raw_environment(monkeypatch)

    # The control: WeasyPrint's own fetcher, given the same live markup, does connect.
    html = raw.get_template("receipt.html").render(data={**receipt, "verify_url": "http://localhost/v"},
                                                   issued_at=receipt["completed_at"], verify_url="http://localhost/v")
    assert "<iframe src=" in html  # live markup, not text
    HTML(string=html, base_url=render.TEMPLATES.as_uri() + "/").write_pdf()
    assert listener.requests, "the default fetcher fetched nothing: the markup or the listener is broken"
    listener.requests.clear()

    documents = {"slip": render.render_slip(slip, "http://localhost/track?case_no=x&code=y"),
                 "receipt": render.render_receipt(receipt, "http://localhost/verify/t")}
    for document, pdf in documents.items():
        _check_document(pdf, case.case_no, document, only_the_qr_code=False)  # the data: SVG is drawn
    assert listener.requests == []


def test_the_fetcher_serves_only_the_documents_own_resources(tmp_path, monkeypatch):
    # A templates/pdf/ of this test's own, with a stylesheet, an image, a template and a way out.
    templates = tmp_path / "pdf"
    templates.mkdir()
    (templates / "documents.css").write_text("@page { size: A4 }")
    (templates / "logo.png").write_bytes(PNG)
    (templates / "layout.html").write_text("<p>template</p>")
    (tmp_path / "secret.css").write_text("secret")
    (templates / "escape.css").symlink_to(tmp_path / "secret.css")
    monkeypatch.setattr(render, "TEMPLATES", templates)
    fetcher = render.TemplateFetcher({"font:normal": b"OTTO"})

    assert fetcher.fetch("data:text/plain,hello").read() == b"hello"
    assert fetcher.fetch("font:normal").read() == b"OTTO"
    assert fetcher.fetch((templates / "documents.css").as_uri()).read() == b"@page { size: A4 }"
    assert fetcher.fetch(f"file://localhost{templates}/logo.png").read() == PNG
    refused = [
        "file:///etc/passwd", "FILE:///etc/passwd", "File:///etc/passwd", "file://localhost/etc/passwd",
        f"file://127.0.0.1{templates}/logo.png",  # another host's file, whatever the path
        (templates / "layout.html").as_uri(),  # a template is not a resource
        (templates / "escape.css").as_uri(),  # a symbolic link out of the folder
        f"{templates.as_uri()}/../secret.css", f"{templates.as_uri()}/%2e%2e/secret.css",
        f"{templates.as_uri()}/missing.css", templates.as_uri(),
        "http://127.0.0.1:9/x.png", "https://example.com/x.css", "HTTP://127.0.0.1:9/x.png", "ftp://example.com/x",
        "font:bold", "font:../../etc/passwd", "javascript:alert(1)", "about:blank", "//127.0.0.1:9/x.png",
        "jar:file:///etc/passwd!/", "gopher://127.0.0.1:9/_x", "blob:http://127.0.0.1/x",
    ]
    for url in refused:
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_the_real_templates_need_nothing_the_fetcher_refuses(factory, caplog):
    """What the documents legitimately load (the cut fonts, the QR code as a data: image) passes: no
    refusal is logged when an ordinary case's documents are rendered, and the QR code is drawn."""
    staff, case = finished_case(factory.session, lambda code: f"示例{code}")
    with caplog.at_level("WARNING", logger="weasyprint"):
        slip = render.render_slip(receipts.slip_data(factory.session, case), "http://localhost/track")
        receipt = render.render_receipt(receipts.receipt_data(factory.session, case), "http://localhost/verify/t")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")] == []
    _check_document(slip, case.case_no, "slip")
    _check_document(receipt, case.case_no, "receipt")
