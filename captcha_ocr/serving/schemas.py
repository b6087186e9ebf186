"""The server's answers as pydantic models, so that ``/docs`` documents every response."""

from pydantic import BaseModel, Field

from captcha_ocr.reading.answers import answer_record
from captcha_ocr.reading.reader import Reading

WARNING = "an allowance that leaves none of the model's letters or digits: its readings cannot hold them"


class ErrorAnswer(BaseModel):
    """Every error of the native API, whatever its status code."""

    error: str


class ImageReading(BaseModel):
    """One image of a ``/v1/read`` request: its reading, or why it could not be read."""

    index: int = Field(description="the image's place in the request")
    text: str | None = None
    confidence: float | None = Field(None, description="the model's probability of the whole text")
    characters: list[float] | None = Field(None, description="the probability of each character")
    rejected: bool | None = Field(None, description="confidence below the server's --min-confidence")
    distribution: list[list[float]] | None = Field(
        None, description="with probability=true: every class's probability at each step (classes in /v1/model)"
    )
    answer: int | None = Field(None, description="with answer=arithmetic: the value the reading asks for")
    answer_error: str | None = Field(None, description="why the reading has no answer")
    error: str | None = None

    @classmethod
    def of(cls, index: int, outcome: Reading | Exception, answer: str | None = None) -> "ImageReading":
        if not isinstance(outcome, Reading):
            return cls(index=index, error=getattr(outcome, "message", str(outcome)))
        answered = answer_record(outcome.text, answer) if answer else {}
        return cls(index=index, **outcome.to_dict(), **answered)


class ReadAnswer(BaseModel):
    model: str
    results: list[ImageReading]
    warning: str | None = Field(None, exclude_if=lambda value: value is None, description=WARNING)


class InputSize(BaseModel):
    height: int
    width: int
    crop_to_text: bool
    normalize: bool


class ModelAnswer(BaseModel):
    name: str
    charset: str
    classes: list[str] = Field(description="the columns of a reading's distribution: '' (no character), the charset")
    min_length: int
    max_length: int
    input: InputSize
    limits: dict[str, int | float]


class StatsAnswer(BaseModel):
    images: int = Field(description="images read since the start")
    batches: int = Field(description="forward passes run: images / batches is the mean batch size")


class Status(BaseModel):
    status: str


class HealthAnswer(BaseModel):
    """ddddocr's ``GET /health``."""

    status: str
    timestamp: float


class Probability(BaseModel):
    """ddddocr's ``classification(probability=True)`` result."""

    text: str
    probabilities: list[list[float]] = Field(description="every class's probability at each step of the reading")
    charset: list[str] = Field(description="the classes: '' (no character), then the model's charset")
    confidence: float = Field(description="the model's probability of the whole text")

    @classmethod
    def of(cls, reading: Reading, classes: list[str]) -> "Probability":
        record = reading.to_dict()
        return cls(text=reading.text, probabilities=record["distribution"], charset=classes,
                   confidence=record["confidence"])  # fmt: skip


class FormOcrAnswer(BaseModel):
    """ddddocr-fastapi's answer to a form ``POST /ocr``: ``data`` is the text, or with
    ``probability`` the probabilities; ``code`` 200, or 400 / 500 with a message."""

    code: int
    message: str
    data: str | Probability | None = None
    warning: str | None = Field(None, exclude_if=lambda value: value is None, description=WARNING)


class OcrData(BaseModel):
    text: str | None = Field(description="the reading; null when probability was asked for, as in ddddocr")
    probability: Probability | None = None


class JsonOcrAnswer(BaseModel):
    """ddddocr's own API's answer to a JSON ``POST /ocr``."""

    success: bool
    message: str
    data: OcrData | None = None
    warning: str | None = Field(None, exclude_if=lambda value: value is None, description=WARNING)


class BatchOcrAnswer(BaseModel):
    """The answer to ``POST /ocr/batch``: one entry per image, in order (null for an image that
    cannot be read, its reason in ``errors``)."""

    success: bool
    message: str
    data: list[OcrData | None] = Field(default_factory=list)
    errors: dict[int, str] = Field(default_factory=dict, description="index of an unreadable image: why")
    warning: str | None = Field(None, exclude_if=lambda value: value is None, description=WARNING)
