"""The reader over HTTP: ``captcha-ocr serve`` (FastAPI + uvicorn).

    captcha-ocr serve --port 8000                       # http://127.0.0.1:8000/ (page), /docs (API)
    curl -F files=@226md.png http://127.0.0.1:8000/v1/read

Requests are decoded in a thread pool; the decoded images of all requests waiting at a moment go
through the model together (``service.Batcher``), so concurrent requests share forward passes.
Limits (body size, images and pixels per request, pixels per image, one deadline for the whole
request, body upload included) and an optional API key make it fit for a public endpoint: a
request is counted before any work is done for it, so that no request stalls the others, and
every error is JSON with a fitting status code.
"""

import importlib.metadata

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from captcha_ocr.reading.reader import CaptchaReader
from captcha_ocr.serving.bodies import BodyLimit, RequestDeadline
from captcha_ocr.serving.routes import ddddocr, native, status
from captcha_ocr.serving.service import DEFAULT_LIMITS, ApiError, Limits, ReadingService


def install_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": message}`` with its status code; no stack trace leaves the server."""

    def answer(status_code: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status_code)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return answer(error.status, error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return answer(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return answer(422, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        return answer(500, "internal error")


def create_app(
    reader: CaptchaReader, model_name: str, limits: Limits = DEFAULT_LIMITS, api_key: str | None = None
) -> FastAPI:
    """The HTTP application around a loaded reader.

    Args:
        reader: The model, loaded once.
        model_name: How ``GET /v1/model`` names it.
        limits: Per-request limits.
        api_key: When set, every request but ``/``, the health checks and the API docs must carry
            it as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.
    """
    service = ReadingService(reader, model_name, limits, api_key)
    app = FastAPI(
        title="captcha_ocr",
        summary="Read text captchas with a residual CNN + BiLSTM trained from scratch.",
        version=importlib.metadata.version("captcha_ocr"),
        lifespan=lambda app: service.running(),
    )
    app.state.service = service
    install_error_handlers(app)
    for router in (native.router, ddddocr.router, status.router):
        app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(RequestDeadline, seconds=limits.timeout_seconds)  # outermost: the deadline covers the body
    return app
