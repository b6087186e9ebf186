"""The reader over HTTP: ``captcha-ocr serve`` (FastAPI + uvicorn).

    captcha-ocr serve --port 8000                       # http://127.0.0.1:8000/ (page), /docs (API)
    curl -F files=@226md.png http://127.0.0.1:8000/v1/read

Requests are decoded in a thread pool; the decoded images of all requests waiting at a moment go
through the model together (``Batcher``), so concurrent requests share forward passes. Limits
(body size, pixels per image, images per request, time per request) and an optional API key
make it fit for a public endpoint; every error is JSON with a fitting status code.
"""

import asyncio
import base64
import binascii
import io
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from captcha_ocr.reader import CaptchaReader, Reading


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    Args:
        max_body_bytes: Largest request body (413 above it).
        max_pixels: Largest image, width x height, checked before decoding (413 above it).
        max_images: Most images in one request (413 above it).
        timeout_seconds: Longest time a request may take (503 after it).
    """

    max_body_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 4_000_000
    max_images: int = 64
    timeout_seconds: float = 10.0


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


def decode_base64(text: str) -> bytes:
    """The bytes of a base64 image, with or without a ``data:image/...;base64,`` prefix."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "not valid base64") from None


def prepare(reader: CaptchaReader, content: bytes, limits: Limits) -> np.ndarray:
    """Decode and preprocess one image file, refusing images over ``limits.max_pixels``."""
    try:
        image = Image.open(io.BytesIO(content))
    except Exception as error:
        raise ApiError(415, f"not an image file: {error}") from None
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ApiError(413, f"image of {width} x {height} pixels, over the limit of {limits.max_pixels}")
    try:
        return reader.preprocess(image)
    except Exception as error:  # truncated or corrupt data found while decoding
        raise ApiError(415, f"cannot decode the image: {error}") from None


def reading_record(reading: Reading) -> dict:
    return {
        "text": reading.text,
        "confidence": round(reading.confidence, 6),
        "characters": [round(c, 6) for c in reading.characters],
        "rejected": reading.rejected,
    }


DEFAULT_LIMITS = Limits()


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

    async def lifespan(app: FastAPI):
        worker = asyncio.create_task(batcher.run())
        yield
        worker.cancel()
        batcher.executor.shutdown(wait=False)

    app = FastAPI(
        title="captcha_ocr",
        summary="Read text captchas with a residual CNN + BiLSTM trained from scratch.",
        version="1",
        lifespan=lifespan,
    )
    app.state.batcher = batcher

    def authorised(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not secrets.compare_digest(given.encode(), api_key.encode()):
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

    async def read_contents(contents: list[bytes | ApiError]) -> list[dict]:
        """Read image files in order; an undecodable one gets its own error entry."""
        if len(contents) > limits.max_images:
            raise ApiError(413, f"{len(contents)} images in one request, the limit is {limits.max_images}")
        if not contents:
            raise ApiError(422, "no images in the request")

        async def one(content: bytes | ApiError) -> np.ndarray | ApiError:
            if isinstance(content, ApiError):
                return content
            try:
                return await run_in_threadpool(prepare, reader, content, limits)
            except ApiError as error:
                return error

        prepared = await asyncio.gather(*(one(c) for c in contents))
        arrays = [p for p in prepared if isinstance(p, np.ndarray)]
        readings = iter(await batcher.read(arrays) if arrays else [])
        return [
            {"index": i, **reading_record(next(readings))}
            if isinstance(p, np.ndarray)
            else {"index": i, "error": p.message}
            for i, p in enumerate(prepared)
        ]

    async def with_timeout(work):
        try:
            return await asyncio.wait_for(work, limits.timeout_seconds)
        except asyncio.TimeoutError:
            raise ApiError(503, f"the request took longer than {limits.timeout_seconds} s") from None

    @app.post("/v1/read", dependencies=[Depends(authorised)])
    async def read(request: Request) -> dict:
        """Read images sent as multipart files (any field name, several allowed) or as JSON
        ``{"images": ["<base64>", ...]}``. Answers one entry per image, in order: ``text``,
        ``confidence``, per-character ``characters``, or ``error`` for an image that cannot be read."""
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind == "multipart/form-data":
            form = await request.form(max_files=1_000_000)  # the body size bounds them; max_images answers 413
            contents: list = [await value.read() for _, value in form.multi_items() if hasattr(value, "read")]
        elif kind == "application/json":
            try:
                payload = await request.json()
            except ValueError:
                raise ApiError(400, "the body is not valid JSON") from None
            images = payload.get("images") if isinstance(payload, dict) else None
            if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
                raise ApiError(422, 'JSON must be {"images": ["<base64>", ...]}')
            contents = [_decode_or_error(text) for text in images]
        else:
            raise ApiError(415, "send multipart/form-data files or application/json base64 images")
        return {"model": model_name, "results": await with_timeout(read_contents(contents))}

    @app.post("/ocr", dependencies=[Depends(authorised)])
    async def ocr(request: Request) -> JSONResponse:
        """Drop-in for clients of ddddocr's FastAPI server: form field ``file`` (upload) or
        ``image`` (base64, ``data:image/...;base64,`` prefix allowed); answers
        ``{"code", "message", "data"}`` with the text as ``data``."""
        form = await request.form(max_files=2)
        upload, text = form.get("file"), form.get("image")
        if hasattr(upload, "read"):
            content: bytes | ApiError = await upload.read()
        elif isinstance(text, str) and text:
            content = _decode_or_error(text)
        else:
            return JSONResponse({"code": 400, "message": "Either file or image must be provided", "data": None})
        (result,) = await with_timeout(read_contents([content]))
        if "error" in result:
            return JSONResponse({"code": 400, "message": result["error"], "data": None})
        return JSONResponse({"code": 200, "message": "Success", "data": result["text"]})

    @app.get("/healthz")
    async def healthz() -> dict:
        """200 once the model is loaded and the batcher runs (the server accepts no request before)."""
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
        return resources.files("captcha_ocr").joinpath("static/index.html").read_text()

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    return app


def _decode_or_error(text: str) -> bytes | ApiError:
    try:
        return decode_base64(text)
    except ApiError as error:
        return error
