"""The request budget, before any route: a body over SESAME_SERVICE_MAX_BODY_BYTES is refused with 413 before it is
read (BodyLimit, an ASGI middleware), and the anonymous verify endpoint takes a token from its caller's bucket
(ClientBuckets) before it reads the body (429 when none is left)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from sesame.config import positive_env
from sesame.service.errors import error_response

# The largest legitimate body is a report sent to /v1/reports/verify: a few kilobytes of PDF. A mebibyte leaves
# room for any report while a body of megabytes is refused before it is read.
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The request budget; `from_env` reads SESAME_SERVICE_MAX_BODY_BYTES, SESAME_SERVICE_VERIFY_PER_SECOND and
    SESAME_SERVICE_VERIFY_BURST."""

    max_body_bytes: int = MAX_BODY_BYTES
    verify_per_second: float = 2.0  # anonymous verifications a client may make per second, sustained
    verify_burst: int = 20  # ... and at once
    verify_clients: int = 10_000  # clients remembered at most (memory stays bounded under many addresses)

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            max_body_bytes=_positive_env("MAX_BODY_BYTES", int, cls.max_body_bytes),
            verify_per_second=_positive_env("VERIFY_PER_SECOND", float, cls.verify_per_second),
            verify_burst=_positive_env("VERIFY_BURST", int, cls.verify_burst),
        )


def _positive_env(name: str, kind: type, default):
    return positive_env(f"SESAME_SERVICE_{name}", kind, default)


def _too_large_message(limit: int) -> str:
    return f"the request body is larger than {limit} bytes, the most this service accepts (a report is far smaller)"


class BodyTooLarge(StarletteHTTPException):
    """Raised from the body's stream once it passes the limit. An HTTPException, so that FastAPI passes it on from
    its body parsing (any other error there becomes a 400) and the app answers it like any HTTP error."""

    def __init__(self, limit: int):
        super().__init__(413, _too_large_message(limit), headers={"Connection": "close"})


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


class BodyLimit:
    """Pure ASGI middleware, outside the routes and so before any body parsing and any key check (FastAPI reads a
    JSON body before it runs the dependencies that authenticate). A declared Content-Length over the limit is
    answered 413 before a byte is read; a streamed (chunked) body is counted as it arrives and stopped at the chunk
    that passes the limit, none of which is handed on."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received, started = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:  # nothing left to answer with
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send) -> None:
        response = error_response(413, "too_large", _too_large_message(self.max_bytes), headers={"Connection": "close"})
        await response(scope, receive, send)


class ClientBuckets:
    """A token bucket per client address: `burst` calls at once, then `per_second`. The least recently seen
    clients are forgotten beyond `max_clients`, and any client idle long enough to have a full bucket again (a
    forgotten client starts with a full one, so that loses nothing)."""

    def __init__(self, per_second: float, burst: int, max_clients: int = 10_000, clock=time.monotonic):
        self.per_second, self.burst, self.max_clients, self.clock = per_second, burst, max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when), oldest first
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the call may go ahead (its token is taken), else the seconds until the client has a token."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.per_second)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.per_second
            self._buckets[client] = (tokens - 1 if not wait else tokens, now)
            self._forget(now)
        return wait

    def _forget(self, now: float) -> None:
        refill = self.burst / self.per_second
        while self._buckets:
            _, then = next(iter(self._buckets.values()))
            if len(self._buckets) <= self.max_clients and now - then < refill:
                break
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(request: Request) -> str:
    # behind a proxy, uvicorn puts the forwarded address here for the proxies it trusts (FORWARDED_ALLOW_IPS)
    return request.client.host if request.client else "unknown"
