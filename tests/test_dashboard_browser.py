"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, against a
real daemon on the sample home. Opens with the access link, searches and opens the stretch
around a result, forgets after confirming, looks at the runs, health, backups and signals, backs
up and verifies, and is refused without the link. Takes a screenshot of each view, into
$INFRA_DASHBOARD_SHOTS when set (else the test's temporary directory).

Without /usr/bin/chromium it skips on a developer's machine and fails under CI (``CI`` set, or
``OPENCLAW_INFRA_TEST_BROWSER=required``, which .ci/run exports).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard_support import answered_recommendation, run_to_end, sample_daemon
from tests.support import DaemonProcess, wait_for

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    with sample_daemon({"OPENCLAW_INFRA_DASHBOARD__PORT": "0"}) as running:
        run_to_end(running, "health")  # a second health run: two points for its chart
        run_to_end(running, "restore_drill")  # fails: no backup yet
        running.call(
            "signal.add",
            {
                "from": "work",
                "to": "main",
                "kind": "request",
                "text": "Ask Dana whether Thursday suits the launch review",
                "priority": "high",
            },
        )
        answered_recommendation(
            running,
            "main-w1-1",
            "Confirm the day before booking",
            "Twice this week a booking was made before Dana confirmed the day.",
            "useful",
        )
        yield running


@pytest.fixture
def page(browser_required: bool, tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium)"
        if browser_required:
            pytest.fail(f"{reason}; the browser test must run under CI")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="profile-", dir=tmp_path),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("INFRA_DASHBOARD_SHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_dashboard_in_a_browser(daemon: DaemonProcess, page: Any, shots: Path) -> None:
    link = daemon.call("dashboard.url")
    address, url = link["address"], link["url"]
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    refused = page.goto(address + "runs")
    assert refused.status == 401
    assert "needs its access link" in page.inner_text("h1")
    page.screenshot(path=shots / "refused.png")
    problems.clear()  # the browser reports the 401 itself as a console error

    page.goto(url)
    assert page.url == address + "runs", "the token leaves the address at once"
    assert page.inner_text("h1") == "Jobs and their runs"
    for job in daemon.call("jobs")["jobs"]:
        assert page.locator(f"#job-{job['name']} h2").inner_text() == job["name"]
    drill = page.locator("#job-restore_drill")
    assert "Last failure" in drill.inner_text()
    assert drill.locator(".tick.s-failed").count() == 1
    page.wait_for_selector("#job-health .uplot canvas")
    page.screenshot(path=shots / "runs.png", full_page=True)

    page.click("nav >> text=Memory")
    page.fill("input[name=q]", "Where does Mira live?")
    page.select_option("select[name=agent]", "main")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("ol.results .result")
    first = page.locator("ol.results .result").first
    assert first.locator(".agent").inner_text() == "main"
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", first.locator("time").inner_text())
    assert "session" in first.locator(".source").inner_text()
    hit = page.locator(".result", has_text="Rua das Flores").first
    hit.locator("summary").click()
    hit.locator("li.turn.focus").first.wait_for()
    assert "Rua das Flores" in hit.locator(".context-body").inner_text()
    page.screenshot(path=shots / "memory.png", full_page=True)

    daemon.call("memory.add", {"text": "The spare key is under the blue flower pot."})
    page.fill("input[name=q]", "spare key blue pot")
    page.select_option("select[name=agent]", "")
    page.select_option("select[name=kind]", "manual")
    page.press("input[name=q]", "Enter")
    page.locator(".result", has_text="blue flower pot").locator("a.forget").click()
    assert page.inner_text("h1") == "Forget this memory?"
    page.screenshot(path=shots / "forget.png", full_page=True)
    page.click("button.danger")
    assert "Forgotten: 1 memory record removed." in page.inner_text(".notice")
    assert page.locator(".result", has_text="blue flower pot").count() == 0

    page.click("nav >> text=Health")
    checks = page.locator("table.checks").first.inner_text()
    for check in daemon.call("health")["checks"]:
        assert check["name"] in checks
    assert page.locator("ol.timeline .tick").count() >= 2
    page.screenshot(path=shots / "health.png", full_page=True)

    page.click("nav >> text=Backups")
    page.click("text=Back up now")
    started = page.inner_text(".notice")
    run_id = int(re.search(r"Backup run (\d+) started", started).group(1))  # type: ignore[union-attr]
    wait_for(lambda: daemon.call("run", {"run_id": run_id})["status"] == "success", timeout=60)
    run_to_end(daemon, "restore_drill")
    page.reload()
    page.locator("table.backups button", has_text="Verify").first.click()
    assert "verified" in page.locator("section.verified").inner_text()
    page.screenshot(path=shots / "backups.png", full_page=True)

    page.click("nav >> text=Signals")
    assert "Ask Dana whether Thursday suits the launch review" in page.inner_text("table.signals")
    assert "launch review" in page.inner_text("ol.priorities")
    answered = page.locator("table.recommendations tr", has_text="Confirm the day before booking")
    assert answered.locator(".choice").inner_text() == "useful"
    page.screenshot(path=shots / "signals.png", full_page=True)

    assert problems == []
    assert all(u.startswith(address) for u in requests), "the page loads nothing from elsewhere"
