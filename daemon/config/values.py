"""How a setting's value is spelled in a ``.env`` file, both ways.

Read: an enumerated setting (a ``Literal`` of words) takes any case, so ``LOG_LEVEL=INFO`` (the
spelling Python's logging and older configurations use) means ``info``. Written: what
``infrad --check-config`` and ``.env.example`` print is what a ``.env`` line takes back:
durations as ``6h``, booleans as ``true``, lists as JSON, never Python's ``repr``.
"""

from __future__ import annotations

import json
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationInfo, field_validator


def choices(annotation: Any) -> tuple[str, ...]:
    """The words of a ``Literal`` (also inside ``X | None``); () for any other type."""
    if get_origin(annotation) is Literal:
        return tuple(a for a in get_args(annotation) if isinstance(a, str))
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(word for arg in get_args(annotation) for word in choices(arg))
    return ()


class Section(BaseModel):
    """A part of the settings. Every enumerated field takes its words in any case."""

    @field_validator("*", mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or info.field_name is None:
            return value
        words = choices(cls.model_fields[info.field_name].annotation)
        folded = value.strip().lower()
        return folded if folded in words else value


def env_spelling(value: Any) -> str:
    """A JSON-mode dump of a setting (``model_dump(mode="json")``) as a ``.env`` value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
