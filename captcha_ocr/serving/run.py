"""Running the server: the listening socket, and one process or several worker processes that
share nothing but it (``captcha-ocr serve`` parses its arguments and calls ``serve``).

A worker process gets its settings as JSON in ``$CAPTCHA_OCR_SERVE_SETTINGS`` and loads its own
model (``app_from_environment``).
"""

import json
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from captcha_ocr.reading.reader import Backend, CaptchaReader
from captcha_ocr.serving.app import create_app
from captcha_ocr.serving.protocol import HeadDeadlineProtocol
from captcha_ocr.serving.service import Limits

SETTINGS_VARIABLE = "CAPTCHA_OCR_SERVE_SETTINGS"  # how `serve --workers N` hands its settings to each worker
API_KEY_VARIABLE = "CAPTCHA_OCR_API_KEY"  # the API key, when no --api-key is given


@dataclass(frozen=True)
class ServerSettings:
    """What every worker needs to build the same application."""

    model: str | None
    backend: Backend
    threads: int | None
    name: str
    min_confidence: float
    limits: Limits
    api_key: str | None
    prepare_in_graph: bool = False

    def reader(self) -> CaptchaReader:
        return CaptchaReader(
            self.model, self.backend, num_threads=self.threads, min_confidence=self.min_confidence,
            prepare_in_graph=self.prepare_in_graph,
        )  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServerSettings":
        values = json.loads(text)
        return cls(**{**values, "limits": Limits(**values["limits"])})


def api_key_from_environment(given: str | None) -> str | None:
    """``given``, else ``$CAPTCHA_OCR_API_KEY``; ``None`` when neither is set (or both are empty)."""
    return given or os.environ.get(API_KEY_VARIABLE) or None


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, bound before the server starts so that an address in
    use is an ``OSError`` of the caller's, not a worker's."""
    listening = socket.create_server((host, port))
    # asyncio sets TCP_NODELAY only on sockets it made; without it small responses wait ~40 ms
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listening


def serve(
    settings: ServerSettings, reader: CaptchaReader, listening: socket.socket, workers: int, log_level: str,
    shutdown_grace: float,
) -> None:  # fmt: skip
    """Serve on ``listening`` until stopped: with ``reader`` in this process, or with ``workers``
    processes that each load their own from ``settings``."""
    options: dict[str, Any] = {"log_level": log_level, "timeout_graceful_shutdown": shutdown_grace,
                               "http": HeadDeadlineProtocol}  # fmt: skip
    if workers == 1:
        app = create_app(reader, settings.name, settings.limits, settings.api_key)
        uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[listening])
        return
    os.environ[SETTINGS_VARIABLE] = settings.to_json()  # read by each worker process
    config = uvicorn.Config("captcha_ocr.serving.run:app_from_environment", factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[listening]).run()


def app_from_environment() -> FastAPI:
    """The application of one worker process of ``captcha-ocr serve --workers N``: each loads its
    own model, from the settings in ``$CAPTCHA_OCR_SERVE_SETTINGS``."""
    settings = ServerSettings.from_json(os.environ[SETTINGS_VARIABLE])
    return create_app(settings.reader(), settings.name, settings.limits, settings.api_key)
