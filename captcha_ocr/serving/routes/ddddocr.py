"""ddddocr's two HTTP APIs, so that their clients switch by changing the URL alone.

``POST /ocr`` answers by the body's content type:

- a form (multipart or URL-encoded), as ddddocr-fastapi takes it: ``file`` (an upload) or
  ``image`` (base64), ``charsets``, ``probability``, ``png_fix``, and this project's ``length``
  (``5`` or ``4-6``: read texts of that many characters); answered
  ``{"code", "message", "data"}``, always with HTTP 200, as ddddocr-fastapi does;
- JSON, as ddddocr 1.6.1's own API (``python -m ddddocr api``) takes it: ``image``,
  ``charset_range``, ``probability``, ``png_fix`` (and ``length``); answered ``{"success", "message", "data":
  {"text", "probability"}}``.

``POST /ocr/batch`` takes ``{"images": [...]}`` with the same options (ddddocr 1.6.1 has no batch
route; this one answers in its shape); ``GET /health`` is ddddocr's health check. ``png_fix`` is
accepted and always in effect: transparency is laid over white before reading. Colour filters
(``color_filter_colors``, ``colors``) are not supported and ignored.
"""

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from captcha_ocr.reading.reader import Reading
from captcha_ocr.serving.bodies import FORM_KINDS, content_kind, read_form, read_json
from captcha_ocr.serving.deps import Service, require_api_key
from captcha_ocr.serving.schemas import BatchOcrAnswer, FormOcrAnswer, HealthAnswer, JsonOcrAnswer, OcrData, Probability
from captcha_ocr.serving.service import ApiError, ReadingService, ReadOptions, Upload, length_option

router = APIRouter(tags=["ddddocr"])

FORM_PARTS = 8  # one image (file or base64) and its options
DIGITS, LOWER, UPPER = "0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# ddddocr's documented set_ranges presets (7, "its default charset less letters and digits", has no
# counterpart in a model of letters and digits).
CHARSET_PRESETS = {0: DIGITS, 1: LOWER, 2: UPPER, 3: LOWER + UPPER, 4: LOWER + DIGITS, 5: UPPER + DIGITS,
                   6: LOWER + UPPER + DIGITS}  # fmt: skip
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}

OCR_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"}, "image": {"type": "string"},
                "charsets": {"type": "string"}, "probability": {"type": "boolean"},
                "png_fix": {"type": "boolean"}, "length": {"type": "string"}}}},
            "application/json": {"schema": {"type": "object", "required": ["image"], "properties": {
                "image": {"type": "string"}, "charset_range": {"type": ["integer", "string"]},
                "probability": {"type": "boolean"}, "png_fix": {"type": "boolean"},
                "length": {"type": ["integer", "string", "array"]}}}},
        }
    }
}  # fmt: skip


def charset_range(value: object) -> str | None:
    """The characters a ``charset_range`` allows: a preset number, or the characters themselves."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ApiError(422, "charset_range must be a preset number 0-6 or a string of characters")
    if isinstance(value, int):
        if value not in CHARSET_PRESETS:
            raise ApiError(422, f"charset_range presets are 0-6, got {value}")
        return CHARSET_PRESETS[value]
    if not value:
        raise ApiError(422, "charset_range is an empty string")
    return value


def flag(value: object, name: str) -> bool:
    """A boolean option sent as JSON or as form text ("true", "1", "false", ...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    if value is None:
        return False
    raise ApiError(422, f"{name} must be true or false")


def ocr_data(reading: Reading, probability: bool, classes: list[str]) -> OcrData:
    if probability:  # as ddddocr: the probabilities instead of the text
        return OcrData(text=None, probability=Probability.of(reading, classes))
    return OcrData(text=reading.text)


async def read_one(service: ReadingService, content: Upload, options: ReadOptions) -> Reading:
    (outcome,) = await service.read([content], options)
    if isinstance(outcome, ApiError):
        raise outcome
    return outcome


async def form_ocr(request: Request, service: ReadingService) -> FormOcrAnswer:
    form = await read_form(request, service, FORM_PARTS)
    upload, text = form.get("file"), form.get("image")
    if isinstance(upload, UploadFile):
        content: Upload = await upload.read()
    elif isinstance(text, str) and text:
        content = text
    else:
        return FormOcrAnswer(code=400, message="Either file or image must be provided")
    charsets = form.get("charsets")
    probability = flag(form.get("probability"), "probability")
    allow = charsets if isinstance(charsets, str) and charsets else None
    options = ReadOptions(allow, probability, length_option(form.get("length")))
    reading = await read_one(service, content, options)
    data = Probability.of(reading, service.reader.classes) if probability else reading.text
    return FormOcrAnswer(code=200, message="Success", data=data, warning=service.allowance_warning(options))


async def json_options(request: Request, service: ReadingService) -> tuple[dict, ReadOptions]:
    payload = await read_json(request, service)
    if not isinstance(payload, dict):
        raise ApiError(422, "the body must be a JSON object")
    flag(payload.get("png_fix"), "png_fix")
    options = ReadOptions(charset_range(payload.get("charset_range")), flag(payload.get("probability"), "probability"),
                          length_option(payload.get("length")))  # fmt: skip
    return payload, options


@router.post(
    "/ocr",
    dependencies=[Depends(require_api_key)],
    openapi_extra=OCR_BODY,
    response_model=FormOcrAnswer | JsonOcrAnswer,
)
async def ocr(request: Request, service: Service) -> FormOcrAnswer | JsonOcrAnswer | JSONResponse:
    """Read one image as ddddocr-fastapi (form) or ddddocr's own API (JSON) does."""
    kind = content_kind(request)
    if kind in FORM_KINDS:
        try:
            return await form_ocr(request, service)
        except ApiError as error:  # ddddocr-fastapi reports every failure in the body
            return FormOcrAnswer(code=error.status, message=error.message)
    if kind != "application/json":
        raise ApiError(415, "send a form (file or image) or JSON (image)")
    try:
        payload, options = await json_options(request, service)
        if not isinstance(payload.get("image"), str):
            raise ApiError(422, 'JSON must hold "image": "<base64>"')
        reading = await read_one(service, payload["image"], options)
    except ApiError as error:
        return JSONResponse(JsonOcrAnswer(success=False, message=error.message).model_dump(), error.status)
    data = ocr_data(reading, options.distribution, service.reader.classes)
    return JsonOcrAnswer(success=True, message="OCR succeeded", data=data, warning=service.allowance_warning(options))


@router.post("/ocr/batch", dependencies=[Depends(require_api_key)], response_model=BatchOcrAnswer)
async def ocr_batch(request: Request, service: Service) -> BatchOcrAnswer | JSONResponse:
    """Read several base64 images, ``{"images": [...], "charset_range", "probability"}``, in
    ddddocr's answer shape: ``data`` in order, null for an image that cannot be read."""
    try:
        payload, options = await json_options(request, service)
        images = service.base64_images(payload.get("images"), 'JSON must hold "images": ["<base64>", ...]')
        outcomes = await service.read(images, options)
    except ApiError as error:
        return JSONResponse(BatchOcrAnswer(success=False, message=error.message).model_dump(), error.status)
    classes = service.reader.classes
    data = [ocr_data(o, options.distribution, classes) if isinstance(o, Reading) else None for o in outcomes]
    errors = {i: o.message for i, o in enumerate(outcomes) if isinstance(o, ApiError)}
    return BatchOcrAnswer(success=not errors, message="OCR succeeded" if not errors else f"{len(errors)} image(s) "
                          "could not be read", data=data, errors=errors,
                          warning=service.allowance_warning(options))  # fmt: skip


@router.get("/health")
async def health() -> HealthAnswer:
    """ddddocr's health check."""
    return HealthAnswer(status="healthy", timestamp=time.time())
