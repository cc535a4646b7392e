"""The settings as environment variables: their names, and each problem as the one line a
person reads (which variable, what is wrong with it, what to write instead).

Model-independent, so that ``settings`` (the model) and ``envexample`` share it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import NoDecode
from pydantic_settings import SettingsError as PydanticSettingsError

from daemon import paths


class SettingsError(Exception):
    """A configuration problem, already phrased as the one line the user sees."""


def iter_settings(model: BaseModel, prefix: str = paths.ENV_PREFIX) -> Iterator[tuple[str, Any]]:
    """(environment variable name, value) for every leaf setting, nested models flattened."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        env_name = prefix + name.upper()
        if isinstance(value, BaseModel):
            yield from iter_settings(value, env_name + "__")
        else:
            yield env_name, value


def leaf_fields(model: type[BaseModel], prefix: str = paths.ENV_PREFIX) -> dict[str, FieldInfo]:
    """Environment variable name -> its field, for every leaf setting."""
    leaves: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            leaves |= leaf_fields(annotation, prefix + name.upper() + "__")
        else:
            leaves[prefix + name.upper()] = field
    return leaves


def refuse_bad_json(given: Mapping[str, str], model: type[BaseModel]) -> None:
    """A list or mapping setting is read as JSON; say so, naming that variable (pydantic-settings
    would blame its section, ``OPENCLAW_INFRA_BACKUP``, and not say what it wanted)."""
    for name, field in leaf_fields(model).items():
        value = given.get(name, "").strip()
        wanted = _json_kind(field)
        if not value or wanted is None:
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, wanted):
            word = "list" if wanted is list else "object"
            raise SettingsError(
                f"{name}: not a JSON {word}: {value!r} (write it as {_example(field, wanted)})"
            )


def _json_kind(field: FieldInfo) -> type[list[Any]] | type[dict[str, Any]] | None:
    """list or dict when pydantic-settings decodes the variable as JSON; None otherwise."""
    if any(isinstance(meta, NoDecode) or meta is NoDecode for meta in field.metadata):
        return None
    origin = get_origin(field.annotation) or field.annotation
    if origin is list:
        return list
    if origin is dict:
        return dict
    return None


def _example(field: FieldInfo, wanted: type) -> str:
    factory = field.default_factory
    default = factory() if factory is not None else field.default  # type: ignore[call-arg]
    if isinstance(default, wanted) and default:
        return json.dumps(default)
    if field.examples:
        return json.dumps(field.examples[0])
    return '["a", "b"]' if wanted is list else '{"key": "value"}'


def one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:
        return message
    if loc[0].startswith(("OPENCLAW_", paths.ENV_PREFIX)):
        variable = loc[0]
    else:
        variable = paths.ENV_PREFIX + "__".join(loc).upper()
    given = error.get("input")
    if (
        isinstance(given, (str, int, float))
        and not _is_secret(variable)
        and repr(given) not in message
    ):
        return f"{variable}: {message} (got {given!r})"
    return f"{variable}: {message}"


def parse_failure_line(exc: PydanticSettingsError) -> str:
    # pydantic-settings says 'error parsing value for field "jobs" from source ...'.
    match = re.search(r'field "([^"]+)"', str(exc))
    variable = paths.ENV_PREFIX + match.group(1).upper() if match else "settings"
    cause = exc.__cause__ or exc
    return f"{variable}: could not parse the value ({cause})"


def _is_secret(variable: str) -> bool:
    return any(word in variable for word in ("KEY", "TOKEN", "PASSWORD", "PASSPHRASE", "SECRET"))
