"""``infractl mcp``: the memory and the signals as MCP tools, over stdio, for one agent.

Each tool is one call of the daemon's socket methods. The calling agent is known (``--agent``,
set when the server is registered for it): what it adds is attributed to it, its searches
cover all of its person's agents unless it says otherwise, its own memories first when ranks
tie. A bad argument or a refused request is a tool error with one line; a daemon that is not
running is a tool error that says to start ``infrad``. Nothing here raises past a tool.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError

from daemon import __version__
from daemon.client import AsyncControlClient
from daemon.errors import InfraError
from daemon.mcp.results import Reply, SearchResult, Stretch, search_result, stretch
from stores.counts import count

AGENT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
KINDS = Literal["turns", "summary", "note", "manual", "hourly", "sync", "weekly"]
INSTRUCTIONS = (
    "Long-term memory of every past conversation of every agent of this person, and notes"
    " between the agents. Search it before saying you do not know something the person told"
    " you before; read more of a conversation with memory_get; keep a durable fact with"
    " memory_add; tell another agent something with signal_send."
)
log = logging.getLogger("openclaw-infra.mcp")
_Fn = TypeVar("_Fn", bound=Callable[..., Any])


class _Server(MCPServer):
    """Bad arguments become one line an agent can act on, not a pydantic dump."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if type(exc) is ToolError and isinstance(cause, ValidationError):
                raise ToolError(f"{name}: {_one_line(cause)}") from cause
            raise


class Daemon:
    """The daemon's socket, one short connection a call (it closes idle ones)."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        client = AsyncControlClient(self.socket_path)
        try:
            await client.connect()
            try:
                return await client.call(method, params)
            finally:
                await client.close()
        except InfraError as exc:
            raise ToolError(exc.message) from None
        except OSError as exc:
            raise ToolError(
                f"the connection to infrad at {self.socket_path} broke: {exc}"
            ) from None


def build_server(socket_path: Path, caller: str | None) -> MCPServer:
    """``caller``: the agent this server is for (None: a host that serves no one agent)."""
    server = _Server(name="openclaw-infra", instructions=INSTRUCTIONS, version=__version__)
    daemon = Daemon(socket_path)
    _memory_tools(server, daemon, caller)
    _coordination_tools(server, daemon, caller)
    return server


def serve(socket_path: Path, agent: str | None) -> int:
    # Before the server: MCPServer configures logging only when nothing else has, and stdout
    # is the protocol's, so every line goes to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    build_server(socket_path, agent).run("stdio")
    return 0


def _memory_tools(server: MCPServer, daemon: Daemon, caller: str | None) -> None:
    @_tool(server, name="memory_search", title="Search past conversations and notes")
    async def memory_search(
        *,
        query: Annotated[
            str,
            Field(description="what to look for, in plain words", min_length=1, max_length=2000),
        ],
        k: Annotated[int, Field(description="how many results", ge=1, le=20)] = 5,
        agent: Annotated[
            str | None,
            Field(
                description="only this agent's memories ('self' for yours); default: all agents",
                max_length=64,
            ),
        ] = None,
        since: Annotated[
            str | None, Field(description="from: 2026-11-01 or an age like 7d", max_length=40)
        ] = None,
        until: Annotated[
            str | None, Field(description="to: 2026-11-30 or an age like 1d", max_length=40)
        ] = None,
        kind: Annotated[
            list[KINDS] | None, Field(description="only these kinds of memory", max_length=7)
        ] = None,
        speaker: Annotated[
            str | None, Field(description="only what this person or agent said", max_length=200)
        ] = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Search every past conversation and note of this person's agents. Each result says
        where it is from (agent, session, entry ids or note lines, time)."""
        params: dict[str, Any] = {"query": query, "k": k}
        if agent is not None:
            params["agent"] = _agent(agent, caller)
        if caller is not None:
            params["prefer"] = caller
        params |= _present(since=since, until=until, kind=kind, speaker=speaker)
        text, result = search_result(await daemon.call("memory.search", params))
        return _result(text, result)

    @_tool(server, name="memory_get", title="Read more of a conversation or a note")
    async def memory_get(
        *,
        session_id: Annotated[
            str | None, Field(description="from a search result's source", max_length=200)
        ] = None,
        entry_id: Annotated[
            str | None, Field(description="an entry id from that result", max_length=200)
        ] = None,
        agent: Annotated[
            str | None, Field(description="the result's agent (default: you)", max_length=64)
        ] = None,
        path: Annotated[
            str | None, Field(description="a note's path, from a search result", max_length=4096)
        ] = None,
        line_start: Annotated[int | None, Field(ge=1, le=10_000_000)] = None,
        line_end: Annotated[int | None, Field(ge=1, le=10_000_000)] = None,
        before: Annotated[int, Field(description="turns (or lines) before it", ge=0, le=20)] = 5,
        after: Annotated[int, Field(description="turns (or lines) after it", ge=0, le=20)] = 5,
    ) -> Annotated[CallToolResult, Stretch]:
        """The turns around one entry of a session (or lines of a note), to read more than
        the snippet a search returned."""
        if path is not None:
            params = _present(path=path, line_start=line_start, line_end=line_end)
        else:
            owner = _agent(agent, caller) if agent is not None else caller
            if owner is None or session_id is None or entry_id is None:
                raise ToolError("memory_get: give session_id, entry_id and agent, or a path")
            params = {"agent": owner, "session_id": session_id, "entry_id": entry_id}
        text, found = stretch(
            await daemon.call("memory.get", {**params, "before": before, "after": after})
        )
        return _result(text, found)

    @_tool(server, name="memory_add", title="Remember something for good")
    async def memory_add(
        text: Annotated[
            str,
            Field(
                description="the fact, decision or preference, in full",
                min_length=1,
                max_length=4000,
            ),
        ],
        tags: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=40)]],
            Field(description="a few words to file it under", max_length=10),
        ] = [],  # noqa: B006 - the SDK copies defaults into the schema, never mutates them
    ) -> Annotated[CallToolResult, Reply]:
        """Keep a durable memory (attributed to you) that every agent can search later."""
        params = _present(text=text, tags=tags or None, agent=caller)
        reply = await daemon.call("memory.add", params)
        return _result(f"remembered (id {reply.get('id')})", Reply(result=reply))


def _coordination_tools(server: MCPServer, daemon: Daemon, caller: str | None) -> None:
    @_tool(server, name="signal_send", title="Tell other agents something")
    async def signal_send(
        *,
        to: Annotated[
            list[Annotated[str, Field(max_length=64)]],
            Field(description="agent ids, or ['all']", min_length=1, max_length=64),
        ],
        kind: Annotated[
            Literal["fact", "decision", "request", "warning"],
            Field(description="what sort of note it is"),
        ],
        text: Annotated[str, Field(description="the note itself", min_length=1, max_length=2000)],
        priority: Annotated[
            Literal["low", "normal", "high", "urgent"],
            Field(description="urgent wakes the other agent now"),
        ] = "normal",
        expires: Annotated[
            str | None, Field(description="3d, a date, or never (default: 7 days)", max_length=64)
        ] = None,
    ) -> Annotated[CallToolResult, Reply]:
        """Send a signal from you to other agents of this person; they see it in their signals
        and in their daily sync note (an urgent one wakes them at once)."""
        source = _caller(caller, "signal_send")
        params = _present(to=to, kind=kind, text=text, priority=priority, expires=expires)
        reply = await daemon.call("signal.add", {"from": source, **params})
        signal = reply.get("signal") or {}
        said = "sent" if reply.get("created") else "already sent"
        return _result(f"signal {signal.get('id')} {said} to {', '.join(to)}", Reply(result=reply))

    @_tool(server, name="signals", title="Signals for you")
    async def signals(
        include_closed: Annotated[bool, Field(description="resolved and expired ones too")] = False,
    ) -> Annotated[CallToolResult, Reply]:
        """The signals other agents sent you, newest first, urgent ones marked."""
        me = _caller(caller, "signals")
        reply = await daemon.call("signal.list", {"agent": me, "all": include_closed, "limit": 50})
        found = reply.get("signals") or []
        lines = [f"{count(len(found), 'signal')} for {me}"]
        for s in found:
            mark = "!" if s.get("priority") in ("urgent", "high") else "-"
            said = f"{s.get('priority')} {s.get('kind')} from {s.get('from')}: {s.get('text')}"
            lines.append(f"{mark} [{s.get('id')}] {said}")
        return _result("\n".join(lines), Reply(result=reply))

    @_tool(server, name="priorities", title="What matters now")
    async def priorities() -> Annotated[CallToolResult, Reply]:
        """Open requests, warnings and decisions for you, ranked, with recent mistakes."""
        reply = await daemon.call("priorities", _present(agent=caller))
        items = reply.get("items") or []
        lines = [count(len(items), "priority")]
        lines += [f"- {i['priority']}: {i['title']} (from {i['source']})" for i in items]
        return _result("\n".join(lines), Reply(result=reply))

    @_tool(server, name="mistake_add", title="Record a mistake and its lesson")
    async def mistake_add(
        text: Annotated[str, Field(description="what went wrong", min_length=1, max_length=4000)],
        lesson: Annotated[
            str | None, Field(description="what to do differently", max_length=4000)
        ] = None,
    ) -> Annotated[CallToolResult, Reply]:
        """Log a mistake of yours; the weekly synthesis turns patterns into lessons."""
        me = _caller(caller, "mistake_add")
        reply = await daemon.call("mistake.add", _present(agent=me, text=text, lesson=lesson))
        return _result("mistake recorded", Reply(result=reply))


def _tool(server: MCPServer, *, name: str, title: str) -> Callable[[_Fn], _Fn]:
    """A tool whose description is its docstring as one line: a host shows the model the
    description as given, indentation and all."""

    def register(fn: _Fn) -> _Fn:
        description = " ".join((fn.__doc__ or "").split())
        server.tool(name=name, title=title, description=description)(fn)
        return fn

    return register


def _result(text: str, data: BaseModel) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=data.model_dump(mode="json"),
    )


def _agent(value: str, caller: str | None) -> str:
    """An agent id an agent gave; 'self' is the caller."""
    if value == "self":
        return _caller(caller, "agent 'self'")
    if not AGENT_ID.fullmatch(value):
        raise ToolError(f"not an agent id: {value!r} (lower-case letters, digits, '-', '_')")
    return value


def _caller(caller: str | None, what: str) -> str:
    if caller is None:
        raise ToolError(
            f"{what} needs to know which agent you are: register the server with --agent"
        )
    return caller


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _one_line(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return "invalid arguments: " + "; ".join(parts)
