"""The HTTP protocol of ``captcha-ocr serve``: uvicorn's httptools protocol with a deadline on
each request's head.

uvicorn's keep-alive timeout covers idle connections only, and ``bodies.RequestDeadline`` starts
once the headers are in: a client that sends its request line and headers a byte a second holds
a connection open for as long as it likes (slowloris). Here the head of every request must be
complete within ``head_seconds`` of its first byte (of the connection's opening, for the first
request); else the connection is answered 408 and closed.
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
        if self.transport.is_closing():
            return
        body = json.dumps({"error": f"the request's headers took longer than {self.head_seconds} s"}).encode()
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))  # fmt: skip
        self.transport.close()
