"""Requests and inputs of a hostile or careless client: each is refused with a named error, none
stalls the server, crashes it or holds it open."""

import base64
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from captcha_ocr.reading.reader import CaptchaReader
from captcha_ocr.reading.weights import ONNX_SPEC_KEY
from captcha_ocr.serving.bodies import count_parts
from captcha_ocr.serving.protocol import HeadDeadlineProtocol
from captcha_ocr.serving.service import ApiError, Limits, decode_base64

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


@pytest.mark.parametrize("route", ["/v1/read", "/ocr/batch"])
def test_a_million_json_entries_are_counted_and_refused_while_others_are_served(reader, captcha, route) -> None:
    body = json.dumps({"images": ["a"] * 1_000_000})  # 3.8 MiB, under the body limit
    with running(reader, Limits(timeout_seconds=8.0)) as url, ThreadPoolExecutor(2) as pool:
        attack = pool.submit(httpx.post, f"{url}{route}", content=body,
                             headers={"content-type": "application/json"}, timeout=30)  # fmt: skip
        health = [httpx.get(f"{url}/healthz", timeout=30).status_code for _ in range(5)]
        answer = attack.result()
        normal = httpx.post(f"{url}/v1/read", files=[("files", ("a.png", captcha))], timeout=30)
    # Counted before a single entry is decoded: refused well inside the deadline (a 503 otherwise).
    assert answer.status_code == 413 and "1000000 images" in str(answer.json())
    assert health == [200] * 5 and normal.status_code == 200


def test_form_ocr_answers_a_body_over_the_limit_in_ddddocr_fastapis_shape(reader, captcha) -> None:
    with running(reader, Limits(max_body_bytes=10_000)) as url:
        form = httpx.post(f"{url}/ocr", data={"image": "A" * 20_000})
        native = httpx.post(f"{url}/v1/read", files=[("files", ("a.png", b"x" * 20_000))])
    assert form.status_code == 200 and form.json()["code"] == 413 and "over 10000 bytes" in form.json()["message"]
    assert native.status_code == 413 and "over 10000 bytes" in native.json()["error"]


def test_the_bearer_scheme_is_case_insensitive(reader, captcha) -> None:
    with running(reader, api_key="s3cret") as url:
        answers = [httpx.get(f"{url}/v1/model", headers={"Authorization": f"{scheme} s3cret"}).status_code
                   for scheme in ("Bearer", "bearer", "BEARER", "Basic")]  # fmt: skip
    assert answers == [200, 200, 200, 401]


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
    assert ocr.json()["code"] == 413 and "127000 parts" in ocr.json()["message"]  # ddddocr-fastapi: codes in the body


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


class QuickHeadDeadline(HeadDeadlineProtocol):
    head_seconds = 1.0


@pytest.mark.parametrize("opening", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"])
def test_headers_sent_a_byte_at_a_time_are_cut_off_at_the_head_deadline(reader, opening: bytes) -> None:
    with running(reader, http=QuickHeadDeadline) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(opening)  # a first request answered: the deadline is per request head
            started = time.monotonic()
            received = b""
            for byte in b"POST /v1/read HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                try:
                    client.sendall(bytes([byte]))
                except OSError:  # closed by the server
                    break
                time.sleep(0.05)
                if time.monotonic() - started > 4:
                    break
            while chunk := client.recv(4096):
                received += chunk
            waited = time.monotonic() - started
    assert b"HTTP/1.1 408" in received and b"headers took longer than 1.0 s" in received
    assert waited < 3


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


def wait_until_healthy(server: subprocess.Popen, port: int, seconds: float) -> None:
    """Poll ``/healthz`` of a server process until it answers 200; raise when it exits or the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def serve_process(weights: Path, *flags: str, ready_within: float) -> Iterator[tuple[subprocess.Popen, int]]:
    """``captcha-ocr serve`` of ``weights`` (torch) on a free loopback port with ``flags``, once it
    answers ``/healthz``; yields the process and its port and kills it if the block left it running."""
    port = free_port()
    server = subprocess.Popen(serve_command("--port", str(port), "--model", str(weights), "--backend", "torch", *flags),
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    try:
        wait_until_healthy(server, port, seconds=ready_within)
        yield server, port
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_sigterm_ends_the_server_within_its_grace_period_despite_a_hanging_upload(weights: Path) -> None:
    flags = ("--shutdown-grace", "2", "--timeout", "60")
    with (
        serve_process(weights, *flags, ready_within=60) as (server, port),
        socket.create_connection(("127.0.0.1", port)) as hanging,
    ):
        hanging.sendall(b"POST /v1/read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        time.sleep(0.3)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
        stopped = time.monotonic() - started
    assert stopped < 2 + 3  # the grace period, plus start-up of nothing


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_ends_the_server_once_its_requests_are_answered_not_at_the_grace_period(weights, workers) -> None:
    flags = ("--shutdown-grace", "30", "--workers", workers)
    with serve_process(weights, *flags, ready_within=60) as (server, port), httpx.Client() as client:
        assert client.get(f"http://127.0.0.1:{port}/v1/model").status_code == 200  # a kept-alive idle connection
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=40)
        stopped = time.monotonic() - started
    assert stopped < 10  # far inside the 30 s of grace: nothing was left to answer


def test_count_parts_reads_the_boundary_quoted_or_not() -> None:
    body = b"--b1\r\n\r\nx\r\n--b1\r\n\r\ny\r\n--b1--\r\n"
    assert count_parts(body, "multipart/form-data; boundary=b1") == 2
    assert count_parts(body, 'multipart/form-data; boundary="b1"') == 2
    assert count_parts(body, "Multipart/Form-Data; Boundary=b1") == 2  # media types are case-insensitive
    assert count_parts(body, "multipart/form-data; boundary=B1") == 0  # boundaries are not
    with pytest.raises(ApiError, match="without a boundary"):
        count_parts(body, "multipart/form-data")
    assert count_parts(b"image=abc&charsets=0123", "application/x-www-form-urlencoded") == 2


# Model files: a spec that does not fit its graph, pickles, truncations and slim files outside `read`.


def onnx_with_spec(source: Path, target: Path, **changes) -> Path:
    """A copy of an exported ONNX file whose spec metadata says ``changes``."""
    import onnx

    graph = onnx.load(source)
    entry = next(p for p in graph.metadata_props if p.key == ONNX_SPEC_KEY)
    entry.value = json.dumps({**json.loads(entry.value), **changes})
    onnx.save(graph, target)
    return target


@pytest.fixture(scope="module")
def tiny_onnx(weights: Path, tmp_path_factory) -> Path:
    from captcha_ocr.model.export import export_onnx

    return export_onnx(tmp_path_factory.mktemp("onnx") / "tiny.onnx", weights)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"charset": "0123456789"}, "output classes"),
        ({"head": "ctc"}, "output steps of the ctc head"),
        ({"max_length": 6}, "output steps of the position head"),
        ({"height": 48}, "input height"),
    ],
)
def test_an_onnx_spec_that_does_not_fit_its_graph_is_refused_in_one_line(
    tiny_onnx: Path, tmp_path: Path, changes: dict, named: str
) -> None:
    wrong = onnx_with_spec(tiny_onnx, tmp_path / "wrong.onnx", **changes)
    with pytest.raises(ValueError, match=named):
        CaptchaReader(wrong, backend="onnx")
    draw_captcha("226md").save(tmp_path / "a.png")
    read = subprocess.run([sys.executable, "-m", "captcha_ocr.cli", "read", str(tmp_path / "a.png"), "--model",
                           str(wrong), "--backend", "onnx"], capture_output=True, text=True, timeout=120)  # fmt: skip
    served = subprocess.run(serve_command("--model", str(wrong), "--port", str(free_port())),
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    for result in (read, served):
        assert result.returncode == 2 and named in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def bad_model_files(weights: Path, tmp_path_factory) -> dict[str, Path]:
    import torch

    folder = tmp_path_factory.mktemp("bad")
    pickled = folder / "pickled.pt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": Path("x")}, pickled)  # a Python object
    truncated = folder / "truncated.pt"
    truncated.write_bytes(weights.read_bytes()[:500])
    return {"pickled": pickled, "truncated": truncated, "slim": weights}


@pytest.mark.parametrize("kind", ["pickled", "truncated", "slim"])
def test_a_bad_model_file_is_one_line_in_every_command(bad_model_files: dict, kind: str, tmp_path: Path) -> None:
    path = str(bad_model_files[kind])
    draw_captcha("226md").save(tmp_path / "226md.png")
    commands = [[sys.executable, "main.py", "test", "--config", str(ROOT / "configs" / "smoke.yaml"),
                 "--data.data_dir", str(tmp_path), "--ckpt_path", path]]  # fmt: skip
    if kind != "slim":  # export and report take a slim weights file
        commands += [
            [sys.executable, "-m", "captcha_ocr.cli", "export", str(tmp_path / "m.onnx"), "--checkpoint", path],
            [sys.executable, "-m", "captcha_ocr.cli", "report", "--checkpoint", path, "--data_dir", str(tmp_path),
             "--out", str(tmp_path / "report")],
        ]  # fmt: skip
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert result.returncode in (1, 2), result.stderr[-2000:]
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert "weights_only=False" not in result.stderr and "set to `False`" not in result.stderr
        assert path in result.stderr
    assert not (tmp_path / "report").exists() and not (tmp_path / "m.onnx").exists()


def test_report_on_a_file_that_is_not_per_image_results_writes_nothing(tmp_path: Path) -> None:
    from captcha_ocr.cli import main as cli

    garbage = tmp_path / "garbage.csv"
    garbage.write_text("a,b\n1,2\n")
    assert (
        cli(["report", "--predictions", str(garbage), "--data_dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    )
    assert not (tmp_path / "r").exists()


# The reader and the CLI: bombs, special files, unwritable output, bad training options.


def test_the_reader_refuses_an_image_over_its_pixel_limit_from_the_header(weights: Path, tmp_path: Path) -> None:
    Image.new("L", (3000, 2000), 255).save(tmp_path / "big.png")  # 6 M pixels, a few KB of PNG
    draw_captcha("226md").save(tmp_path / "good.png")
    with pytest.raises(OSError, match="over the limit of 4000000"):
        CaptchaReader(weights).read([tmp_path / "big.png"])
    assert len(CaptchaReader(weights, max_pixels=None).read([tmp_path / "big.png"])) == 1
    result = subprocess.run([sys.executable, "-m", "captcha_ocr.cli", "read", str(tmp_path), "--model", str(weights),
                             "--max-pixels", "1000000"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1 and "big.png" in result.stderr and "over the limit of 1000000" in result.stderr
    assert result.stdout.startswith(str(tmp_path / "good.png"))


def test_special_files_are_named_never_read(weights: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    draw_captcha("226md").save(folder / "226md.png")
    os.mkfifo(folder / "fifo.png")
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "empty").mkdir()
    command = [sys.executable, "-m", "captcha_ocr.cli", "read", "--model", str(weights)]
    named = subprocess.run([*command, str(folder / "fifo.png")], capture_output=True, text=True, timeout=60)
    assert named.returncode == 1 and "is a FIFO" in named.stderr
    listed = subprocess.run([*command, str(folder), "--recursive"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.startswith(str(folder / "226md.png"))
    for name, kind in [("fifo.png", "a FIFO"), ("dangling.png", "link"), ("loop.png", "link"), ("empty", "empty")]:
        assert any(name in line and kind in line for line in listed.stderr.splitlines()), (name, listed.stderr)
    smoke = str(ROOT / "configs" / "smoke.yaml")
    fit = subprocess.run([sys.executable, "main.py", "fit", "--config", smoke, "--data.data_dir", str(folder)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert fit.returncode == 1 and "fifo.png: is a FIFO" in fit.stderr and "Traceback" not in fit.stderr


def test_output_that_cannot_be_written_fails_in_one_line(weights: Path, tmp_path: Path) -> None:
    draw_captcha("226md").save(tmp_path / "226md.png")
    read = f"{sys.executable} -m captcha_ocr.cli read {tmp_path / '226md.png'} --model {weights}"
    for redirect in ("> /dev/full", ">&-"):
        result = subprocess.run(f"{read} {redirect}", shell=True, capture_output=True, text=True, timeout=60)
        assert result.returncode == 4 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    odd = tmp_path / "odd"
    odd.mkdir()
    draw_captcha("226md").save(
        odd / "caf\xe9-\udcff.png".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    )
    ascii_json = subprocess.run(f"{read.replace(str(tmp_path / '226md.png'), str(odd))} --json", shell=True,
                                capture_output=True, timeout=60,
                                env={**os.environ, "PYTHONIOENCODING": "ascii"})  # fmt: skip
    record = json.loads(ascii_json.stdout)
    assert ascii_json.returncode == 0 and record["file"].endswith("-\udcff.png")  # the name survives, escaped


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--data.label_pattern", "("], "is not a regular expression"),
        (["--data.label_pattern", "(?P<text>.+)"], "has no (?P<label>...) group"),
        (["--data.charset", "auto", "--data.label_pattern", "(?P<label>[a-z]+)"], "226md.png: file name does not"),
    ],
)
def test_bad_training_options_are_named(option: list[str], named: str, tmp_path: Path) -> None:
    for label in ("226md", "2b827"):
        draw_captcha(label).save(tmp_path / f"{label}.png")
    result = subprocess.run([sys.executable, "main.py", "fit", "--config", str(ROOT / "configs" / "smoke.yaml"),
                             "--data.data_dir", str(tmp_path), *option], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)  # fmt: skip
    assert result.returncode == 1 and named in result.stderr and "Traceback" not in result.stderr


def test_a_labels_csv_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    from captcha_ocr.data.dataset import read_labels_csv

    csv_file = tmp_path / "labels.csv"
    csv_file.write_bytes("file,label\ncafé.png,226md\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"{csv_file}: not UTF-8"):
        read_labels_csv(csv_file)


@pytest.mark.slow
def test_several_worker_processes_share_the_port_and_stop_on_sigterm(weights: Path, captcha: bytes) -> None:
    """serve --workers 2: each worker loads the model and answers on the one port; SIGTERM ends
    the supervisor and both workers."""
    with serve_process(weights, "--workers", "2", "--api-key", "k", ready_within=90) as (server, port):

        def read(_: int) -> httpx.Response:
            files = [("f", ("a.png", captcha))]
            return httpx.post(f"http://127.0.0.1:{port}/v1/read", headers={"X-API-Key": "k"}, files=files, timeout=30)

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(read, range(8)))
        assert {a.status_code for a in answers} == {200}
        assert len({a.json()["results"][0]["text"] for a in answers}) == 1  # every worker reads alike
        assert httpx.post(f"http://127.0.0.1:{port}/v1/read", files=[("f", ("a.png", captcha))]).status_code == 401
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    children = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True).stdout.split()
    assert children == []


def test_an_allowance_in_the_other_case_is_matched_and_one_without_letters_is_reported(reader, captcha) -> None:
    image = base64.b64encode(captcha).decode()
    with running(reader) as url:
        upper = httpx.post(f"{url}/ocr", data={"image": image, "charsets": "BCDEFGMNPWXY2345678"}).json()
        lower = httpx.post(f"{url}/ocr", data={"image": image}).json()
        digits = httpx.post(f"{url}/ocr", data={"image": image, "charsets": "0123456789"}).json()
        native = httpx.post(f"{url}/v1/read?allow=2345678", json={"images": [image]}).json()
        batch = httpx.post(f"{url}/ocr/batch", json={"images": [image], "charset_range": 0}).json()
    # The tiny model reads lower case only: upper-case charsets are its letters.
    assert upper["code"] == 200 and upper["data"] == lower["data"] and "warning" not in upper
    assert digits["code"] == 200 and "none of the model's letters" in digits["warning"]
    assert "none of the model's letters" in native["warning"] and "none of the model's letters" in batch["warning"]


def test_a_gzip_json_body_is_read_and_a_gzip_bomb_refused(reader, captcha) -> None:
    import gzip

    image = base64.b64encode(captcha).decode()
    packed = gzip.compress(json.dumps({"images": [image]}).encode())
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of spaces in 50 KB
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    with running(reader) as url:
        plain = httpx.post(f"{url}/v1/read", json={"images": [image]}).json()
        read = httpx.post(f"{url}/v1/read", content=packed, headers=headers)
        refused = httpx.post(f"{url}/v1/read", content=bomb, headers=headers)
        unknown = httpx.post(f"{url}/v1/read", content=packed, headers={**headers, "content-encoding": "br"})
    assert read.status_code == 200 and read.json()["results"] == plain["results"]
    assert refused.status_code == 413 and "once decompressed" in refused.json()["error"]
    assert unknown.status_code == 415
