"""Request bodies, bounded before they are parsed: the middleware that caps their size and the
request's time, and the form and JSON parsers that count parts before parsing them."""

import asyncio
import json
import re
import zlib

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData

from captcha_ocr.serving.service import ApiError, ReadingService

FORM_KINDS = ("multipart/form-data", "application/x-www-form-urlencoded")


def media_type(content_type: str) -> str:
    """A Content-Type header's media type, without its parameters, in lower case."""
    return content_type.split(";")[0].strip().lower()


def limit_answer(scope, status: int, message: str) -> JSONResponse:
    """A limit's answer, given before any route runs, in the shape of the route asked for: the
    form ``POST /ocr`` answers as ddddocr-fastapi, every failure in an HTTP 200 body ``{"code",
    "message"}``; every other route ``{"error"}`` with the status."""
    kind = media_type(dict(scope["headers"]).get(b"content-type", b"").decode("latin-1"))
    if scope["path"] == "/ocr" and kind in FORM_KINDS:
        return JSONResponse({"code": status, "message": message, "data": None})
    return JSONResponse({"error": message}, status_code=status)


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
        announced = dict(scope["headers"]).get(b"content-length")
        if announced is not None and announced.isdigit() and int(announced) > self.max_bytes:
            await limit_answer(scope, 413, f"request body over {self.max_bytes} bytes")(scope, receive, send)
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
            await limit_answer(scope, error.status, error.message)(scope, receive, send)


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
                answer = limit_answer(scope, 503, f"the request took longer than {self.seconds} s")
                answer.headers["Connection"] = "close"
                await answer(scope, receive, send)


def content_kind(request: Request) -> str:
    """The media type of the request body, without its parameters."""
    return media_type(request.headers.get("content-type", ""))


def content_encoding(request: Request) -> str:
    """The request body's Content-Encoding, in lower case (``identity`` when none is given)."""
    return request.headers.get("content-encoding", "identity").strip().lower()


def count_parts(body: bytes, content_type: str) -> int:
    """The number of fields of a form body, counted before it is parsed: the boundaries of a
    multipart body, the ``&``-separated pairs of a URL-encoded one. Media types and parameter
    names are case-insensitive; the boundary's value is not."""
    if not media_type(content_type).startswith("multipart/"):
        return body.count(b"&") + 1 if body else 0
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    if match is None:
        raise ApiError(400, "multipart/form-data without a boundary")
    return max(0, body.count(b"--" + match.group(1).encode("latin-1")) - 1)  # the closing delimiter too


async def read_form(request: Request, service: ReadingService, max_parts: int) -> FormData:
    """A form body (multipart or URL-encoded) parsed, its parts counted first: over ``max_parts``
    is 413, unparsed."""
    if content_encoding(request) != "identity":
        raise ApiError(415, "a form body must be sent uncompressed (JSON bodies may be gzip or deflate)")
    body = await request.body()  # bounded by BodyLimit, received within the request's deadline
    parts = count_parts(body, request.headers.get("content-type", ""))
    if parts > max_parts:
        raise ApiError(413, f"{parts} parts in one request, the limit is {max_parts}")
    limit = service.limits.max_body_bytes
    return await request.form(max_files=max_parts, max_fields=max_parts, max_part_size=limit)


def inflate(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """A ``gzip`` or ``deflate`` body decompressed, refused (413) past ``max_bytes`` of output
    however small the input (a compression bomb stops there)."""
    window = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    inflater = zlib.decompressobj(window)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        raise ApiError(400, f"the body is not valid {encoding} data") from None
    if len(data) > max_bytes:
        raise ApiError(413, f"request body over {max_bytes} bytes once decompressed")
    return data


async def read_json(request: Request, service: ReadingService) -> object:
    """The parsed JSON body (``Content-Encoding: gzip`` or ``deflate`` decompressed first), parsed
    off the event loop."""
    body = await request.body()
    encoding = content_encoding(request)
    if encoding not in ("identity", "gzip", "deflate"):
        raise ApiError(415, f"Content-Encoding {encoding!r}: a JSON body may be sent as is, gzip or deflate")
    if encoding != "identity":
        body = await service.run_blocking(inflate, body, encoding, service.limits.max_body_bytes)
    try:
        return await service.run_blocking(json.loads, body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        raise ApiError(400, "the body is not valid JSON (or is nested too deeply)") from None
