"""The HTTP application, through Starlette's TestClient (its lifespan, so the batcher, runs for
each block); a real server on 127.0.0.1, started and stopped by the test, for the browser."""

import base64
import contextlib
import io
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from captcha_ocr.reading.reader import CaptchaReader
from captcha_ocr.serving.app import create_app
from captcha_ocr.serving.service import DEFAULT_LIMITS, Limits

from .helpers import draw_captcha, write_tiny_weights

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(
    reader: CaptchaReader, limits: Limits = DEFAULT_LIMITS, api_key: str | None = None, http: type | str = "auto"
) -> Iterator[str]:
    """A uvicorn server (``http``: its protocol) on a free loopback port for the duration of the
    block; yields its URL."""
    port = free_port()
    app = create_app(reader, "test", limits, api_key)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def client_of(
    reader: CaptchaReader, limits: Limits = DEFAULT_LIMITS, api_key: str | None = None
) -> Iterator[TestClient]:
    """The application in process, its lifespan running for the duration of the block."""
    with TestClient(create_app(reader, "test", limits, api_key), raise_server_exceptions=False) as client:
        yield client


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> CaptchaReader:
    return CaptchaReader(write_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.pt"))


LABELS = ("226md", "bcdef", "nnn2b", "wxy78")


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [png_bytes(draw_captcha(label)) for label in LABELS]


def test_read_files_and_base64_in_order_with_a_bad_image_of_its_own(reader, images) -> None:
    expected = [r.text for r in reader.read([Image.open(io.BytesIO(i)) for i in images])]
    with client_of(reader) as http:
        files = [("files", (f"{label}.png", data, "image/png")) for label, data in zip(LABELS, images, strict=True)]
        files.insert(2, ("files", ("broken.png", b"\x89PNG no", "image/png")))
        answer = http.post("/v1/read", files=files).json()
        texts = [r.get("text") for r in answer["results"]]
        assert texts == [*expected[:2], None, *expected[2:]]
        assert "error" in answer["results"][2] and answer["results"][2]["index"] == 2
        assert all(len(r["characters"]) == len(r["text"]) for r in answer["results"] if "text" in r)
        encoded = [base64.b64encode(i).decode() for i in images]
        encoded[1] = "data:image/png;base64," + encoded[1]
        answer = http.post("/v1/read", json={"images": [*encoded, "%%%"]}).json()
        assert [r.get("text") for r in answer["results"]] == [*expected, None]
        assert answer["results"][-1]["error"] == "not valid base64"


def test_ddddocr_style_endpoint(reader, images) -> None:
    expected = reader.read([Image.open(io.BytesIO(images[0]))])[0].text
    with client_of(reader) as http:
        upload = http.post("/ocr", files={"file": ("a.png", images[0], "image/png")}).json()
        assert upload == {"code": 200, "message": "Success", "data": expected}
        prefixed = "data:image/png;base64," + base64.b64encode(images[0]).decode()
        assert http.post("/ocr", data={"image": prefixed}).json()["data"] == expected
        assert http.post("/ocr", data={"other": "x"}).json()["code"] == 400


def test_health_model_and_openapi(reader) -> None:
    with client_of(reader) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        model = http.get("/v1/model").json()
        assert model["charset"] == reader.tokenizer.charset and model["input"]["height"] == reader.spec.height
        assert "/v1/read" in http.get("/openapi.json").json()["paths"]
        assert "<title>captcha_ocr</title>" in http.get("/").text


def test_limits_and_errors_are_json_with_fitting_codes(reader, images) -> None:
    limits = Limits(max_body_bytes=200_000, max_pixels=50_000, max_images=3, timeout_seconds=10)
    big = png_bytes(Image.new("L", (400, 200), 255))  # 80,000 pixels
    with client_of(reader, limits) as http:
        cases = [
            (http.post("/v1/read", content=b"x" * 300_000, headers={"content-type": "application/json"}), 413),
            (http.post("/v1/read", files=[("files", ("a.png", images[0]))] * 6), 413),
            (http.post("/v1/read", content=b"abc", headers={"content-type": "text/plain"}), 415),
            (http.post("/v1/read", content=b"{", headers={"content-type": "application/json"}), 400),
            (http.post("/v1/read", json={"pictures": []}), 422),
            (http.post("/v1/read", json={"images": []}), 422),
            (http.get("/nowhere"), 404),
        ]
        for response, status in cases:
            assert response.status_code == status, response.text
            assert set(response.json()) == {"error"} and "Traceback" not in response.text

        def chunks():  # no Content-Length: the limit holds while the body streams in
            for _ in range(30):
                yield b"x" * 10_000

        streamed = http.post("/v1/read", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        pixels = http.post("/v1/read", files=[("files", ("big.png", big)), ("files", ("a.png", images[0]))])
        assert "over the limit of 50000" in pixels.json()["results"][0]["error"]  # a bomb is refused undecoded
        assert "text" in pixels.json()["results"][1]
    with client_of(reader, Limits(timeout_seconds=1e-6)) as http:
        slow = http.post("/v1/read", files=[("files", ("a.png", images[0]))])
        assert slow.status_code == 503 and "longer than" in slow.json()["error"]


def test_api_key(reader, images) -> None:
    with client_of(reader, api_key="s3cret") as http:
        files = [("files", ("a.png", images[0]))]
        assert http.post("/v1/read", files=files).status_code == 401
        assert http.post("/v1/read", files=files, headers={"X-API-Key": "wrong"}).status_code == 401
        assert http.post("/v1/read", files=files, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert http.get("/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert http.get("/healthz").status_code == 200  # health checks need no key


def test_concurrent_requests_are_answered_correctly_and_batched(reader, images) -> None:
    expected = {i: reader.read([Image.open(io.BytesIO(data))])[0].text for i, data in enumerate(images)}
    with client_of(reader) as client:

        def one(request: int) -> bool:
            index = request % len(images)
            answer = client.post("/v1/read", files=[("files", ("a.png", images[index]))]).json()
            return answer["results"][0]["text"] == expected[index]

        with ThreadPoolExecutor(16) as pool:
            assert all(pool.map(one, range(96)))
        stats = client.get("/v1/stats").json()
    assert stats["images"] == 96
    assert stats["batches"] < 96  # some forward passes served several requests


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_page_reads_an_uploaded_captcha_in_a_real_browser(reader, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    draw_captcha("226md").save(tmp_path / "226md.png")
    expected = reader.read([tmp_path / "226md.png"])[0]
    with running(reader) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(url)
            page.set_input_files("#file", str(tmp_path / "226md.png"))
            page.wait_for_function("document.querySelector('#reading').textContent.length > 0 "
                                   "&& document.querySelector('#reading').textContent !== '…'")  # fmt: skip
            assert page.text_content("#reading") == expected.text
            assert len(page.query_selector_all(".char")) == len(expected.text)
            assert page.text_content("#error") == ""
            page.screenshot(path=str(tmp_path / "page.png"))
        finally:
            browser.close()
    assert (tmp_path / "page.png").stat().st_size > 0
