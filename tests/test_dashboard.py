"""The dashboard's app under starlette's TestClient, its calls answered by a real daemon over the
socket (the same methods ``DaemonAPI.call`` dispatches), and the dashboard the daemon itself
serves: access (token, cookie, Host, CSRF), every view, and its actions."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from daemon.client import ControlClient
from daemon.dashboard.access import Access
from daemon.dashboard.app import build_app
from tests.dashboard_support import answered_recommendation, run_to_end, sample_daemon
from tests.support import DaemonProcess, infractl, wait_for

BASE = "http://127.0.0.1:8765"
PAGES = ["/", "/runs", "/memory?q=Mira", "/health", "/backups", "/signals"]

#: The first test starts a daemon and waits for its first ingest.
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    with sample_daemon({"OPENCLAW_INFRA_DASHBOARD__PORT": "0"}) as running:
        yield running


@pytest.fixture
def access() -> Access:
    return Access.new(8765)


@pytest.fixture
def anonymous(daemon: DaemonProcess, access: Access) -> Iterator[TestClient]:
    async def call(method: str, params: dict[str, Any]) -> Any:
        def blocking() -> Any:
            with ControlClient(daemon.socket) as client:
                return client.call(method, params)

        return await asyncio.to_thread(blocking)

    with TestClient(build_app(call, access, UTC), base_url=BASE) as client:
        yield client


@pytest.fixture
def client(anonymous: TestClient, access: Access) -> TestClient:
    signed = anonymous.get(f"/?token={access.token}", follow_redirects=False)
    assert signed.status_code == 303
    return anonymous


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [*PAGES, "/memory/context?path=/etc/passwd", "/static/dashboard.js", "/nowhere"]
)
def test_without_the_session_every_page_answers_401(anonymous: TestClient, path: str) -> None:
    answer = anonymous.get(path, follow_redirects=False)
    assert answer.status_code == 401
    assert "infractl dashboard" in answer.text
    assert "set-cookie" not in answer.headers


def test_without_the_session_no_action_is_taken(anonymous: TestClient, access: Access) -> None:
    answer = anonymous.post("/backups/now", data={"csrf": access.csrf})
    assert answer.status_code == 401


def test_a_wrong_token_is_refused(anonymous: TestClient, access: Access) -> None:
    answer = anonymous.get(f"/?token={access.token[:-1]}x", follow_redirects=False)
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    assert anonymous.get("/runs").status_code == 401


def test_the_token_becomes_a_cookie_and_leaves_the_address(
    anonymous: TestClient, access: Access
) -> None:
    answer = anonymous.get(f"/memory?q=Mira&token={access.token}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/memory?q=Mira"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{access.cookie}={access.session};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert access.token not in cookie
    assert anonymous.get("/memory?q=Mira").status_code == 200


def test_a_foreign_host_is_refused_even_with_the_session(client: TestClient) -> None:
    """A DNS name rebound to 127.0.0.1 arrives with its own name in Host."""
    for host in ("attacker.example:8765", "127.0.0.1.nip.io:8765"):
        answer = client.get("/runs", headers={"host": host})
        assert answer.status_code == 400, host
    assert client.get("/runs", headers={"host": "localhost:8765"}).status_code == 200


def test_no_cors_and_no_framing(client: TestClient) -> None:
    answer = client.get("/runs", headers={"origin": "http://attacker.example"})
    assert not [h for h in answer.headers if h.startswith("access-control-")]
    assert answer.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["referrer-policy"] == "same-origin"


def test_a_change_needs_the_csrf_token_and_our_origin(
    client: TestClient, daemon: DaemonProcess, access: Access
) -> None:
    added = daemon.call("memory.add", {"text": "The bike lock code is 4-1-7-7.", "agent": "main"})
    for refused in (
        client.post("/memory/forget", data={"id": added["id"]}),
        client.post("/memory/forget", data={"id": added["id"], "csrf": "guessed"}),
        client.post(
            "/memory/forget",
            data={"id": added["id"], "csrf": access.csrf},
            headers={"origin": "http://attacker.example"},
        ),
    ):
        assert refused.status_code == 403
    found = daemon.call("memory.search", {"query": "bike lock code", "kind": ["manual"]})
    assert [r["id"] for r in found["results"]] == [added["id"]]
    daemon.call("memory.forget", {"id": added["id"]})


def test_only_get_and_post(client: TestClient) -> None:
    assert client.delete("/runs").status_code == 405


# --- views -------------------------------------------------------------------------------------


def test_the_runs_view_shows_every_job_its_runs_and_a_chart(
    client: TestClient, daemon: DaemonProcess
) -> None:
    page = client.get("/")  # the home page is the runs view
    assert page.status_code == 200
    assert page.url.path == "/runs"
    for job in daemon.call("jobs")["jobs"]:
        assert f'id="job-{job["name"]}"' in page.text
    ingest_runs = daemon.call("runs", {"job": "ingest"})["runs"]
    section = page.text.split('id="job-ingest"')[1].split("</section>")[0]
    assert section.count('class="tick s-') == len(ingest_runs)
    for run in ingest_runs:
        assert f"run {run['run_id']} · {run['status']}" in section
    charts = re.findall(r'<script type="application/json">(.*?)</script>', page.text)
    assert all(json.loads(c)["job"] for c in charts)


def test_the_runs_view_shows_a_failure_and_failures_in_a_row(
    client: TestClient, daemon: DaemonProcess
) -> None:
    failed = run_to_end(daemon, "restore_drill")  # no backup yet: nothing to restore
    assert failed["status"] == "failed"
    page = client.get("/runs")
    section = page.text.split('id="job-restore_drill"')[1].split("</section>")[0]
    assert f"Last failure</strong>, run {failed['run_id']}" in section
    assert failed["error_message"].split(":")[0] in section
    fails = daemon.call("jobs")["jobs"]
    in_a_row = next(j for j in fails if j["name"] == "restore_drill")["consecutive_failures"]
    assert re.search(rf'failures in a row</dt><dd class="bad">{in_a_row}</dd>', section)


def test_the_memory_view_searches_with_filters(client: TestClient) -> None:
    page = client.get("/memory", params={"q": "Where does Mira live?"})
    assert page.status_code == 200
    assert 'class="agent">main' in page.text
    assert "Rua das Flores" in page.text
    assert "/memory/context?agent=main&amp;session_id=" in page.text
    work = client.get("/memory", params={"q": "Where does Mira live?", "agent": "work"})
    assert 'class="agent">main' not in work.text
    notes = client.get("/memory", params={"q": "tomatoes", "kind": "note"})
    assert re.findall(r'class="kind">(\w+)', notes.text) == ["note"] * len(
        re.findall(r'class="kind">', notes.text)
    )
    assert "/memory/context?path=" in notes.text
    summaries = client.get("/memory", params={"q": "Tasca do Chico", "kind": "summary"})
    assert 'class="kind">summary' in summaries.text
    assert "Around it" not in summaries.text, "a compaction summary is no turn to open"
    future = client.get("/memory", params={"q": "tomatoes", "since": "2099-01-01"})
    assert "Nothing found." in future.text


def test_a_refused_search_says_why(client: TestClient) -> None:
    page = client.get("/memory", params={"q": "tomatoes", "since": "last tuesday"})
    assert page.status_code == 400
    assert "since: not a date, time or age: &#39;last tuesday&#39;" in page.text


def test_the_stretch_around_a_result(client: TestClient) -> None:
    page = client.get("/memory", params={"q": "Where does Mira live?"})
    link = re.search(r'data-src="(/memory/context\?agent=[^"]+)"', page.text)
    assert link
    fragment = client.get(link.group(1).replace("&amp;", "&"), headers={"X-Fragment": "1"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    focused = re.findall(r'class="turn role-\w+ focus">\s*<span class="who">(\w+)', fragment.text)
    assert focused
    assert "Rua das Flores" in fragment.text
    whole = client.get(link.group(1).replace("&amp;", "&"))
    assert "<html" in whole.text
    refused = client.get("/memory/context", params={"path": "/etc/passwd"})
    assert refused.status_code == 403
    assert "not in the workspace of an agent" in refused.text


def test_forgetting_asks_first_then_forgets(client: TestClient, daemon: DaemonProcess) -> None:
    added = daemon.call("memory.add", {"text": "Grandma's marmalade: bitter oranges, slow boil."})
    page = client.get("/memory", params={"q": "marmalade oranges", "kind": "manual"})
    link = re.search(r'href="(/memory/forget\?[^"]+)"', page.text)
    assert link
    confirm = client.get(link.group(1).replace("&amp;", "&"))
    assert "Forget this memory?" in confirm.text
    assert "bitter oranges" in confirm.text
    assert daemon.call("memory.search", {"query": "marmalade", "kind": ["manual"]})["results"]
    done = client.post(
        "/memory/forget",
        data={
            "id": added["id"],
            "csrf": _csrf(confirm.text),
            "back": "q=marmalade+oranges&kind=manual",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/memory?q=marmalade+oranges&kind=manual&forgot=1"
    after = client.get(done.headers["location"])
    assert "Forgotten: 1 memory record removed." in after.text
    assert "bitter oranges" not in after.text
    assert daemon.call("memory.search", {"query": "marmalade", "kind": ["manual"]})["results"] == []


def test_the_health_view_shows_the_checks_and_the_history(
    client: TestClient, daemon: DaemonProcess
) -> None:
    run_to_end(daemon, "health")
    history = daemon.call("health.history", {"limit": 10})
    assert history["keep"] == "30d"
    assert history["reports"][0]["checks"]
    page = client.get("/health")
    assert page.status_code == 200
    for check in daemon.call("health")["checks"]:
        assert f"<td>{check['name']}</td>" in page.text
    strip = page.text.split('aria-label="health reports, oldest first"')[1].split("</ol>")[0]
    assert strip.count('class="tick s-') == len(daemon.call("health.history")["reports"])


def test_backing_up_now_and_verifying(client: TestClient, daemon: DaemonProcess) -> None:
    page = client.get("/backups")
    assert page.status_code == 200
    started = client.post("/backups/now", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert started.status_code == 303
    run_id = int(started.headers["location"].rsplit("=", 1)[1])
    shown = client.get(started.headers["location"])
    assert f"Backup run {run_id} started." in shown.text
    wait_for(
        lambda: daemon.call("run", {"run_id": run_id})["status"] == "success",
        timeout=60,
        what="the backup the page started",
    )
    (newest, *_) = daemon.call("backup.list")["backups"]
    listed = client.get("/backups")
    assert newest["name"] in listed.text
    verified = client.post(
        "/backups/verify", data={"csrf": _csrf(listed.text), "name": newest["name"]}
    )
    assert verified.status_code == 200
    assert f'{newest["name"]}: <span class="status s-success">verified</span>' in verified.text
    drill = run_to_end(daemon, "restore_drill")
    drills = client.get("/backups").text.split("Restore drills")[1]
    assert f"<td>{drill['run_id']}</td>" in drills


def test_the_signals_view_with_priorities_and_the_weekly_synthesis(
    client: TestClient, daemon: DaemonProcess
) -> None:
    daemon.call(
        "signal.add",
        {"from": "work", "to": "main", "kind": "request", "text": "Ask Dana about the launch date"},
    )
    page = client.get("/signals")
    assert page.status_code == 200
    signals = page.text.split("<h2>Priorities</h2>")[0]
    assert "Ask Dana about the launch date" in signals
    priorities = page.text.split("<h2>Priorities</h2>")[1].split("<h2>Weekly synthesis</h2>")[0]
    assert "Ask Dana about the launch date" in priorities
    answered_recommendation(
        daemon,
        "work-w1-1",
        "Name an owner for each section",
        "Two sections had none.",
        "not_useful",
    )
    weekly = client.get("/signals").text.split("<h2>Weekly synthesis</h2>")[1]
    row = weekly.split("Name an owner for each section")[1].split("</tr>")[0]
    assert "<td>synthesize</td>" in row
    assert '<span class="choice c-not_useful">not useful</span>' in row
    assert "not useful: 1" in weekly


# --- the daemon's own dashboard --------------------------------------------------------------


def test_infractl_gives_a_loopback_link_that_opens_the_runs(daemon: DaemonProcess) -> None:
    env = {"OPENCLAW_INFRA_SOCKET_PATH": str(daemon.socket)}
    done = infractl("dashboard", "--print-url", env=env)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{43}", url)
    address = url.split("?")[0]
    assert daemon.call("status")["dashboard"] == address
    with httpx.Client() as browser:
        assert browser.get(address + "runs").status_code == 401
        page = browser.get(url, follow_redirects=True)
        assert page.status_code == 200
        assert str(page.url) == address + "runs"
        assert 'id="job-ingest"' in page.text
        assert 'class="tick s-success"' in page.text
    token = url.split("token=")[1]
    assert token not in daemon.log()
    assert token not in json.dumps(daemon.call("status"))


def test_an_oversized_form_is_refused_unread(client: TestClient, access: Access) -> None:
    answer = client.post(
        "/backups/now",
        content=b"csrf=" + access.csrf.encode() + b"&x=" + b"y" * 20_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
    assert "at most 16384 bytes" in answer.text


def test_infractl_dashboard_opens_the_link_in_the_browser(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """``webbrowser`` runs $BROWSER with the link; what infractl prints leaves the token out."""
    opened = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
    browser.chmod(0o700)
    env = {"OPENCLAW_INFRA_SOCKET_PATH": str(daemon.socket), "BROWSER": f"{browser} %s"}
    done = infractl("dashboard", env=env)
    assert done.returncode == 0, done.stderr
    link = daemon.call("dashboard.url")
    assert opened.read_text() == link["url"]
    assert done.stdout == f"dashboard: opened {link['address']} in the browser\n"
    assert "token" not in done.stdout
