"""No raw upstream id in any line the service logs.

An id (`U` + 8 digits) can reach the service's log through a message or, more often, an exception's text and
traceback (a `KeyError('U00000008')`, a load error quoting a row). `RawIdFilter` rewrites each record before any
handler formats it: the message, the traceback and any stack text, every id replaced by its pseudonymous
`user_key:<hex>` (the key the audit log records, so an operator can still match a failure to its audit line), or
by `U********` without the secret. The traceback keeps its exception types and frames; only the ids go.

A filter on a logger sees only the records made on that very logger (not those of its children), so
`hide_raw_ids` puts one filter on every logger the service's records are made on: `sesame.service` and its module
loggers, and uvicorn's (whose error logger prints the traceback of any exception that leaves the app). serve()
also puts it on its console handler, for a module logger made after the app was created.
"""

from __future__ import annotations

import logging
import re

from sesame.privacy import user_key

# U + 8 digits, and anything longer of the kind (an id with a digit appended is still the id); any case, and
# Unicode digits too: a look-alike of an id identifies the person as well as the id does.
RAW_ID = re.compile(r"[Uu]\d{8,}")
MASK = "U********"
SERVICE_LOGGER = "sesame.service"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class RawIdFilter(logging.Filter):
    """Replaces raw ids in a record's message and exception text; lets every record through."""

    def __init__(self, secret: str | None = None):
        super().__init__()
        self._secret = secret

    def scrub(self, text: str) -> str:
        if self._secret is None:
            return RAW_ID.sub(MASK, text)
        return RAW_ID.sub(lambda m: f"user_key:{user_key(m.group(0), self._secret)}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message, formatted = record.getMessage(), True
        except Exception:  # noqa: BLE001 - a filter must not raise into the caller; a handler would print the args
            message, formatted = f"{record.msg!s} {record.args!r}", False
        clean = self.scrub(message)
        if clean != message or not formatted:  # else msg and args stay as they are (uvicorn colours from them)
            record.msg, record.args = clean, None
            record.__dict__.pop("color_message", None)  # uvicorn's coloured copy, formatted with the raw args
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # the text stands for the exception from here on: a formatter prints exc_text when it is set, and
            # with the exception object gone none can format its raw text again
            record.exc_text, record.exc_info = self.scrub(record.exc_text), None
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


def hide_raw_ids(secret: str | None) -> RawIdFilter:
    """Install one RawIdFilter (replacing any earlier one) on the service's loggers and uvicorn's; returns it."""
    names = [
        SERVICE_LOGGER,
        *sorted(n for n in logging.root.manager.loggerDict if n.startswith(f"{SERVICE_LOGGER}.")),
        *UVICORN_LOGGERS,
    ]
    hider = RawIdFilter(secret)
    for name in names:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RawIdFilter)]:
            logger.removeFilter(old)
        logger.addFilter(hider)
    return hider
