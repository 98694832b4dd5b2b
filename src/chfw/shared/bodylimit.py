"""The request body size limit of chfw's HTTP apps (the intake, the receiver), as ASGI middleware.

One implementation for every route and every method, so no handler has to
remember to bound what it reads (a sign-in form read with ``request.body()``
would otherwise buffer whatever a client streams at it):

- a declared ``Content-Length`` over the limit is answered 413 before the
  application runs (the body is never read);
- a body without one (chunked) is counted as it is read, and the read that
  passes the limit raises ``HTTPException(413)`` from ``receive``, which
  FastAPI passes through its body parsing untouched and answers as usual: the
  rest is never buffered;
- a 413, and any answer given before the request's body has been read to its
  end (a route that ignores the body), closes the connection, so the server
  does not go on reading what the client is still sending.

Malformed framing (a ``Content-Length`` that is not a number, two different
ones, both it and chunked encoding) never gets this far: the HTTP parser
answers 400.

The receiver's alert POST is answered ahead of FastAPI's middleware (it is the
hot path) and reads its body with :func:`read_within` and its own limit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_CLOSE = (b"connection", b"close")


class BodyTooLarge(Exception):
    """The body passed the limit; ``size`` is what had been read (or declared) by then."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"body exceeds {limit} bytes")
        self.size = size
        self.limit = limit


def declared_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The request's ``Content-Length``, or None when it declares none (chunked)."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


async def read_within(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None if the client went away first.

    Raises :class:`BodyTooLarge` as soon as what has arrived passes ``limit``:
    the rest is never read.
    """
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            raise BodyTooLarge(len(body), limit)
        if not message.get("more_body", False):
            return bytes(body)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, on every route and method."""

    def __init__(self, app: App, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self) -> str:
        return f"body exceeds {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope["headers"])
        if declared is not None and declared > self.max_bytes:
            await _too_large(send, self._detail())
            return
        received = 0
        body_done = declared == 0 or (
            declared is None and not any(n == b"transfer-encoding" for n, _ in scope["headers"])
        )

        async def limited() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._detail(), headers={"connection": "close"})
                body_done = body_done or not message.get("more_body", False)
            return message

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_done:
                # Unread body left on the connection: close it rather than read on.
                headers = list(message.get("headers", []))
                if _CLOSE not in headers:
                    message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        await self.app(scope, limited, closing)


async def _too_large(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        _CLOSE,
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
