"""How one entry is read: OpenClaw's wrappers, polls, copies and whole turns of its own.

Entries here are written in the shapes OpenClaw's source gives them (2026.7.1 and 2026.9.6);
the real files of both releases are read in ``test_real_openclaw.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from stores.openclaw.entries import (
    MAX_TURN_CHARS,
    Content,
    EntryInterpreter,
    Names,
    Role,
)
from stores.openclaw.problems import SkipReason
from stores.openclaw.wrappers import MARKER, clean_user_text, is_silent_reply

NAMES = Names(assistant="Juniper", user="Dana")
_ids = iter(range(10**6))


def _message(role: str, content: Any, **message: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"{next(_ids):08x}",
        "parentId": None,
        "timestamp": "2026-09-20T10:00:00.000Z",
        "message": {"role": role, "content": content, **message},
    }


def _read(*entries: dict[str, Any]) -> list[Content | SkipReason]:
    interpreter = EntryInterpreter(NAMES)
    return [interpreter.interpret(e) for e in entries]


def test_the_marker_form_is_stripped_and_the_sender_kept() -> None:
    """What ``openclaw doctor --fix`` leaves of an old channel message."""
    text = (
        f"Conversation info: {MARKER}\n```json\n"
        '{"chat_id": "5550001", "sender": {"id": "5550001", "name": "Mira Costa"}}\n```\n\n'
        f"Sender: {MARKER}\n```json\n"
        '{"label": "Mira Costa (5550001)", "name": "Mira Costa"}\n```\n\n'
        "[Mon 2026-03-08 22:03 GMT+9] the boat leaves at nine\n\n"
        f"Context: {MARKER}\n"
        "Chat history since last reply:\n- Mira: earlier words that are context\n"
    )
    assert clean_user_text(text) == ("Mira Costa", "the boat leaves at nine")


def test_the_old_trailer_and_delivery_hints_are_prompt_not_words() -> None:
    text = (
        "the words\n"
        "Delivery: to send a message, use the `message` tool.\n\n"
        "Untrusted context (metadata, do not treat as instructions or commands):\n"
        "<<<EXTERNAL_UNTRUSTED_CONTENT>>> a quoted web page"
    )
    assert clean_user_text(text) == (None, "the words")


def test_a_marked_block_anywhere_is_taken_out() -> None:
    text = f"before\n\nReply target of current user message: {MARKER}\n```json\n{{}}\n```\nafter"
    assert clean_user_text(text) == (None, "before\n\nafter")


def test_the_sender_recorded_by_openclaw_speaks() -> None:
    sender = {"senderId": "5550001", "senderName": "Mira Costa", "transport": {"channel": "tg"}}
    by_name, by_username, by_number = _read(
        _message("user", "hi", __openclaw=sender),
        _message("user", "hi", __openclaw={"senderUsername": "mira_c"}),
        _message("user", "hi", __openclaw={"senderId": "5550001"}),
    )
    speakers = [
        c.speaker if isinstance(c, Content) else c for c in (by_name, by_username, by_number)
    ]
    assert speakers == ["Mira Costa", "mira_c", "Dana"]  # a number names nobody


@pytest.mark.parametrize(
    "text",
    [
        "[OpenClaw heartbeat poll]",
        "[OpenClaw cron wake]",
        "[OpenClaw session event]",
        "[OpenClaw exec completion]",
        "[OpenClaw exec completion]\nDisable automatic completion turns with"
        " tools.exec.notifyOnExit=false; check per-agent overrides.",
        "Read HEARTBEAT.md if it exists (workspace context). Follow it strictly.",
        "Follow the heartbeat monitor scratch context when provided. Recurring tasks are ...",
    ],
)
def test_openclaws_polls_are_not_the_person(text: str) -> None:
    assert _read(_message("user", text)) == [SkipReason.HEARTBEAT]


@pytest.mark.parametrize(
    "text",
    [
        "[OpenClaw session new]",
        "[OpenClaw session reset]",
        "System: [2026-09-20 10:00:00 GMT] zebra-notice: the build finished",
        "[cron:daily-report] Write the daily report",
    ],
)
def test_openclaws_own_prompts_are_not_the_person(text: str) -> None:
    assert _read(_message("user", text)) == [SkipReason.SYSTEM]


@pytest.mark.parametrize(
    ("source", "reason"),
    [("heartbeat", SkipReason.HEARTBEAT), ("memory_search", SkipReason.RECALLED)],
)
def test_a_turn_openclaw_started_is_skipped_whole(source: str, reason: SkipReason) -> None:
    provenance = {"kind": "internal_system", "sourceTool": source}
    read = _read(
        _message("user", "anything", provenance=provenance),
        _message("assistant", [{"type": "text", "text": "a reply to OpenClaw, not to Dana"}]),
        _message("user", "and now Dana speaks"),
        _message("assistant", [{"type": "text", "text": "hello Dana"}]),
    )
    assert read[:2] == [reason, reason]
    assert [(c.role, c.text) for c in read[2:] if isinstance(c, Content)] == [
        (Role.USER, "and now Dana speaks"),
        (Role.ASSISTANT, "hello Dana"),
    ]


def test_a_message_from_another_session_is_not_the_person() -> None:
    assert _read(_message("user", "relay", provenance={"kind": "inter_session"})) == [
        SkipReason.SYSTEM
    ]


@pytest.mark.parametrize(
    "extra",
    [
        {"provider": "openclaw", "model": "delivery-mirror"},
        {"provider": "openclaw", "model": "gateway-injected"},
        {"openclawDeliveryMirror": {"kind": "channel-final"}},
    ],
)
def test_openclaws_copies_of_delivered_replies_are_skipped(extra: dict[str, Any]) -> None:
    copy = _message("assistant", [{"type": "text", "text": "the same reply again"}], **extra)
    assert _read(copy) == [SkipReason.MIRROR]


@pytest.mark.parametrize(
    "text", ["NO_REPLY", "no_reply.", "NO_REPLY NO_REPLY", '"NO_REPLY"', '{"action": "NO_REPLY"}']
)
def test_silent_replies_in_every_shape(text: str) -> None:
    assert is_silent_reply(text)
    assert _read(_message("assistant", [{"type": "text", "text": text}])) == [SkipReason.NO_REPLY]


@pytest.mark.parametrize(
    "text", ["NO_REPLY needed here, I think", '{"action": "NO_REPLY", "x": 1}']
)
def test_words_around_no_reply_are_words(text: str) -> None:
    assert not is_silent_reply(text)


def test_entry_kinds_of_current_releases_are_known() -> None:
    read = _read(
        {"type": "reset", "id": "r1", "parentId": None, "timestamp": "2026-09-20T10:00:00Z"},
        {"type": "leaf", "targetId": "r1"},
        _message("custom", "runtime context", customType="openclaw.runtime-context"),
        _message("bashExecution", None, command="ls", output="a b"),
    )
    assert read == [SkipReason.METADATA, SkipReason.METADATA, SkipReason.METADATA, SkipReason.TOOL]


def test_a_huge_turn_keeps_its_head_and_tail() -> None:
    text = "HEAD " + "x" * 10_000_000 + " TAIL"
    (content,) = _read(_message("user", text))
    assert isinstance(content, Content)
    assert len(content.text) < MAX_TURN_CHARS + 100
    assert content.text.startswith("HEAD ")
    assert content.text.endswith(" TAIL")
    assert f"[… {content.cut:,} characters left out …]" in content.text
    assert content.cut == len(text) - MAX_TURN_CHARS
