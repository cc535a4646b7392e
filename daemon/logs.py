"""Structured logs: events with fields, JSON lines when not on a terminal, secrets taken out.

Everything goes through one stdlib handler with a structlog ``ProcessorFormatter``, so the
records of libraries (APScheduler, httpx) pass the same redaction as our own events.
Exceptions are rendered without local variables: locals are where secrets hide.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from stores.redaction import Redactor

#: Libraries that log every request URL (which, for Telegram, holds the bot token) at INFO,
#: or narrate what our own job.* events already say.
#: The anthropic SDK logs every request's body (transcript text) at DEBUG.
_CHATTY = (
    "httpx",
    "httpcore",
    "httpx2",
    "httpcore2",
    "anthropic",
    "urllib3",
    "chromadb.telemetry",
    "apscheduler",
    # python-telegram-bot logs every API call's parameters (message texts) at DEBUG.
    "telegram",
)


class RedactProcessor:
    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {key: self.redactor.value(value) for key, value in event_dict.items()}


def configure(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
    *,
    colors: bool = True,
) -> None:
    """``colors=False`` (``NO_COLOR`` is set) keeps escape codes out of a terminal's logs too."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    redact = RedactProcessor(redactor or Redactor())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Processor]
    if use_json:
        renderer = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            redact,
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = [
            structlog.processors.format_exc_info,
            redact,
            structlog.dev.ConsoleRenderer(colors=colors and stream.isatty()),
        ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def wants_color(environ: Mapping[str, str]) -> bool:
    """https://no-color.org: ``NO_COLOR`` set to anything but the empty string means none."""
    return not environ.get("NO_COLOR")


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
