"""The Settings of the Telegram bot and of voice-note transcription.

Both are optional: without ``OPENCLAW_INFRA_TELEGRAM__TOKEN`` there is no bot, and without a
transcription backend the bot says so when it gets a voice note.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from daemon.config.sections import Duration
from daemon.config.values import Section

_HTTP_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_BOT_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,}$")


def _id_list(value: Any) -> Any:
    """A JSON list ``[1, 2]``, or ``1,2``, or one id: what people type into an env file."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


#: Telegram ids (chat ids of groups are negative).
IdList = Annotated[list[int], NoDecode, BeforeValidator(_id_list)]


def _http_url(value: str | None) -> str | None:
    if value is not None and not _HTTP_URL.match(value):
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/") if value is not None else None


class TelegramSettings(Section):
    """The bot answers commands and voice notes, sends recommendations and alerts. Only the
    users and chats listed may use it; with both lists empty it refuses everyone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr | None = Field(
        None, description="the bot's token from @BotFather (without one: no bot)"
    )
    allowed_user_ids: IdList = Field(
        default_factory=list,
        description="Telegram user ids that may use the bot: 123456789 or [123, 456]",
    )
    allowed_chat_ids: IdList = Field(
        default_factory=list,
        description="chats whose members may use the bot, like allowed_user_ids; alerts and"
        " recommendations go there (default: the allowed users' private chats)",
    )
    base_url: str | None = Field(
        None, description="a Bot API server (default: https://api.telegram.org)"
    )
    poll_timeout: Duration = Field(
        timedelta(seconds=30), description="how long one long-polling request waits for updates"
    )
    request_timeout: Duration = Field(
        timedelta(seconds=15), description="limit for one request to Telegram"
    )
    retry_max: Duration = Field(
        timedelta(minutes=5),
        description="longest wait between two attempts to reach Telegram (doubling from 1s)",
    )
    check_interval: Duration = Field(
        timedelta(seconds=15),
        description="how often new run outcomes (for alerts) and snoozed recommendations are read",
    )
    alert_failures: int = Field(
        3, ge=1, le=1000, description="failed runs of one job in a row before an alert"
    )
    alert_limit: int = Field(5, ge=1, le=1000, description="at most this many alerts per window")
    alert_window: Duration = Field(timedelta(hours=1), description="the window of alert_limit")

    @field_validator("token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _BOT_TOKEN.match(value.get_secret_value()):
            raise ValueError("not a bot token (it looks like 123456789:AA..., from @BotFather)")
        return value

    @field_validator("base_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return _http_url(value)

    def secret_parts(self) -> list[str]:
        """The token, and its part after ':' alone, for the log redactor."""
        if self.token is None:
            return []
        token = self.token.get_secret_value()
        return [token, token.partition(":")[2]]


class TranscriptionSettings(Section):
    """Speech to text for voice notes sent to the bot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["none", "openai", "faster-whisper"] = Field(
        "none",
        description="none, openai (any OpenAI-compatible /audio/transcriptions endpoint)"
        " or faster-whisper (local; pip install faster-whisper)",
    )
    base_url: str | None = Field(
        None, description="for openai: the endpoint, e.g. https://api.openai.com/v1"
    )
    api_key: SecretStr | None = Field(None, description="for openai: the key, if it needs one")
    model: str = Field("whisper-1", min_length=1, description="for openai: the model name")
    model_path: Path | None = Field(
        None, description="for faster-whisper: a model directory (CTranslate2 format)"
    )
    language: str | None = Field(
        None, description="language hint such as en or de (default: detected)"
    )
    timeout: Duration = Field(timedelta(minutes=2), description="limit for one transcription")

    @field_validator("base_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return _http_url(value)
