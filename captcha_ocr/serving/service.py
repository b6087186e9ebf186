"""What the routes call: a ``ReadingService`` that owns the model's batcher, the decoding threads
and the limits, and turns image files into readings. No HTTP here beyond ``ApiError``."""

import asyncio
import base64
import binascii
import io
import re
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from captcha_ocr.reading.images import DEFAULT_MAX_PIXELS, check_pixels
from captcha_ocr.reading.reader import CaptchaReader, Length, Reading, parse_length


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


DEFAULT_LIMITS = Limits()


class ApiError(Exception):
    """An error answered with ``status`` and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ReadOptions:
    """How a request wants its images read (``CaptchaReader.read``'s ``allow``, ``distribution``
    and ``length``)."""

    allow: str | None = None
    distribution: bool = False
    length: Length | None = None


DEFAULT_OPTIONS = ReadOptions()


def length_option(value: object) -> Length | None:
    """A request's ``length`` (query, form field or JSON value), refused with 422 when malformed."""
    try:
        return parse_length(value)
    except ValueError as error:
        raise ApiError(422, str(error)) from None


class Batcher:
    """Runs the model on every decoded image waiting at a moment, one forward pass at a time.

    While a batch runs, new images queue up; the next pass takes all of them (up to
    ``max_batch``), so concurrent requests are batched without waiting on a timer. Each request's
    options apply to its own images when the pass's output is decoded.
    """

    def __init__(self, reader: CaptchaReader, max_batch: int = 128) -> None:
        self.reader = reader
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[np.ndarray, ReadOptions, asyncio.Future]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.batches = 0
        self.images = 0

    async def read(self, arrays: list[np.ndarray], options: ReadOptions) -> list[Reading]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in arrays]
        for array, future in zip(arrays, futures, strict=True):
            self.queue.put_nowait((array, options, future))
        return list(await asyncio.gather(*futures))

    def _read_batch(self, loaded: list[np.ndarray], options: list[ReadOptions]) -> list[Reading]:
        """One forward pass over the images as ``CaptchaReader.load`` made them (prepared by the
        model's graph first, when it has one); each group of images with the same options decoded
        apart."""
        logits = self.reader.logits(self.reader.batch(loaded))
        readings: dict[int, Reading] = {}
        for option in set(options):
            rows = [i for i, o in enumerate(options) if o == option]
            decoded = self.reader.decode(logits[rows], option.allow, option.distribution, option.length)
            readings.update(zip(rows, decoded, strict=True))
        return [readings[row] for row in range(len(options))]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await self.queue.get()]
            while len(waiting) < self.max_batch and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
            live = [item for item in waiting if not item[2].done()]  # timed-out requests dropped
            if not live:
                continue
            loaded = [array for array, _, _ in live]
            try:
                readings = await loop.run_in_executor(
                    self.executor, self._read_batch, loaded, [options for _, options, _ in live]
                )
            except Exception as error:  # the model failed: every waiting request hears of it
                for _, _, future in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            self.images += len(live)
            for (_, _, future), reading in zip(live, readings, strict=True):
                if not future.done():
                    future.set_result(reading)


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


Upload = bytes | str  # an image file, or its base64 text (decoded off the event loop, once counted)


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
    """Decode one opened image, and prepare it unless the model's graph does (``CaptchaReader.load``)."""
    try:
        return reader.load(image)
    except Exception as error:  # truncated or corrupt data found while decoding
        reason = str(error).split(" <")[0] or type(error).__name__  # no object reprs in a message
        raise ApiError(415, f"cannot decode the image: {reason}") from None


class ReadingService:
    """The reader behind the routes: images are opened and decoded (and prepared, unless the
    model's graph prepares them in the batcher's pass) on ``decode_threads`` threads (which also
    bounds the memory decoding takes), then read by the batcher.

    Args:
        reader: The model, loaded once.
        model_name: How ``GET /v1/model`` names it.
        limits: Per-request limits.
        api_key: When set, the key every protected route requires.
        decode_threads: Threads that open and decode (and prepare) images.
    """

    def __init__(
        self,
        reader: CaptchaReader,
        model_name: str,
        limits: Limits = DEFAULT_LIMITS,
        api_key: str | None = None,
        decode_threads: int = 2,
    ) -> None:
        self.reader = reader
        self.model_name = model_name
        self.limits = limits
        self.api_key = api_key
        self.batcher = Batcher(reader)
        self.decoder = ThreadPoolExecutor(max_workers=decode_threads, thread_name_prefix="decode")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The batcher's task for the application's lifetime (its lifespan)."""
        worker = asyncio.create_task(self.batcher.run())
        yield
        worker.cancel()
        self.batcher.executor.shutdown(wait=False)
        self.decoder.shutdown(wait=False, cancel_futures=True)

    def check_count(self, count: int) -> None:
        if count > self.limits.max_images:
            raise ApiError(413, f"{count} images in one request, the limit is {self.limits.max_images}")
        if not count:
            raise ApiError(422, "no images in the request")

    def allowance_warning(self, options: ReadOptions) -> str | None:
        """What an ``allow`` takes away that the model reads: every letter, or every digit (the
        answer would be wrong for any captcha that holds one), said beside the answer."""
        if options.allow is None or not (masked := self.reader.tokenizer.masked_kinds(options.allow)):
            return None
        charset = self.reader.tokenizer.charset
        return f"the allowed characters leave none of the model's {' or '.join(masked)} ({charset})"

    def check_options(self, options: ReadOptions) -> None:
        """Refuse (422) an ``allow`` that leaves the model no character, or a ``length`` it cannot
        read, before any image is read."""
        try:
            if options.allow is not None:
                self.reader.tokenizer.allowed(options.allow)
            self.reader.lengths(options.length)
        except ValueError as error:
            raise ApiError(422, str(error)) from None

    async def run_blocking(self, function, *args):
        """``function(*args)`` on a decoding thread (parsing a body, say), off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.decoder, function, *args)

    def base64_images(self, value: object, shape: str) -> list[str]:
        """The base64 texts of a JSON body's image list, counted (``check_count``) before anything
        else is done with them; ``shape`` names the expected JSON in the 422 of anything else."""
        if not isinstance(value, list):
            raise ApiError(422, shape)
        self.check_count(len(value))
        if not all(isinstance(text, str) for text in value):
            raise ApiError(422, shape)
        return value

    def _open_all(self, contents: list[Upload]) -> list[Image.Image | ApiError]:
        """Decode the base64 entries and open every image's header; refuse the request when they
        hold too many pixels together."""
        opened: list[Image.Image | ApiError] = []
        for content in contents:
            try:
                opened.append(open_image(decode_base64(content) if isinstance(content, str) else content, self.limits))
            except ApiError as error:
                opened.append(error)
        pixels = sum(i.size[0] * i.size[1] for i in opened if isinstance(i, Image.Image))
        if pixels > self.limits.max_request_pixels:
            raise ApiError(413, f"{pixels} pixels in one request, the limit is {self.limits.max_request_pixels}")
        return opened

    async def read(self, contents: Sequence[Upload], options: ReadOptions = DEFAULT_OPTIONS) -> list:
        """Read image files (or their base64 texts) in order: a ``Reading`` for each, or the
        ``ApiError`` of an image that cannot be read (the others are read all the same). The count
        is checked first, then every entry is decoded off the event loop."""
        self.check_count(len(contents))
        self.check_options(options)
        opened = await self.run_blocking(self._open_all, contents)

        async def one(image: Image.Image | ApiError) -> np.ndarray | ApiError:
            if isinstance(image, ApiError):
                return image
            try:
                return await self.run_blocking(prepare, self.reader, image)
            except ApiError as error:
                return error

        prepared = await asyncio.gather(*(one(i) for i in opened))
        arrays = [p for p in prepared if isinstance(p, np.ndarray)]
        readings = iter(await self.batcher.read(arrays, options) if arrays else [])
        return [next(readings) if isinstance(p, np.ndarray) else p for p in prepared]
