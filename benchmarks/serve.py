"""Load test of ``captcha-ocr serve`` on this machine's loopback.

    python benchmarks/serve.py [--model crnn] [--backend onnx] [--seconds 5] [--clients 1 4 16] [--peer]

Starts the server as its own process on 127.0.0.1 (and stops it), measures the time from start
to a ready ``/healthz``, then drives ``POST /v1/read`` with a bounded number of concurrent
clients for a bounded time: single-image requests, then 64-image requests. Prints requests/s,
images/s, p50 / p99 latency and the server's mean batch size per run, with the in-process
reader's images/s (same model, same PNG files, batch 64) as the reference.

Then "under attack": while one client sends, back to back, the two requests that used to stall
every other client (a JSON body of 1,000,000 entries, a form of 127,000 tiny parts), another
client's ``GET /healthz`` and single-image reads are timed, against the same without the attack.

With ``--peer``, last: ``POST /ocr`` side by side with a ddddocr-fastapi-like app around ddddocr
(``ddddocr_fastapi_app.py``; needs ``pip install ddddocr``), one server at a time, the same aiohttp
client and the same images, and the ratio of requests/s. The clients are aiohttp coroutines in one
process: light enough to leave the cores to the server.
"""

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import aiohttp
import httpx

from captcha_ocr.data.sources import find_data_dir
from captcha_ocr.data.split import fold_test_files
from captcha_ocr.reading.listing import image_files

DEFAULT_DATA = find_data_dir(Path(__file__).resolve().parents[1])
try:
    DDDDOCR = metadata.version("ddddocr")
except metadata.PackageNotFoundError:
    DDDDOCR = "(not installed)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(command: list[str], port: int, ready_path: str = "/healthz") -> tuple[subprocess.Popen, float]:
    """Start a server process; return it and the seconds until ``ready_path`` answered 200."""
    start = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while time.perf_counter() - start < 60:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=0.5).status_code == 200:
                return server, time.perf_counter() - start
        except httpx.TransportError:
            time.sleep(0.02)
    server.kill()
    raise RuntimeError("the server was not ready within 60 s")


def native_form(files: list[bytes], index: int, per_request: int) -> aiohttp.FormData:
    """``POST /v1/read``: ``per_request`` PNG files as multipart ``files``."""
    form = aiohttp.FormData()
    for k in range(per_request):
        form.add_field("files", files[(index + k) % len(files)], filename="c.png", content_type="image/png")
    return form


def ddddocr_form(data: bytes, charsets: str) -> aiohttp.FormData:
    """``POST /ocr`` as ddddocr-fastapi's clients send it: the file and the charset restriction."""
    form = aiohttp.FormData()
    form.add_field("file", data, filename="c.png", content_type="image/png")
    form.add_field("charsets", charsets)
    return form


async def drive(url: str, make_form: Callable[[int], aiohttp.FormData], clients: int, seconds: float,
                answers: list | None = None) -> dict:  # fmt: skip
    """``clients`` concurrent clients (aiohttp: a light client that leaves the cores to the server),
    each sending ``make_form(i)`` for i = 0, 1, ... back to back for ``seconds``; with ``answers``,
    ``(i, JSON answer)`` of every request is appended to it."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def client_loop(offset: int) -> None:
            nonlocal errors
            index = offset
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.post(url, data=make_form(index)) as response:
                    answer = await response.json()
                    errors += response.status != 200
                latencies.append(time.perf_counter() - start)
                if answers is not None:
                    answers.append((index, answer))
                index += clients

        start = time.perf_counter()
        await asyncio.gather(*(client_loop(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "errors": errors,
    }


def side_by_side(files: list[bytes], labels: list[str], model: str, backend: str, clients: list[int],
                 seconds: float, workers: int = 1, options: tuple[str, ...] = ()) -> None:  # fmt: skip
    """The same client and images against ``captcha-ocr serve`` and the ddddocr-fastapi-like app
    (``ddddocr_fastapi_app.py``, ddddocr's output restricted to the data set's alphabet), one
    server at a time: single-image ``POST /ocr`` requests; requests/s, latency, share read right."""
    charsets = "".join(sorted(set("".join(labels))))
    peer = [sys.executable, str(Path(__file__).with_name("ddddocr_fastapi_app.py"))]
    ours = [sys.executable, "-m", "captcha_ocr.cli", "serve", "--model", model, "--backend", backend,
            "--workers", str(workers), *options]  # fmt: skip
    rates: dict[tuple[str, int], float] = {}
    print("\n| server | clients | requests/s | p50 ms | p99 ms | right | errors |\n|---|---|---|---|---|---|---|")
    for name, command in (("captcha-ocr serve", ours), (f"ddddocr-fastapi-like, ddddocr {DDDDOCR}", peer)):
        port = free_port()
        server, _ = start_server([*command, "--port", str(port)], port, ready_path="/docs")
        try:
            for count in clients:
                answers: list = []
                make_form = lambda i: ddddocr_form(files[i % len(files)], charsets)  # noqa: E731
                result = asyncio.run(drive(f"http://127.0.0.1:{port}/ocr", make_form, count, seconds, answers))
                right = sum(answer.get("data") == labels[i % len(labels)] for i, answer in answers) / len(answers)
                rates[name.split(",")[0], count] = result["requests_per_s"]
                print(f"| {name} | {count} | {result['requests_per_s']:.0f} | {result['p50_ms']:.1f} | "
                      f"{result['p99_ms']:.1f} | {100 * right:.1f} % | {result['errors']} |")  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=10)
    for count in clients:
        ratio = rates["captcha-ocr serve", count] / rates["ddddocr-fastapi-like", count]
        print(f"requests/s at {count} client(s): captcha-ocr serve / ddddocr-fastapi-like = {ratio:.1f}x")


ATTACKS = {
    "1,000,000 JSON entries": (b'{"images": [' + b",".join([b'"a"'] * 1_000_000) + b"]}", "application/json"),
    "127,000 form parts": (
        b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\nA\r\n' * 127_000 + b"--b--\r\n",
        "multipart/form-data; boundary=b",
    ),
}


async def under_attack(url: str, files: list[bytes], attack: tuple[bytes, str] | None, seconds: float) -> dict:
    """p50 / p99 of ``/healthz`` and of single-image reads by one client, while another sends
    ``attack`` (body, content type) back to back (``None``: no attack)."""
    deadline = time.perf_counter() + seconds
    health: list[float] = []
    reads: list[float] = []
    refused = 0
    async with httpx.AsyncClient(timeout=60) as attacker, httpx.AsyncClient(timeout=60) as client:

        async def attack_loop() -> None:
            nonlocal refused
            while attack is not None and time.perf_counter() < deadline:
                response = await attacker.post(f"{url}/v1/read", content=attack[0],
                                               headers={"content-type": attack[1]})  # fmt: skip
                refused += response.status_code == 413

        async def client_loop() -> None:
            index = 0
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                await client.get(f"{url}/healthz")
                health.append(time.perf_counter() - start)
                start = time.perf_counter()
                await client.post(f"{url}/v1/read", files=[("files", ("c.png", files[index % len(files)]))])
                reads.append(time.perf_counter() - start)
                index += 1
                await asyncio.sleep(0.01)

        await asyncio.gather(attack_loop(), client_loop())
    health.sort()
    reads.sort()
    return {"health_p50_ms": 1000 * statistics.median(health), "health_p99_ms": 1000 * percentile(health, 0.99),
            "read_p50_ms": 1000 * statistics.median(reads), "read_p99_ms": 1000 * percentile(reads, 0.99),
            "refused": refused}  # fmt: skip


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def in_process_images_per_s(model: str, backend: str, files: list[bytes], seconds: float, in_graph: bool) -> float:
    import io

    from PIL import Image

    from captcha_ocr.reading.reader import CaptchaReader

    reader = CaptchaReader(model, backend=backend, prepare_in_graph=in_graph)
    reader.read([Image.open(io.BytesIO(f)) for f in files[:64]])  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        reader.read([Image.open(io.BytesIO(f)) for f in files[done % len(files) :][:64] or files[:64]])
        done += 64
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="crnn")
    parser.add_argument("--backend", default="onnx", choices=("onnx", "torch"))
    parser.add_argument(
        "--data-dir",
        "--data_dir",
        dest="data_dir",
        type=Path,
        default=DEFAULT_DATA,
        help="the data set: its fold-0 test images are sent",
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run (bounded)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (serve --workers)")
    parser.add_argument("--prepare-in-graph", action="store_true", help="the server prepares in the .onnx file's graph")
    parser.add_argument("--peer", action="store_true", help="then /ocr side by side with a ddddocr-fastapi-like app")
    parser.add_argument("--peer-clients", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    paths = fold_test_files(image_files(args.data_dir))  # fold 0's test part: no shipped model trained on it
    files = [p.read_bytes() for p in paths]
    if not files:
        sys.exit(f"serve benchmark: no PNG files in {args.data_dir}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; "
          f"server and clients on this machine")  # fmt: skip
    options = ("--prepare-in-graph",) if args.prepare_in_graph else ()
    reference = in_process_images_per_s(args.model, args.backend, files, args.seconds, args.prepare_in_graph)
    print(f"in-process reader ({args.model}, {args.backend}, batch 64, PNG decoding): {reference:.0f} images/s")
    port = free_port()
    command = [sys.executable, "-m", "captcha_ocr.cli", "serve", "--port", str(port), "--model", args.model,
               "--backend", args.backend, "--workers", str(args.workers), *options]  # fmt: skip
    server, ready = start_server(command, port)
    print(f"start to ready: {ready:.2f} s")
    url = f"http://127.0.0.1:{port}"
    try:
        print("| clients | images / request | requests/s | images/s | p50 ms | p99 ms | mean batch | errors |")
        print("|---|---|---|---|---|---|---|---|")
        for per_request in (1, 64):
            for clients in args.clients:
                before = httpx.get(f"{url}/v1/stats").json()
                make_form = lambda i, n=per_request: native_form(files, i * n, n)  # noqa: E731
                result = asyncio.run(drive(f"{url}/v1/read", make_form, clients, args.seconds))
                after = httpx.get(f"{url}/v1/stats").json()
                batch = (after["images"] - before["images"]) / max(1, after["batches"] - before["batches"])
                rates = f"{result['requests_per_s']:.0f} | {result['requests_per_s'] * per_request:.0f}"
                latency = f"{result['p50_ms']:.1f} | {result['p99_ms']:.1f}"
                cells = [clients, per_request, rates, latency, f"{batch:.1f}", result["errors"]]
                print("| " + " | ".join(map(str, cells)) + " |")
        print("\n| under attack | attack requests refused (413) | /healthz p50 ms | /healthz p99 ms | read p50 ms "
              "| read p99 ms |\n|---|---|---|---|---|---|")  # fmt: skip
        for name, attack in [("none", None), *ATTACKS.items()]:
            result = asyncio.run(under_attack(url, files, attack, args.seconds))
            print(f"| {name} | {result['refused']} | {result['health_p50_ms']:.1f} | {result['health_p99_ms']:.1f} | "
                  f"{result['read_p50_ms']:.1f} | {result['read_p99_ms']:.1f} |")  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    if args.peer:
        labels = [p.stem for p in paths]
        side_by_side(files, labels, args.model, args.backend, args.peer_clients, args.seconds, args.workers, options)


if __name__ == "__main__":
    main()
