"""Every socket method against generated params: the answer is never ``internal`` and the daemon
stays up. The params come from each method's own pydantic model (its JSON schema: the right
fields, with values in and out of their bounds) mixed with extreme values of every type (huge
and negative integers, inf, nan, 1e-300, 1e300, strings of 60 KB, surrogates, deep nesting,
wrong types). The daemon is the real one, in a subprocess, on a sample OpenClaw home, so that
valid values reach the stores.

Deterministic (``derandomize``, no example database) and bounded (a fixed number of examples
per method): about a minute in all.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.api.core import DaemonAPI
from daemon.protocol import VERSION
from daemon.sample.home import write_sample_home
from tests.support import DaemonProcess, running_daemon

METHODS = DaemonAPI(None).methods()  # type: ignore[arg-type]  # only the table is read
EXAMPLES_PER_METHOD = 25

INTS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**100, 10**4000]
FLOATS = [
    float("inf"),
    float("-inf"),
    float("nan"),
    1e-300,
    1e300,
    -0.0,
    5e-324,
    1.7976931348623157e308,
    1e-7,
]
STRINGS = [
    "",
    " ",
    "\x00",
    "\ud800",
    "1e300",
    "99999999d",
    "1e-7",
    "1e-300",
    "0.0000001s",
    "0",
    "-1",
    "nan",
    "inf",
    "-5m",
    "0s",
    "99999w",
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "never",
    "all",
    "main",
    "work",
    "health",
    "main,work,all",
    "🔑" * 50,
    "../../etc/passwd",
    "' OR 1=1 --",
    "*",
    "\n",
    "a" * 60_000,
    "9" * 5000,
]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


EXTREMES = st.one_of(
    st.sampled_from(INTS),
    st.sampled_from(FLOATS),
    st.sampled_from(STRINGS),
    st.sampled_from([None, True, False, [], {}, {"a": {"b": [1]}}]),
    st.integers(min_value=1, max_value=400).map(_nested),
    st.lists(st.sampled_from(STRINGS[:30]), min_size=50, max_size=300),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


def _integers(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    bounds = [v for v in (schema.get("minimum"), schema.get("maximum")) if v is not None]
    edges = [v + d for v in bounds for d in (-1, 0, 1)]
    return st.integers() | st.sampled_from(edges or [0])


def _numbers(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.floats() | st.sampled_from([schema.get("minimum", 0.0), schema.get("maximum", 1.0)])


def _strings(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    options = [st.text(max_size=80), st.sampled_from(STRINGS)]
    if "pattern" in schema:
        options.append(st.from_regex(schema["pattern"], fullmatch=True))
    if "maxLength" in schema:
        options.append(st.just("x" * (schema["maxLength"] + 1)))
    return st.one_of(*options)


_BY_TYPE: dict[str, Callable[[dict[str, Any]], st.SearchStrategy[Any]]] = {
    "integer": _integers,
    "number": _numbers,
    "string": _strings,
    "boolean": lambda _: st.booleans(),
    "null": lambda _: st.none(),
}


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a field of this schema could take, with its bounds and just past them."""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return st.one_of(*(from_schema(s, defs) for s in schema["anyOf"]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if schema.get("type") == "array":
        items = from_schema(schema.get("items", {}), defs)
        return st.lists(items, max_size=schema.get("maxItems", 10) + 2)
    make = _BY_TYPE.get(schema.get("type", ""))
    return make(schema) if make is not None else JSON


def params_for(method: str) -> st.SearchStrategy[dict[str, Any]]:
    schema = DaemonAPI(None).params_model(method).model_json_schema(by_alias=True)  # type: ignore[arg-type]
    defs = schema.get("$defs", {})
    fields = {
        name: st.one_of(from_schema(field, defs), EXTREMES)
        for name, field in schema.get("properties", {}).items()
    }
    known = st.fixed_dictionaries({}, optional=fields)
    stray = st.dictionaries(st.text(min_size=1, max_size=20), EXTREMES, max_size=2)
    return st.one_of(known, known.flatmap(lambda p: stray.map(lambda s: {**s, **p})))


class Connection:
    """One connection for many requests; a fresh one when the daemon closed it (too_large)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None
        self._sock: socket.socket | None = None

    def call(self, method: str, params: Any) -> dict[str, Any]:
        line = json.dumps({"v": VERSION, "id": 1, "method": method, "params": params})
        data = line.encode("utf-8", "backslashreplace") + b"\n"
        for _ in range(2):
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.settimeout(60)
                self._sock.connect(str(self.path))
                self._file = self._sock.makefile("rb")
            try:
                self._sock.sendall(data)
                reply = self._file.readline()
            except (BrokenPipeError, ConnectionResetError):
                reply = b""
            if reply:
                if not reply.endswith(b"\n") or b'"id":null' in reply:
                    self.close()  # answered before the request was framed; start afresh
                result: dict[str, Any] = json.loads(reply)
                return result
            self.close()
        raise AssertionError(f"{method}: the daemon closed the connection without a reply")

    def close(self) -> None:
        if self._sock is not None:
            self._file.close()
            self._sock.close()
            self._sock = None


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[DaemonProcess, Connection]]:
    home = Path(tempfile.mkdtemp(prefix="ocf-", dir="/tmp"))
    write_sample_home(home / "openclaw")
    env = {
        "OPENCLAW_INFRA_SYNC__ANNOUNCE": "false",
        "OPENCLAW_INFRA_MEMORY__WATCH": "false",
        "OPENCLAW_INFRA_SOCKET__IDLE_TIMEOUT": "10m",
    }
    try:
        with running_daemon(home, env=env) as daemon:
            connection = Connection(daemon.socket)
            yield daemon, connection
            connection.close()
            crashes = daemon.events("socket.internal_error")
            assert not crashes, crashes[:3]
    finally:
        shutil.rmtree(home, ignore_errors=True)


#: Valid values for the params a method requires, so that each field's extremes are tried with
#: the rest of the request valid (and so reach the handler, not only the validation).
REQUIRED: dict[str, dict[str, Any]] = {
    "feedback.answer": {"id": "rec-1", "round": 1, "choice": "useful"},
    "memory.add": {"text": "the spare key is under the blue pot"},
    "memory.search": {"query": "dentist"},
    "mistake.add": {"agent": "main", "text": "booked the wrong day"},
    "refine": {"prompt": "a status line"},
    "run": {"run_id": 1},
    "signal.add": {"from": "main", "to": "work", "kind": "fact", "text": "the door code is 4411"},
    "signal.resolve": {"id": "0123456789ab"},
    "trigger": {"job": "health"},
}
SWEEP = [*INTS, *FLOATS, *STRINGS, None, True, False, [], {}, _nested(400), ["main"] * 300]


def test_every_method_with_required_params_has_valid_ones_to_start_from() -> None:
    api = DaemonAPI(None)  # type: ignore[arg-type]
    needing = {m for m in METHODS if api.params_model(m).model_json_schema().get("required")}
    assert needing == set(REQUIRED)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("method", METHODS)
def test_every_extreme_value_in_every_field_is_answered_without_internal(
    fuzzed: tuple[DaemonProcess, Connection], method: str
) -> None:
    """Systematic where Hypothesis samples: each field of each method gets each extreme value."""
    daemon, connection = fuzzed
    schema = DaemonAPI(None).params_model(method).model_json_schema(by_alias=True)  # type: ignore[arg-type]
    base = REQUIRED.get(method, {})
    internal = []
    for field in [*schema.get("properties", {}), "unknown_field"]:
        for value in SWEEP:
            params = {**base, field: value}
            reply = connection.call(method, params)
            if not reply.get("ok") and reply["error"]["code"] == "internal":
                internal.append((field, repr(value)[:40]))
    assert not internal, internal
    assert daemon.proc is not None
    assert daemon.proc.poll() is None, daemon.log()[-2000:]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("method", METHODS)
def test_no_params_make_a_method_fail_internally(
    fuzzed: tuple[DaemonProcess, Connection], method: str
) -> None:
    daemon, connection = fuzzed

    @settings(
        max_examples=EXAMPLES_PER_METHOD,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(params=params_for(method))
    def answered_without_internal(params: dict[str, Any]) -> None:
        reply = connection.call(method, params)
        assert reply.get("ok") or reply["error"]["code"] != "internal", (params, reply)

    answered_without_internal()
    assert daemon.proc is not None
    assert daemon.proc.poll() is None, daemon.log()[-2000:]
    assert connection.call("version", {})["ok"] is True
