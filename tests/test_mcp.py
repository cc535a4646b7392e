"""``infractl mcp`` as an agent host runs it: the MCP SDK's own client over stdio, a real daemon."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, TextContent

from tests.memory_fixtures import home_entries, write_sample
from tests.support import DaemonProcess, infractl, running_daemon, wait_for

REPO = Path(__file__).resolve().parent.parent

TOOLS = {
    "memory_search",
    "memory_get",
    "memory_add",
    "signal_send",
    "signals",
    "priorities",
    "mistake_add",
}


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    root = Path(tempfile.mkdtemp(prefix="oci-", dir="/tmp"))
    write_sample(root / "openclaw")
    try:
        with running_daemon(root) as running:
            wait_for(
                lambda: any(
                    r["status"] == "success"
                    for r in running.call("runs", {"job": "ingest"})["runs"]
                ),
                timeout=120,
                what="the start-up ingest",
            )
            yield running
            assert running.stop() == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def mcp_client(socket: Path, agent: str | None = "main") -> AsyncIterator[Client]:
    args = ["-m", "daemon.cli", "--socket", str(socket), "mcp"]
    if agent is not None:
        args += ["--agent", agent]
    params = StdioServerParameters(command=sys.executable, args=args)
    async with Client(params, mode="legacy") as client:
        yield client


def _text(result: CallToolResult) -> str:
    (content,) = result.content
    assert isinstance(content, TextContent)
    return content.text


async def _call(client: Client, tool: str, **arguments: Any) -> CallToolResult:
    return await client.call_tool(tool, arguments)


async def test_the_tools_an_agent_sees(daemon: DaemonProcess) -> None:
    async with mcp_client(daemon.socket) as client:
        listed = await client.list_tools()
    tools = {t.name: t for t in listed.tools}
    assert set(tools) == TOOLS
    search = tools["memory_search"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["k"]["maximum"] == 20
    assert all(p.get("description") for n, p in search["properties"].items())
    assert tools["memory_search"].output_schema is not None
    # One line each: a host shows the model the description as given.
    assert all(t.description and "\n" not in t.description for t in tools.values())


async def test_memory_search_finds_the_turn_with_its_source(daemon: DaemonProcess) -> None:
    said = home_entries(daemon.root / "openclaw").containing("Mira lives at Rua das Flores")
    async with mcp_client(daemon.socket) as client:
        result = await _call(client, "memory_search", query="Where does my sister Mira live?", k=3)
    assert not result.is_error
    assert result.structured_content is not None
    hits = result.structured_content["results"]
    hit = next(h for h in hits if said.entry["id"] in h["source"]["entry_ids"])
    assert "Rua das Flores" in hit["text"]
    assert (hit["source"]["agent"], hit["source"]["session_id"]) == ("main", said.session_id)
    text = _text(result)
    assert "Rua das Flores" in text
    assert said.session_id in text  # the source, in the words the agent reads


async def test_memory_get_reads_around_a_result(daemon: DaemonProcess) -> None:
    said = home_entries(daemon.root / "openclaw").containing("Mira lives at Rua das Flores")
    async with mcp_client(daemon.socket) as client:
        result = await _call(
            client,
            "memory_get",
            session_id=said.session_id,
            entry_id=said.entry["id"],
            before=2,
            after=1,
        )
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    turns = result.structured_content["turns"]
    focus = result.structured_content["focus_index"]
    assert turns[focus]["entry_id"] == said.entry["id"]
    assert 1 <= len(turns) <= 4
    assert "> [" in _text(result)


async def test_memory_get_reads_the_lines_of_a_note(daemon: DaemonProcess) -> None:
    async with mcp_client(daemon.socket) as client:
        found = await _call(client, "memory_search", query="Mira lives in Lisbon", kind=["note"])
        assert found.structured_content is not None
        source = found.structured_content["results"][0]["source"]
        lines = await _call(
            client,
            "memory_get",
            path=source["path"],
            line_start=source["line_start"],
            line_end=source["line_end"],
            before=0,
            after=0,
        )
    assert not lines.is_error, _text(lines)
    assert lines.structured_content is not None
    said = [line["text"] for line in lines.structured_content["lines"]]
    assert any("Lisbon" in line for line in said)
    assert _text(lines).startswith(source["path"])


async def test_a_memory_added_by_an_agent_is_its_own_and_found(daemon: DaemonProcess) -> None:
    async with mcp_client(daemon.socket, "work") as client:
        added = await _call(
            client,
            "memory_add",
            text="The office wifi password changed to kestrel-42",
            tags=["office"],
        )
        assert not added.is_error, _text(added)
        found = await _call(client, "memory_search", query="office wifi password", kind=["manual"])
    (hit,) = found.structured_content["results"] if found.structured_content else []
    assert hit["text"] == "The office wifi password changed to kestrel-42"
    assert hit["source"]["agent"] == "work"


async def test_signals_between_agents_and_the_rest(daemon: DaemonProcess) -> None:
    async with mcp_client(daemon.socket, "main") as main:
        sent = await _call(
            main, "signal_send", to=["work"], kind="request", text="Book the train for Friday"
        )
        assert not sent.is_error, _text(sent)
        mistake = await _call(main, "mistake_add", text="Gave the wrong date", lesson="Check it")
        assert not mistake.is_error, _text(mistake)
    async with mcp_client(daemon.socket, "work") as work:
        inbox = await _call(work, "signals")
        ranked = await _call(work, "priorities")
    assert "Book the train for Friday" in _text(inbox)
    assert "from main" in _text(inbox)
    assert "Book the train for Friday" in _text(ranked)


@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        ("memory_search", {"query": "x", "k": 0}, "k: Input should be greater than or equal to 1"),
        ("memory_search", {"query": ""}, "query: String should have at least 1 character"),
        ("memory_search", {"query": "x", "agent": "../etc"}, "not an agent id"),
        ("memory_search", {"query": "x", "since": "99999999d"}, "since"),
        ("signal_send", {"to": ["nobody"], "kind": "fact", "text": "hi"}, "no agent nobody"),
        ("memory_get", {"session_id": "nope", "entry_id": "nope"}, "no entry nope"),
    ],
)
async def test_bad_arguments_are_one_line_tool_errors(
    daemon: DaemonProcess, tool: str, arguments: dict[str, Any], says: str
) -> None:
    async with mcp_client(daemon.socket) as client:
        result = await _call(client, tool, **arguments)
    assert result.is_error
    text = _text(result)
    assert says in text
    assert "\n" not in text


async def test_a_server_for_no_agent_can_search_but_not_sign(daemon: DaemonProcess) -> None:
    async with mcp_client(daemon.socket, agent=None) as client:
        found = await _call(client, "memory_search", query="dentist appointment")
        refused = await _call(client, "signal_send", to=["work"], kind="fact", text="hi")
    assert not found.is_error
    assert refused.is_error
    assert "--agent" in _text(refused)


async def test_no_daemon_is_a_tool_error_naming_infrad(tmp_path: Path) -> None:
    async with mcp_client(tmp_path / "nobody.sock") as client:
        result = await _call(client, "memory_search", query="anything")
    assert result.is_error
    assert "infrad" in _text(result)


# --- infractl openclaw connect | status | disconnect --------------------------------------------


@pytest.fixture
def openclaw(tmp_path: Path) -> Path:
    """OpenClaw's command line as a stand-in that keeps what ``mcp`` and ``config`` write."""
    fake = tmp_path / "openclaw"
    shutil.copy(REPO / "tests" / "fake_openclaw", fake)
    return fake


def _openclaw_state(fake: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(Path(f"{fake}.state.json").read_text())
    return state


def test_connect_dry_run_prints_the_openclaw_commands(
    daemon: DaemonProcess, openclaw: Path
) -> None:
    done = infractl(
        "--socket", str(daemon.socket), "openclaw", "connect", "--dry-run",
        "--openclaw-command", str(openclaw),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[1:4] for line in lines[:2]] == [
        ["mcp", "set", "infra-main"],
        ["mcp", "set", "infra-work"],
    ]
    server = json.loads(shlex.split(lines[0])[-1])
    assert server["args"][-5:] == ["--socket", str(daemon.socket), "mcp", "--agent", "main"]
    assert Path(server["command"]).is_absolute()
    assert any("agents.entries.main.tools.deny" in line for line in lines)
    assert not Path(f"{openclaw}.state.json").exists(), "a dry run changes nothing"


def test_connect_registers_each_agent_and_keeps_the_others_out(
    daemon: DaemonProcess, openclaw: Path
) -> None:
    state = Path(f"{openclaw}.state.json")
    state.write_text(json.dumps({"config": {"agents.entries.main.tools.deny": ["exec"]}}))
    base = ["--socket", str(daemon.socket), "openclaw"]
    flag = ["--openclaw-command", str(openclaw)]

    connected = infractl(*base, "connect", *flag)

    assert connected.returncode == 0, connected.stderr
    saved = _openclaw_state(openclaw)
    assert set(saved["mcp"]) == {"infra-main", "infra-work"}
    assert saved["config"]["agents.entries.main.tools.deny"] == ["exec", "infra-work__*"]
    assert saved["config"]["agents.entries.work.tools.deny"] == ["infra-main__*"]
    status = infractl(*base, "status", "--probe", "--json", *flag, timeout=120)
    assert status.returncode == 0, status.stderr
    assert [(r["agent"], r["registered"], r["tools"]) for r in json.loads(status.stdout)] == [
        ("main", True, len(TOOLS)),
        ("work", True, len(TOOLS)),
    ]

    gone = infractl(*base, "disconnect", *flag)

    assert gone.returncode == 0, gone.stderr
    saved = _openclaw_state(openclaw)
    assert saved["mcp"] == {}
    assert saved["config"] == {"agents.entries.main.tools.deny": ["exec"]}
    after = infractl(*base, "status", *flag)
    assert after.returncode == 1
    assert "infractl openclaw connect" in after.stdout


def test_connect_refuses_an_unknown_agent_and_a_missing_openclaw(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    base = ["--socket", str(daemon.socket), "openclaw", "connect"]
    unknown = infractl(*base, "--agent", "nosuch", "--openclaw-command", "openclaw")
    assert unknown.returncode == 10
    assert "no agent nosuch" in unknown.stderr
    missing = infractl(*base, "--openclaw-command", str(tmp_path / "no-openclaw"))
    assert missing.returncode != 0
    assert "command not found" in missing.stderr
