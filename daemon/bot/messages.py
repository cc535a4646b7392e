"""Sending to Telegram, and the recommendation message with its buttons.

Every message goes out as HTML made by ``bot_text``/``bot_render``; should Telegram still refuse
to parse one (a bug here, not a user's doing), it is sent again as plain text rather than lost.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import datetime, tzinfo

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest

from daemon.bot.callbacks import CallbackSigner
from daemon.bot.text import ELLIPSIS, MAX_MESSAGE, clip, esc, paginate, text_blocks
from daemon.logs import get_logger
from stores.coordination.feedback import Choice

log = get_logger(__name__)

LABELS = {
    Choice.USEFUL: "👍 useful",
    Choice.NOT_USEFUL: "👎 not useful",
    Choice.ARCHIVE: "🗄 archive",
    Choice.SNOOZE: "⏰ snooze",
}
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_TAGS = re.compile(r"<[^>]+>")


async def send_html(
    bot: Bot,
    chat_id: int,
    blocks: Iterable[str],
    *,
    reply_to: int | None = None,
    markup: InlineKeyboardMarkup | None = None,
) -> list[Message]:
    """The blocks as one or more messages; buttons go on the last one."""
    pages = paginate(blocks)
    sent = []
    for n, page in enumerate(pages):
        last = n == len(pages) - 1
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        sent.append(
            await _send(bot, chat_id, page, reply if n == 0 else None, markup if last else None)
        )
    return sent


async def _send(
    bot: Bot,
    chat_id: int,
    page: str,
    reply: ReplyParameters | None,
    markup: InlineKeyboardMarkup | None,
) -> Message:
    try:
        return await bot.send_message(
            chat_id,
            page,
            parse_mode=ParseMode.HTML,
            link_preview_options=NO_PREVIEW,
            reply_parameters=reply,
            reply_markup=markup,
        )
    except BadRequest as exc:
        if "parse" not in exc.message.lower():
            raise
        log.error("bot.html_refused", error=exc.message)
        return await bot.send_message(
            chat_id,
            plain(page),
            link_preview_options=NO_PREVIEW,
            reply_parameters=reply,
            reply_markup=markup,
        )


def plain(page: str) -> str:
    return html.unescape(_TAGS.sub("", page))


def keyboard(signer: CallbackSigner, rec_id: str, round: int) -> InlineKeyboardMarkup:
    def button(choice: Choice) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            LABELS[choice], callback_data=signer.encode(rec_id, round, choice)
        )

    return InlineKeyboardMarkup(
        [
            [button(Choice.USEFUL), button(Choice.NOT_USEFUL)],
            [button(Choice.ARCHIVE), button(Choice.SNOOZE)],
        ]
    )


#: A title (or a job name) past this is clipped: the body needs the room of the one message.
MAX_TITLE = 200


def recommendation_html(title: str, body: str, source_job: str, outcome: str = "") -> str:
    """One message, whatever the body's length: buttons belong to exactly one message."""
    head = f"💡 <b>{esc(clip(title, MAX_TITLE))}</b>"
    foot = f"<i>from {esc(clip(source_job, MAX_TITLE))}</i>" + (f"\n\n{outcome}" if outcome else "")
    room = MAX_MESSAGE - len(head) - len(foot) - 8
    pieces = text_blocks(body, limit=room)
    text = pieces[0] + (ELLIPSIS if len(pieces) > 1 else "") if pieces else ""
    return "\n\n".join(part for part in (head, text, foot) if part)


def outcome_html(
    choice: Choice, snooze_until: str | None, zone: tzinfo, who: str | None = None
) -> str:
    label = LABELS[choice]
    if choice is Choice.SNOOZE and snooze_until:
        until = datetime.fromisoformat(snooze_until).astimezone(zone)
        label += f" until {until:%a %d %b %H:%M}"
    by = f" by {esc(who)}" if who else ""
    return f"<i>{label}{by}</i>"
