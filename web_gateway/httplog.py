"""What the gateway logs of HTTP itself: a peer's malformed request is one short line, rate-limited.

aiohttp logs a request its parser refuses (a control character in a header, a bad request line) as
an ERROR with a traceback, and an access line for the 400 besides: a peer could write a dozen
lines a request. That is the peer's error, not ours: one WARNING line says what was wrong (at most
``BURST`` at once, ``RATE`` a second after that, with a count of those left out), the access line
for it is dropped, and tracebacks stay for our own bugs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

from tcp_server.protocol.limits import TokenBucket

SERVER_LOGGER = "web_gateway.http"
ACCESS_LOGGER = "web_gateway.access"
RATE = 1.0
BURST = 10
MAX_REASON = 120


class BadRequestFilter(logging.Filter):
    """On the server logger: a parser's refusal becomes one short, rate-limited WARNING line."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.bucket = TokenBucket(RATE, BURST, clock())
        self.skipped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or not 400 <= (exc.code or 400) < 500:
            return True  # not a peer's malformed request: as it was (our bug keeps its traceback)
        if not self.bucket.take(self.clock()):
            self.skipped += 1
            return False
        reason = (str(exc.message or "").strip().splitlines() or ["bad request"])[0].rstrip(":")[:MAX_REASON]
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg = "malformed HTTP request from %s: %s%s"
        record.args = (remote, reason, f" ({self.skipped} more not logged)" if self.skipped else "")
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        self.skipped = 0
        return True


class NoBadRequestAccess(logging.Filter):
    """On the access logger: no line for the 400 of a request the parser refused (the warning says it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        first = getattr(record, "first_request_line", "")
        return not (isinstance(first, str) and first.startswith("UNKNOWN ")
                    and str(getattr(record, "response_status", "")) == "400")


def server_logger() -> logging.Logger:
    """The logger the gateway's aiohttp server writes to, with :class:`BadRequestFilter` on it (once)."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, BadRequestFilter) for f in logger.filters):
        logger.addFilter(BadRequestFilter())
    return logger


def access_logger() -> logging.Logger:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, NoBadRequestAccess) for f in logger.filters):
        logger.addFilter(NoBadRequestAccess())
    return logger
