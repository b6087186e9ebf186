"""Requests and inputs of a hostile or careless client: each is refused with a named error, none
stalls the server, crashes it or holds it open."""

import base64
import io
import json
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from captcha_ocr.reader import CaptchaReader
from captcha_ocr.server import ApiError, Limits, count_parts, decode_base64

from .helpers import ROOT, draw_captcha, write_tiny_weights
from .test_server import free_port, png_bytes, running


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.pt")


@pytest.fixture(scope="module")
def reader(weights: Path) -> CaptchaReader:
    return CaptchaReader(weights)


@pytest.fixture(scope="module")
def captcha() -> bytes:
    return png_bytes(draw_captcha("226md"))


def test_a_million_json_entries_are_counted_and_refused_while_others_are_served(reader, captcha) -> None:
    body = json.dumps({"images": ["a"] * 1_000_000})  # 3.8 MiB, under the body limit
    with running(reader) as url, ThreadPoolExecutor(2) as pool:
        attack = pool.submit(httpx.post, f"{url}/v1/read", content=body,
                             headers={"content-type": "application/json"}, timeout=30)  # fmt: skip
        health = [httpx.get(f"{url}/healthz", timeout=30).status_code for _ in range(5)]
        answer = attack.result()
        normal = httpx.post(f"{url}/v1/read", files=[("files", ("a.png", captcha))], timeout=30)
    assert answer.status_code == 413 and "1000000 images" in answer.json()["error"]
    assert health == [200] * 5 and normal.status_code == 200


def test_many_multipart_parts_are_counted_before_parsing(reader, captcha) -> None:
    boundary = "b"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="f"\r\n\r\nA\r\n'
    body = (part * 127_000 + f"--{boundary}--\r\n").encode()  # 6.6 MB, under the body limit
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    assert count_parts(body, headers["content-type"]) == 127_000
    with running(reader) as url:
        answer = httpx.post(f"{url}/v1/read", content=body, headers=headers, timeout=30)
        ocr = httpx.post(f"{url}/ocr", content=body, headers=headers, timeout=30)
    assert answer.status_code == 413 and "127000 parts" in answer.json()["error"]
    assert ocr.status_code == 413


def test_many_large_images_are_refused_by_their_pixels_together_before_decoding(reader) -> None:
    big = io.BytesIO()
    Image.fromarray(np.zeros((2000, 2000), dtype=np.uint16)).save(big, format="PNG")  # 4 M pixels, 16-bit
    files = [("files", (f"{i}.png", big.getvalue())) for i in range(64)]
    with running(reader) as url:
        answer = httpx.post(f"{url}/v1/read", files=files, timeout=30)
    assert answer.status_code == 413 and "pixels in one request" in answer.json()["error"]


def test_a_slow_or_short_changed_upload_is_cut_off_at_the_deadline(reader) -> None:
    with running(reader, Limits(timeout_seconds=1.0)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"POST /v1/read HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000\r\n\r\n{\"images\"")  # fmt: skip
            started = time.monotonic()
            received = b""
            while chunk := client.recv(4096):  # until the server closes the connection
                received += chunk
            waited = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 503") and b"longer than 1.0 s" in received
    assert waited < 5


def test_bad_json_and_base64_variants(reader, captcha) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    plain = base64.b64encode(captcha).decode()
    wrapped = base64.encodebytes(captcha).decode()  # 76 characters a line, as `base64` prints
    url_safe = base64.urlsafe_b64encode(captcha).decode().rstrip("=")
    assert decode_base64(wrapped) == decode_base64(url_safe) == captcha
    with running(reader) as url:
        deep = httpx.post(f"{url}/v1/read", content=nested, headers={"content-type": "application/json"})
        read = httpx.post(f"{url}/v1/read", json={"images": [plain, wrapped, url_safe]}).json()["results"]
        ocr = httpx.post(f"{url}/ocr", data={"image": wrapped}).json()
        garbage = httpx.post(f"{url}/v1/read", files=[("files", ("a.png", b"GIF89a garbage"))]).json()["results"]
    assert deep.status_code == 400 and "nested" in deep.json()["error"]
    assert len({r["text"] for r in read}) == 1 and all("text" in r for r in read)
    assert ocr["code"] == 200 and ocr["data"] == read[0]["text"]
    assert "error" in garbage[0] and "<_io" not in garbage[0]["error"] and "object at" not in garbage[0]["error"]


def test_a_non_ascii_api_key_matches_its_utf8_bytes(reader, captcha) -> None:
    with running(reader, api_key="clé-ключ") as url:
        files = [("files", ("a.png", captcha))]
        right = httpx.post(f"{url}/v1/read", files=files, headers={"X-API-Key": "clé-ключ".encode()})
        wrong = httpx.post(f"{url}/v1/read", files=files, headers={"X-API-Key": "cle-kluch"})
    assert right.status_code == 200 and wrong.status_code == 401


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "captcha_ocr.cli", "serve", *args]


def test_serve_refuses_a_bad_port_or_one_in_use_in_one_line(weights: Path) -> None:
    bad = subprocess.run(serve_command("--port", "70000"), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "0-65535" in bad.stderr and "Traceback" not in bad.stderr
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        busy = subprocess.run(serve_command("--port", port, "--model", str(weights), "--backend", "torch"),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert busy.returncode == 2 and "cannot listen" in busy.stderr and "Traceback" not in busy.stderr


def test_sigterm_ends_the_server_within_its_grace_period_despite_a_hanging_upload(weights: Path) -> None:
    port = free_port()
    server = subprocess.Popen(serve_command("--port", str(port), "--model", str(weights), "--backend", "torch",
                                            "--shutdown-grace", "2", "--timeout", "60"),
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port)) as hanging:
            hanging.sendall(b"POST /v1/read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            time.sleep(0.3)
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=15)
            stopped = time.monotonic() - started
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert stopped < 2 + 3  # the grace period, plus start-up of nothing


def test_count_parts_reads_the_boundary_quoted_or_not() -> None:
    body = b"--b1\r\n\r\nx\r\n--b1\r\n\r\ny\r\n--b1--\r\n"
    assert count_parts(body, "multipart/form-data; boundary=b1") == 2
    assert count_parts(body, 'multipart/form-data; boundary="b1"') == 2
    with pytest.raises(ApiError, match="without a boundary"):
        count_parts(body, "multipart/form-data")
    assert count_parts(b"image=abc&charsets=0123", "application/x-www-form-urlencoded") == 2
