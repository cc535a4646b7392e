from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
import structlog

from daemon import logs
from stores.redaction import MASK, Redactor

BOT_TOKEN = "7123456789:AAH4x-Zp9Qw3rT5yU7iO9pL1kJ3hG5fD7sA"
API_KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _configured(fmt: str, secrets: list[str] | None = None) -> io.StringIO:
    stream: io.StringIO = _TTY() if fmt == "console" else io.StringIO()
    logs.configure("debug", fmt, Redactor(secrets or []), stream=stream)  # type: ignore[arg-type]
    return stream


@pytest.mark.parametrize(
    "text",
    [
        f"GET https://api.telegram.org/bot{BOT_TOKEN}/getUpdates",
        f"key={API_KEY}",
        "Authorization: Bearer abcdefghijklmnop1234",
        "OPENCLAW_INFRA_ANTHROPIC_API_KEY=whatever-value-123",
        f"the token is {BOT_TOKEN.split(':', 1)[0]}:{BOT_TOKEN.split(':', 1)[1]}",
    ],
)
def test_secret_shapes_are_masked(text: str) -> None:
    masked = Redactor().text(text)
    assert MASK in masked
    for secret in (BOT_TOKEN, API_KEY, "abcdefghijklmnop1234", "whatever-value-123"):
        assert secret not in masked


def test_configured_secret_values_are_masked_anywhere() -> None:
    redactor = Redactor(["correct-horse-battery"])
    value: dict[str, Any] = {"a": ["x correct-horse-battery y", ("correct-horse-battery",)], "n": 3}
    assert redactor.value(value) == {"a": [f"x {MASK} y", (MASK,)], "n": 3}


def test_ordinary_text_is_left_alone() -> None:
    text = "Dana booked table 12 at 20:00; confirmation TQ-4471, invoice 2026-11-24"
    assert Redactor().text(text) == text


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_no_secret_reaches_the_log_stream(fmt: str) -> None:
    stream = _configured(fmt, secrets=["correct-horse-battery"])
    log = structlog.get_logger("test")
    log.info(
        "call.made",
        url=f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage",
        nested={"auth": f"Bearer {API_KEY}"},
    )
    logging.getLogger("httpx").warning(
        "HTTP Request: POST https://api.telegram.org/bot%s/x", BOT_TOKEN
    )
    logging.getLogger("somelib").error("password=correct-horse-battery rejected")
    try:
        secret_local = API_KEY  # noqa: F841 - a local that must not be rendered
        raise RuntimeError(f"upstream refused key {API_KEY}")
    except RuntimeError:
        log.exception("call.failed")
    output = stream.getvalue()
    for secret in (BOT_TOKEN, API_KEY, "correct-horse-battery"):
        assert secret not in output
    assert "call.made" in output
    assert "call.failed" in output
    assert "upstream refused key" in output  # the message stays, only the key goes


def test_json_lines_are_events_with_fields() -> None:
    stream = _configured("json")
    structlog.get_logger("daemon.runner").info("job.finished", job="health", duration_ms=3.5)
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["event"] == "job.finished"
    assert record["job"] == "health"
    assert record["level"] == "info"
    assert record["logger"] == "daemon.runner"
    assert record["timestamp"].endswith("Z")


def test_exceptions_render_without_local_variables() -> None:
    stream = _configured("json")
    try:
        harmless_local = "a-value-only-a-locals-dump-would-show"  # noqa: F841
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("t").exception("failed")
    output = stream.getvalue()
    assert "boom" in output
    assert "a-value-only-a-locals-dump-would-show" not in output


def test_chatty_libraries_are_quiet_below_warning() -> None:
    stream = _configured("json")
    logging.getLogger("httpx").info("HTTP Request: GET https://example.test/ 200")
    logging.getLogger("apscheduler.scheduler").info("Added job")
    assert stream.getvalue() == ""
