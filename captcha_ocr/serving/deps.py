"""What routes depend on: the service of the application, and the API key when one is set."""

import secrets
from typing import Annotated

from fastapi import Depends, Request

from captcha_ocr.serving.service import ApiError, ReadingService


async def get_service(request: Request) -> ReadingService:
    return request.app.state.service


Service = Annotated[ReadingService, Depends(get_service)]  # a route's parameter: the application's service


async def require_api_key(request: Request) -> None:
    """Let a request through when the server has no key, or the request carries it as
    ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (the scheme in any case); else 401."""
    expected = request.app.state.service.api_key
    if expected is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    given = request.headers.get("x-api-key") or (token.strip() if scheme.lower() == "bearer" else "")
    # Header values arrive as latin-1 text: their bytes are what the client sent (UTF-8 for a
    # non-ASCII key), compared with the key's UTF-8 bytes.
    if not secrets.compare_digest(given.encode("latin-1", errors="replace"), expected.encode("utf-8")):
        raise ApiError(401, "a valid API key is required (X-API-Key header)")
