"""The HTTP server, started on 127.0.0.1 by each test that needs it and stopped by it."""

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

import httpx
import pytest
import uvicorn
from PIL import Image

from captcha_ocr.reading.reader import CaptchaReader
from captcha_ocr.serving.server import DEFAULT_LIMITS, Limits, create_app

from .helpers import draw_captcha, write_tiny_weights

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(reader: CaptchaReader, limits: Limits = DEFAULT_LIMITS, api_key: str | None = None) -> Iterator[str]:
    """A uvicorn server on a free loopback port for the duration of the block; yields its URL."""
    port = free_port()
    config = uvicorn.Config(create_app(reader, "test", limits, api_key), host="127.0.0.1", port=port, log_level="error")
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
    with running(reader) as url:
        files = [("files", (f"{label}.png", data, "image/png")) for label, data in zip(LABELS, images, strict=True)]
        files.insert(2, ("files", ("broken.png", b"\x89PNG no", "image/png")))
        answer = httpx.post(f"{url}/v1/read", files=files).json()
        texts = [r.get("text") for r in answer["results"]]
        assert texts == [*expected[:2], None, *expected[2:]]
        assert "error" in answer["results"][2] and answer["results"][2]["index"] == 2
        assert all(len(r["characters"]) == len(r["text"]) for r in answer["results"] if "text" in r)
        encoded = [base64.b64encode(i).decode() for i in images]
        encoded[1] = "data:image/png;base64," + encoded[1]
        answer = httpx.post(f"{url}/v1/read", json={"images": [*encoded, "%%%"]}).json()
        assert [r.get("text") for r in answer["results"]] == [*expected, None]
        assert answer["results"][-1]["error"] == "not valid base64"


def test_ddddocr_style_endpoint(reader, images) -> None:
    expected = reader.read([Image.open(io.BytesIO(images[0]))])[0].text
    with running(reader) as url:
        upload = httpx.post(f"{url}/ocr", files={"file": ("a.png", images[0], "image/png")}).json()
        assert upload == {"code": 200, "message": "Success", "data": expected}
        prefixed = "data:image/png;base64," + base64.b64encode(images[0]).decode()
        assert httpx.post(f"{url}/ocr", data={"image": prefixed}).json()["data"] == expected
        assert httpx.post(f"{url}/ocr", data={"other": "x"}).json()["code"] == 400


def test_health_model_and_openapi(reader) -> None:
    with running(reader) as url:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        model = httpx.get(f"{url}/v1/model").json()
        assert model["charset"] == reader.tokenizer.charset and model["input"]["height"] == reader.height
        assert "/v1/read" in httpx.get(f"{url}/openapi.json").json()["paths"]
        assert "<title>captcha_ocr</title>" in httpx.get(f"{url}/").text


def test_limits_and_errors_are_json_with_fitting_codes(reader, images) -> None:
    limits = Limits(max_body_bytes=200_000, max_pixels=50_000, max_images=3, timeout_seconds=10)
    big = png_bytes(Image.new("L", (400, 200), 255))  # 80,000 pixels
    with running(reader, limits) as url:
        cases = [
            (httpx.post(f"{url}/v1/read", content=b"x" * 300_000, headers={"content-type": "application/json"}), 413),
            (httpx.post(f"{url}/v1/read", files=[("files", ("a.png", images[0]))] * 6), 413),
            (httpx.post(f"{url}/v1/read", content=b"abc", headers={"content-type": "text/plain"}), 415),
            (httpx.post(f"{url}/v1/read", content=b"{", headers={"content-type": "application/json"}), 400),
            (httpx.post(f"{url}/v1/read", json={"pictures": []}), 422),
            (httpx.post(f"{url}/v1/read", json={"images": []}), 422),
            (httpx.get(f"{url}/nowhere"), 404),
        ]
        for response, status in cases:
            assert response.status_code == status, response.text
            assert set(response.json()) == {"error"} and "Traceback" not in response.text

        def chunks():  # no Content-Length: the limit holds while the body streams in
            for _ in range(30):
                yield b"x" * 10_000

        streamed = httpx.post(f"{url}/v1/read", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        pixels = httpx.post(f"{url}/v1/read", files=[("files", ("big.png", big)), ("files", ("a.png", images[0]))])
        assert "over the limit of 50000" in pixels.json()["results"][0]["error"]  # a bomb is refused undecoded
        assert "text" in pixels.json()["results"][1]
    with running(reader, Limits(timeout_seconds=1e-6)) as url:
        slow = httpx.post(f"{url}/v1/read", files=[("files", ("a.png", images[0]))])
        assert slow.status_code == 503 and "longer than" in slow.json()["error"]


def test_api_key(reader, images) -> None:
    with running(reader, api_key="s3cret") as url:
        files = [("files", ("a.png", images[0]))]
        assert httpx.post(f"{url}/v1/read", files=files).status_code == 401
        assert httpx.post(f"{url}/v1/read", files=files, headers={"X-API-Key": "wrong"}).status_code == 401
        assert httpx.post(f"{url}/v1/read", files=files, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert httpx.get(f"{url}/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(f"{url}/healthz").status_code == 200  # health checks need no key


def test_concurrent_requests_are_answered_correctly_and_batched(reader, images) -> None:
    expected = {i: reader.read([Image.open(io.BytesIO(data))])[0].text for i, data in enumerate(images)}
    with running(reader) as url, httpx.Client() as client:

        def one(request: int) -> bool:
            index = request % len(images)
            answer = client.post(f"{url}/v1/read", files=[("files", ("a.png", images[index]))]).json()
            return answer["results"][0]["text"] == expected[index]

        with ThreadPoolExecutor(16) as pool:
            assert all(pool.map(one, range(96)))
        stats = client.get(f"{url}/v1/stats").json()
    assert stats["images"] == 96
    assert stats["batches"] < 96  # some forward passes served several requests


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
