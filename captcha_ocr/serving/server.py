"""The reader over HTTP: ``captcha-ocr serve`` (FastAPI + uvicorn).

    captcha-ocr serve --port 8000                       # http://127.0.0.1:8000/ (page), /docs (API)
    curl -F files=@226md.png http://127.0.0.1:8000/v1/read

Requests are decoded in a thread pool; the decoded images of all requests waiting at a moment go
through the model together (``Batcher``), so concurrent requests share forward passes. Limits
(body size, images and pixels per request, pixels per image, one deadline for the whole request,
body upload included) and an optional API key make it fit for a public endpoint: a request is
counted before any work is done for it, so that no request stalls the others, and every error is
JSON with a fitting status code.
"""

import asyncio
import base64
import binascii
import importlib.metadata
import io
import json
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from captcha_ocr.reading.images import DEFAULT_MAX_PIXELS, check_pixels
from captcha_ocr.reading.reader import CaptchaReader, Reading


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    Args:
        max_body_bytes: Largest request body (413 above it).
        max_pixels: Largest image, width x height, checked before decoding (413 above it).
        max_images: Most images in one request (413 above it), counted before any is decoded.
        timeout_seconds: Longest time a request may take, receiving its body included (503
            after it, or the connection closed when the client is still sending).
        max_request_pixels: Most pixels of all the images of one request together, checked
            before decoding any (413 above it).
    """

    max_body_bytes: int = 8 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int = 64
    timeout_seconds: float = 10.0
    max_request_pixels: int = 16_000_000


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Batcher:
    """Runs the model on every decoded image waiting at a moment, one forward pass at a time.

    While a batch runs, new images queue up; the next pass takes all of them (up to
    ``max_batch``), so concurrent requests are batched without waiting on a timer.
    """

    def __init__(self, reader: CaptchaReader, max_batch: int = 128) -> None:
        self.reader = reader
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.batches = 0
        self.images = 0

    async def read(self, arrays: list[np.ndarray]) -> list[Reading]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in arrays]
        for array, future in zip(arrays, futures, strict=True):
            self.queue.put_nowait((array, future))
        return list(await asyncio.gather(*futures))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await self.queue.get()]
            while len(waiting) < self.max_batch and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
            live = [(array, future) for array, future in waiting if not future.done()]  # timed-out requests
            if not live:
                continue
            batch = np.stack([array for array, _ in live])  # (B, 1, H, W)
            try:
                readings = await loop.run_in_executor(self.executor, self.reader.read_arrays, batch)
            except Exception as error:  # the model failed: every waiting request hears of it
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            self.images += len(live)
            for (_, future), reading in zip(live, readings, strict=True):
                if not future.done():
                    future.set_result(reading)


class BodyLimit:
    """ASGI middleware: a request body larger than ``max_bytes`` is answered 413, whether its
    size is announced (Content-Length) or only found while reading it (then the ``ApiError``
    raised from ``receive`` reaches the application's handler)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = JSONResponse({"error": f"request body over {self.max_bytes} bytes"}, status_code=413)
        announced = dict(scope["headers"]).get(b"content-length")
        if announced is not None and announced.isdigit() and int(announced) > self.max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise ApiError(413, f"request body over {self.max_bytes} bytes")
            return message

        try:
            await self.app(scope, counting_receive, send)
        except ApiError as error:
            await JSONResponse({"error": error.message}, status_code=error.status)(scope, receive, send)


class RequestDeadline:
    """ASGI middleware: the whole request, receiving its body included, gets ``seconds``. A
    request still running then is answered 503, or, when the client is still sending (a slow or
    short-changed upload), its connection is closed; either way its work is cancelled."""

    def __init__(self, app, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracking_send), self.seconds)
        except asyncio.TimeoutError:
            if not started:
                message = {"error": f"the request took longer than {self.seconds} s"}
                await JSONResponse(message, status_code=503, headers={"Connection": "close"})(scope, receive, send)


BASE64_SPACE = re.compile(rb"\s+")
URL_SAFE = bytes.maketrans(b"-_", b"+/")


def decode_base64(text: str) -> bytes:
    """The bytes of a base64 image: standard or URL-safe alphabet, line breaks and missing
    padding allowed, with or without a ``data:image/...;base64,`` prefix."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        packed = BASE64_SPACE.sub(b"", text.encode("ascii")).translate(URL_SAFE)
        return base64.b64decode(packed + b"=" * (-len(packed) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "not valid base64") from None


def open_image(content: bytes, limits: Limits) -> Image.Image:
    """Open one image file (its header only), refusing images over ``limits.max_pixels``."""
    try:
        image = Image.open(io.BytesIO(content))
    except UnidentifiedImageError:
        raise ApiError(415, "not an image file (no image format Pillow reads)") from None
    except Exception as error:
        raise ApiError(415, f"not an image file ({type(error).__name__})") from None
    try:
        check_pixels(image, limits.max_pixels)
    except OSError as error:
        raise ApiError(413, str(error)) from None
    return image


def prepare(reader: CaptchaReader, image: Image.Image) -> np.ndarray:
    """Decode and preprocess one opened image."""
    try:
        return reader.preprocess(image)
    except Exception as error:  # truncated or corrupt data found while decoding
        reason = str(error).split(" <")[0] or type(error).__name__  # no object reprs in a message
        raise ApiError(415, f"cannot decode the image: {reason}") from None


def count_parts(body: bytes, content_type: str) -> int:
    """The number of fields of a form body, counted before it is parsed: the boundaries of a
    multipart body, the ``&``-separated pairs of a URL-encoded one."""
    if not content_type.startswith("multipart/"):
        return body.count(b"&") + 1 if body else 0
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ApiError(400, "multipart/form-data without a boundary")
    return max(0, body.count(b"--" + match.group(1).encode("latin-1")) - 1)  # the closing delimiter too


def reading_record(reading: Reading) -> dict:
    return {
        "text": reading.text,
        "confidence": round(reading.confidence, 6),
        "characters": [round(c, 6) for c in reading.characters],
        "rejected": reading.rejected,
    }


DEFAULT_LIMITS = Limits()
OCR_FORM_PARTS = 8  # /ocr: one image (file or base64) and its options


def create_app(
    reader: CaptchaReader, model_name: str, limits: Limits = DEFAULT_LIMITS, api_key: str | None = None
) -> FastAPI:
    """The HTTP application around a loaded reader.

    Args:
        reader: The model, loaded once.
        model_name: How ``GET /v1/model`` names it.
        limits: Per-request limits.
        api_key: When set, every request but ``/``, ``/healthz`` and the API docs must carry it
            as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.
    """
    batcher = Batcher(reader)
    decoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")  # bounds decoding memory too
    expected_key = api_key.encode("utf-8") if api_key is not None else None

    async def lifespan(app: FastAPI):
        worker = asyncio.create_task(batcher.run())
        yield
        worker.cancel()
        batcher.executor.shutdown(wait=False)
        decoder.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="captcha_ocr",
        summary="Read text captchas with a residual CNN + BiLSTM trained from scratch.",
        version=importlib.metadata.version("captcha_ocr"),
        lifespan=lifespan,
    )
    app.state.batcher = batcher

    def authorised(request: Request) -> None:
        if expected_key is None:
            return
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        # Header values arrive as latin-1 text: their bytes are what the client sent (UTF-8 for a
        # non-ASCII key), compared with the key's UTF-8 bytes.
        if not secrets.compare_digest(given.encode("latin-1", errors="replace"), expected_key):
            raise ApiError(401, "a valid API key is required (X-API-Key header)")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return JSONResponse({"error": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal error"}, status_code=500)  # no stack trace leaves the server

    def check_count(count: int) -> None:
        if count > limits.max_images:
            raise ApiError(413, f"{count} images in one request, the limit is {limits.max_images}")
        if not count:
            raise ApiError(422, "no images in the request")

    def open_all(contents: list[bytes | ApiError]) -> list[Image.Image | ApiError]:
        """Open every image's header; refuse the request when they hold too many pixels together."""
        opened = []
        for content in contents:
            try:
                opened.append(content if isinstance(content, ApiError) else open_image(content, limits))
            except ApiError as error:
                opened.append(error)
        pixels = sum(i.size[0] * i.size[1] for i in opened if isinstance(i, Image.Image))
        if pixels > limits.max_request_pixels:
            raise ApiError(413, f"{pixels} pixels in one request, the limit is {limits.max_request_pixels}")
        return opened

    async def read_contents(contents: list[bytes | ApiError]) -> list[dict]:
        """Read image files in order; an undecodable one gets its own error entry."""
        check_count(len(contents))
        loop = asyncio.get_running_loop()
        opened = await loop.run_in_executor(decoder, open_all, contents)

        async def one(image: Image.Image | ApiError) -> np.ndarray | ApiError:
            if isinstance(image, ApiError):
                return image
            try:
                return await loop.run_in_executor(decoder, prepare, reader, image)
            except ApiError as error:
                return error

        prepared = await asyncio.gather(*(one(i) for i in opened))
        arrays = [p for p in prepared if isinstance(p, np.ndarray)]
        readings = iter(await batcher.read(arrays) if arrays else [])
        return [
            {"index": i, **reading_record(next(readings))}
            if isinstance(p, np.ndarray)
            else {"index": i, "error": p.message}
            for i, p in enumerate(prepared)
        ]

    async def multipart_form(request: Request, max_parts: int) -> FormData:
        """A form body (multipart or URL-encoded) parsed, its parts counted first: over
        ``max_parts`` is 413, unparsed."""
        body = await request.body()  # bounded by BodyLimit, received within the request's deadline
        parts = count_parts(body, request.headers.get("content-type", ""))
        if parts > max_parts:
            raise ApiError(413, f"{parts} parts in one request, the limit is {max_parts}")
        return await request.form(max_files=max_parts, max_fields=max_parts, max_part_size=limits.max_body_bytes)

    async def json_body(request: Request) -> object:
        """The parsed JSON body, parsed off the event loop."""
        body = await request.body()
        try:
            return await asyncio.get_running_loop().run_in_executor(decoder, json.loads, body)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            raise ApiError(400, "the body is not valid JSON (or is nested too deeply)") from None

    @app.post("/v1/read", dependencies=[Depends(authorised)])
    async def read(request: Request) -> dict:
        """Read images sent as multipart files (any field name, several allowed) or as JSON
        ``{"images": ["<base64>", ...]}``. Answers one entry per image, in order: ``text``,
        ``confidence``, per-character ``characters``, or ``error`` for an image that cannot be read."""
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind == "multipart/form-data":
            form = await multipart_form(request, limits.max_images)
            contents: list = [await value.read() for _, value in form.multi_items() if hasattr(value, "read")]
        elif kind == "application/json":
            payload = await json_body(request)
            images = payload.get("images") if isinstance(payload, dict) else None
            if not isinstance(images, list):
                raise ApiError(422, 'JSON must be {"images": ["<base64>", ...]}')
            check_count(len(images))
            if not all(isinstance(i, str) for i in images):
                raise ApiError(422, 'JSON must be {"images": ["<base64>", ...]}')
            contents = [_decode_or_error(text) for text in images]
        else:
            raise ApiError(415, "send multipart/form-data files or application/json base64 images")
        return {"model": model_name, "results": await read_contents(contents)}

    @app.post("/ocr", dependencies=[Depends(authorised)])
    async def ocr(request: Request) -> JSONResponse:
        """Drop-in for clients of ddddocr's FastAPI server: form field ``file`` (upload) or
        ``image`` (base64, ``data:image/...;base64,`` prefix allowed); answers
        ``{"code", "message", "data"}`` with the text as ``data``."""
        form = await multipart_form(request, OCR_FORM_PARTS)
        upload, text = form.get("file"), form.get("image")
        if hasattr(upload, "read"):
            content: bytes | ApiError = await upload.read()
        elif isinstance(text, str) and text:
            content = _decode_or_error(text)
        else:
            return JSONResponse({"code": 400, "message": "Either file or image must be provided", "data": None})
        (result,) = await read_contents([content])
        if "error" in result:
            return JSONResponse({"code": 400, "message": result["error"], "data": None})
        return JSONResponse({"code": 200, "message": "Success", "data": result["text"]})

    @app.get("/healthz")
    async def healthz() -> dict:
        """200 whenever the server answers: the model is loaded before it accepts any request."""
        return {"status": "ok"}

    @app.get("/v1/model", dependencies=[Depends(authorised)])
    async def model() -> dict:
        """The model's name, alphabet, label lengths and input size."""
        tokenizer = reader.tokenizer
        return {
            "name": model_name,
            "charset": tokenizer.charset,
            "min_length": tokenizer.min_length,
            "max_length": tokenizer.max_length,
            "input": {
                "height": reader.height,
                "width": reader.width,
                "crop_to_text": reader.crop_to_text,
                "normalize": reader.normalize,
            },
            "limits": asdict(limits),
        }

    @app.get("/v1/stats", dependencies=[Depends(authorised)])
    async def stats() -> dict:
        """Images read and forward passes run since the start: their ratio is the mean batch size."""
        return {"images": batcher.images, "batches": batcher.batches}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return resources.files("captcha_ocr.serving").joinpath("static/index.html").read_text()

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(RequestDeadline, seconds=limits.timeout_seconds)  # outermost: the deadline covers the body
    return app


def _decode_or_error(text: str) -> bytes | ApiError:
    try:
        return decode_base64(text)
    except ApiError as error:
        return error
