"""Taking secrets out of text before it is logged, stored or shown.

Two nets: the exact values the user configured (API keys, bot tokens), and the shapes secrets
have in the wild (``sk-ant-...``, ``bot123:ABC...`` in a Telegram URL, ``Bearer ...``), so that a
secret that reached us some other way (an exception message, a URL in a library's log) is caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from stores.counts import count

MASK = "[REDACTED]"

_PATTERNS = [
    # Telegram bot tokens, bare or inside an API URL: bot<id>:<35 chars>
    re.compile(r"(?<![A-Za-z0-9])(?:bot)?\d{5,12}:[A-Za-z0-9_-]{30,}"),
    # Anthropic, OpenAI and similar keys
    re.compile(r"\bsk-(?:ant-)?[A-Za-z0-9_-]{16,}"),
    # Authorization headers and the like
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    # key=value pairs in URLs, env dumps and config echoes
    re.compile(
        r"(?i)\b([A-Za-z0-9_]*(?:api[_-]?key|token|secret|password|passphrase)[A-Za-z0-9_]*)"
        r"(\s*[=:]\s*)(['\"]?)[^\s'\"&,;]{4,}"
    ),
]


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __repr__(self) -> str:
        return (
            f"Redactor({count(len(self._secrets), 'secret')}, {count(len(_PATTERNS), 'pattern')})"
        )

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        value = _PATTERNS[0].sub(MASK, value)
        value = _PATTERNS[1].sub(MASK, value)
        value = _PATTERNS[2].sub(lambda m: f"{m.group(1)} {MASK}", value)
        return _PATTERNS[3].sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", value)

    def value(self, value: Any) -> Any:
        """Strings anywhere inside dicts, lists and tuples; other values unchanged."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v) for v in value)
        return value
