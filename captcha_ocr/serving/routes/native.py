"""The native API: ``POST /v1/read`` and what describes the server, ``/v1/model`` and ``/v1/stats``."""

from dataclasses import asdict
from enum import Enum

from fastapi import APIRouter, Depends, Request

from captcha_ocr.reading.answers import ANSWERS
from captcha_ocr.serving.bodies import content_kind, read_form, read_json
from captcha_ocr.serving.deps import Service, require_api_key
from captcha_ocr.serving.schemas import ImageReading, InputSize, ModelAnswer, ReadAnswer, StatsAnswer
from captcha_ocr.serving.service import ApiError, ReadOptions, Upload, length_option

# what ?answer= may ask for: one member per entry of the table (built at import, so mypy sees no members)
Answer = Enum("Answer", {name: name for name in ANSWERS}, type=str)  # type: ignore[misc]

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], tags=["native"])

JSON_SHAPE = 'JSON must be {"images": ["<base64>", ...]}'
READ_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
            "application/json": {"schema": {"type": "object", "required": ["images"], "properties": {
                "images": {"type": "array", "items": {"type": "string", "description": "base64 image file"}}}}},
        }
    }
}  # fmt: skip


@router.post("/read", openapi_extra=READ_BODY, response_model_exclude_none=True)
async def read(
    request: Request,
    service: Service,
    allow: str | None = None,
    probability: bool = False,
    answer: Answer | None = None,
    length: str | None = None,
) -> ReadAnswer:
    """Read images sent as multipart files (any field name, several allowed) or as JSON
    ``{"images": ["<base64>", ...]}``. Answers one entry per image, in order: ``text``,
    ``confidence``, per-character ``characters``, or ``error`` for an image that cannot be read.
    ``?allow=0123456789`` reads only those characters; ``?probability=true`` adds every class's
    probability at each step; ``?length=5`` or ``?length=4-6`` reads texts of that many
    characters (default: the lengths the model was trained on); ``?answer=arithmetic`` adds the
    value of a reading such as ``12+7=?`` (``answer``, or ``answer_error`` when the reading is not
    arithmetic)."""
    options = ReadOptions(allow, probability, length_option(length))
    kind = content_kind(request)
    if kind == "multipart/form-data":
        form = await read_form(request, service, service.limits.max_images)
        contents: list[Upload] = [await value.read() for _, value in form.multi_items() if hasattr(value, "read")]
    elif kind == "application/json":
        payload = await read_json(request, service)
        contents = list(service.base64_images(payload.get("images") if isinstance(payload, dict) else None, JSON_SHAPE))
    else:
        raise ApiError(415, "send multipart/form-data files or application/json base64 images")
    outcomes = await service.read(contents, options)
    results = [ImageReading.of(i, outcome, answer and answer.value) for i, outcome in enumerate(outcomes)]
    return ReadAnswer(model=service.model_name, results=results, warning=service.allowance_warning(options))


@router.get("/model")
async def model(service: Service) -> ModelAnswer:
    """The model's name, alphabet, label lengths and input size, and the server's limits."""
    reader = service.reader
    tokenizer = reader.tokenizer
    return ModelAnswer(
        name=service.model_name,
        charset=tokenizer.charset,
        classes=reader.classes,
        min_length=tokenizer.min_length,
        max_length=tokenizer.max_length,
        input=InputSize(
            height=reader.spec.height,
            width=reader.spec.width,
            crop_to_text=reader.spec.crop_to_text,
            normalize=reader.spec.normalize,
        ),
        limits=asdict(service.limits),
    )


@router.get("/stats")
async def stats(service: Service) -> StatsAnswer:
    """Images read and forward passes run since the start: their ratio is the mean batch size
    (with ``serve --workers N``, those of the worker process that answers)."""
    return StatsAnswer(images=service.batcher.images, batches=service.batcher.batches)
