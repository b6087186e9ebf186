"""The HTTP protocol of ``captcha-ocr serve``: uvicorn's httptools protocol with a deadline on
each request's head.

uvicorn's keep-alive timeout covers idle connections only, and ``bodies.RequestDeadline`` starts
once the headers are in: a client that sends its request line and headers a byte a second holds
a connection open for as long as it likes (slowloris). Here the head of every request must be
complete within ``head_seconds`` of its first byte (of the connection's opening, for the first
request); else the connection is answered 408 and closed. Requests the parser refuses (a request
line of 100,000 characters, a malformed head) are answered in JSON like every other error, not
in uvicorn's plain text.
"""

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_SECONDS = 10.0


class HeadDeadlineProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection whose request head is not complete in time."""

    head_seconds = HEAD_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = self.loop.call_later(self.head_seconds, self._head_late)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.head_seconds, self._head_late)

    def on_headers_complete(self) -> None:
        self._cancel_head_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            message = f"the request's headers took longer than {self.head_seconds} s"
            self._answer_and_close(b"408 Request Timeout", message)

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(b"400 Bad Request", f"not a valid HTTP request: a request line or header too long, "
                               f"or a malformed head ({msg})")  # fmt: skip

    def _answer_and_close(self, status: bytes, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.transport.write(b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, len(body), body))  # fmt: skip
        self.transport.close()
