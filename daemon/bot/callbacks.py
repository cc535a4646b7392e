"""The data behind a recommendation's buttons: short, signed, and checked before use.

``fb:<recommendation id>:<round>:<choice>:<tag>``: at most 53 bytes, within Telegram's 64. The
tag is an HMAC of the rest under a key kept in the state directory (0600), so data that was
altered, or made up by someone who can talk to the bot, is refused before it reaches the
store. Whether it is stale or a replay is the store's to say (``stores.coordination.feedback``).
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from stores.atomic import atomic_write_bytes
from stores.coordination.feedback import Choice

KEY_FILE = "bot-callback.key"
KEY_BYTES = 32
TAG_BYTES = 12
MAX_DATA = 64

CODES = {
    Choice.USEFUL: "u",
    Choice.NOT_USEFUL: "n",
    Choice.ARCHIVE: "a",
    Choice.SNOOZE: "s",
}
_CHOICES = {code: choice for choice, code in CODES.items()}
_DATA = re.compile(
    r"^fb:([a-z0-9][a-z0-9_-]{0,23}):([1-9][0-9]{0,5}):([unas]):([A-Za-z0-9_-]{16})$"
)


class BadCallback(Exception):
    """Not data this bot issued: malformed, or signed with another key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Tap:
    recommendation_id: str
    round: int
    choice: Choice


class CallbackSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a callback key needs at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "CallbackSigner(<key>)"

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> CallbackSigner:
        """The key of this state directory, made on first use. A damaged key file is replaced:
        the buttons already sent then answer politely that they are no longer valid."""
        path = state_dir / KEY_FILE
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = b""
        if len(key) != KEY_BYTES:
            key = secrets.token_bytes(KEY_BYTES)
            atomic_write_bytes(path, key)
        return cls(key)

    def encode(self, recommendation_id: str, round: int, choice: Choice) -> str:
        body = f"fb:{recommendation_id}:{round}:{CODES[choice]}"
        data = f"{body}:{self._tag(body)}"
        if len(data.encode()) > MAX_DATA:  # pragma: no cover - ids are capped at 24 characters
            raise ValueError(f"callback data too long: {len(data)} bytes")
        return data

    def decode(self, data: str | None) -> Tap:
        match = _DATA.match(data or "")
        if match is None:
            raise BadCallback("malformed")
        rec_id, round_text, code, tag = match.groups()
        body = data.rpartition(":")[0] if data else ""
        if not hmac.compare_digest(tag, self._tag(body)):
            raise BadCallback("tampered")
        return Tap(rec_id, int(round_text), _CHOICES[code])

    def _tag(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), sha256).digest()[:TAG_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
