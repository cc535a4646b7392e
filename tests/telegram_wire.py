"""What the Telegram Bot API accepts, as the local fake checks it, and how python-telegram-bot
encodes a request: form fields with every non-string value JSON-encoded (``reply_markup``,
``allowed_updates``, numbers, booleans), or multipart when a file goes along.
"""

from __future__ import annotations

import html
import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

#: Fields whose form value is JSON (PTB encodes every non-string parameter as JSON).
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "entities",
        "link_preview_options",
        "reply_parameters",
        "caption_entities",
    }
)
INT_FIELDS = frozenset({"chat_id", "message_id", "offset", "limit", "timeout", "user_id"})
BOOL_FIELDS = frozenset(
    {"drop_pending_updates", "show_alert", "disable_notification", "protect_content"}
)
#: Tags Telegram's HTML parse mode knows.
HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"code", "pre", "blockquote", "tg-emoji"}
)
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_TAG = re.compile(r"<(/?)([a-z-]+)(\s[^<>]*)?>")


class ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def require(params: dict[str, Any], name: str) -> Any:
    if params.get(name) in (None, ""):
        raise ApiError(400, f"Bad Request: {name} is empty")
    return params[name]


def checked_text(params: dict[str, Any]) -> str:
    """The text as the recipient sees it: markup parsed, limits applied."""
    text = str(params.get("text") or "")
    if params.get("parse_mode") == "HTML":
        text = parse_html(text)
    elif params.get("parse_mode") is not None:
        raise ApiError(400, f"Bad Request: unsupported parse_mode {params['parse_mode']}")
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if len(text) > 4096:
        raise ApiError(400, "Bad Request: message is too long")
    return text


def parse_html(source: str) -> str:
    """Telegram's HTML: known tags, balanced; ``&`` only as an entity; returns the plain text."""
    stack: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "<":
            match = _TAG.match(source, i)
            if match is None or match.group(2) not in HTML_TAGS:
                raise ApiError(400, f"Bad Request: can't parse entities: unsupported tag at {i}")
            closing, name = match.group(1), match.group(2)
            if closing:
                if not stack or stack.pop() != name:
                    raise ApiError(400, f"Bad Request: can't parse entities: unmatched </{name}>")
            else:
                stack.append(name)
            i = match.end()
        elif ch == "&":
            entity = _ENTITY.match(source, i)
            if entity is None:
                raise ApiError(400, f"Bad Request: can't parse entities: bad & at {i}")
            out.append(html.unescape(entity.group(0)))
            i = entity.end()
        elif ch == ">":
            raise ApiError(400, f"Bad Request: can't parse entities: stray > at {i}")
        else:
            out.append(ch)
            i += 1
    if stack:
        raise ApiError(400, f"Bad Request: can't parse entities: <{stack[-1]}> is not closed")
    return "".join(out)


def checked_markup(markup: Any) -> dict[str, Any] | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def decode_fields(fields: dict[str, str]) -> dict[str, Any]:
    """Form fields as PTB sends them: strings raw, everything else JSON-encoded."""
    params: dict[str, Any] = {}
    for name, value in fields.items():
        if name in JSON_FIELDS:
            try:
                params[name] = json.loads(value)
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
        elif name in INT_FIELDS:
            try:
                params[name] = int(value)
            except ValueError:
                params[name] = value  # "@channelname" is a chat id too
        elif name in BOOL_FIELDS:
            params[name] = value == "true"
        else:
            params[name] = value
    return params


def parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        return dict(json.loads(raw))
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields = {}
        for part in message.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode(errors="replace") if isinstance(payload, bytes) else ""
        return decode_fields(fields)
    form = parse_qs(raw.decode(), keep_blank_values=True)
    return decode_fields({name: values[-1] for name, values in form.items()})
