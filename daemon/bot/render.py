"""The bot's replies: the socket API's answers drawn as short HTML blocks for a phone screen.

Each function takes what a socket method returned (the same dicts ``infractl --json`` prints)
and returns blocks for ``bot_text.paginate``. Every value from outside this module goes through
``esc``; the templates here hold the only markup.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from daemon.bot.text import clip, esc, text_blocks
from stores.counts import count

SNIPPET = 220
NOTE = 80

_MARK = {"ok": "✅", "degraded": "⚠️", "failed": "❌"}
_RUN_MARK = {"success": "✅", "running": "⏳", "skipped": "⏭", "missed": "⚠️"}

HELP = [
    "<b>Commands</b>",
    "/status: what the daemon is doing",
    "/health: component checks, run now",
    "/jobs: schedules, last and next runs",
    "/runs [job]: recent runs",
    "/trigger &lt;job&gt;: run a job now",
    "/pause &lt;job&gt;, /resume &lt;job&gt;: its schedule",
    "/search &lt;query&gt;: search the memory",
]
REFINE_HELP = "/refine &lt;prompt&gt;: answer by draft, critique and refine"
VOICE_HELP = "Send a voice note: it is transcribed and kept in memory."


def help_text(*, refine: bool, voice: bool) -> list[str]:
    return [*HELP, *([REFINE_HELP] if refine else []), *([VOICE_HELP] if voice else [])]


def ago(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    seconds = (now - datetime.fromisoformat(iso)).total_seconds()
    return f"{span(abs(seconds))} ago" if seconds >= 0 else f"in {span(-seconds)}"


def span(seconds: float) -> str:
    whole = int(seconds)
    if whole >= 86400:
        return f"{whole // 86400}d{whole % 86400 // 3600}h"
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    if whole >= 60:
        return f"{whole // 60}m"
    return f"{whole}s"


def status(d: dict[str, Any], now: datetime) -> list[str]:
    state = "stopping" if d["stopping"] else d["scheduler"]
    jobs = d["jobs"]
    running = [j["name"] for j in jobs if j["running_run_id"]]
    paused = [j["name"] for j in jobs if j["paused"]]
    failing = [j["name"] for j in jobs if j["consecutive_failures"]]
    blocks = [
        f"<b>infrad</b> {esc(d['version'])} · up {span(d['uptime_s'])} · scheduler {esc(state)}"
    ]
    health = d.get("health")
    if health:
        mark = _MARK.get(health["status"], "")
        blocks.append(
            f"health: {mark} {esc(health['status'])} (checked {ago(health['checked_at'], now)})"
        )
    blocks.append(f"jobs: {len(jobs)}; running: {esc(', '.join(running) or 'none')}")
    if paused:
        blocks.append(f"paused: {esc(', '.join(paused))}")
    if failing:
        blocks.append(f"failing: {esc(', '.join(failing))}")
    return blocks


def health(d: dict[str, Any]) -> list[str]:
    blocks = [f"{_MARK.get(d['status'], '')} health: <b>{esc(d['status'])}</b>"]
    for check in d["checks"]:
        mark = _MARK.get(check["status"], "")
        blocks.append(f"{mark} {esc(check['name'])}: {esc(clip(check['detail'], NOTE))}")
    return blocks


def jobs(d: dict[str, Any], now: datetime) -> list[str]:
    blocks = []
    for j in d["jobs"]:
        state = (
            "running"
            if j["running_run_id"]
            else "paused"
            if j["paused"]
            else "enabled"
            if j["enabled"]
            else "disabled"
        )
        last = j["last_status"] or "-"
        fails = (
            f", {count(j['consecutive_failures'], 'failure')} in a row"
            if j["consecutive_failures"]
            else ""
        )
        blocks.append(
            f"<b>{esc(j['name'])}</b> {esc(state)} · {esc(j['schedule'])}\n"
            f"   last {esc(last)}{fails} · next {ago(j['next_run_at'], now)}"
        )
    return blocks or ["no jobs"]


def runs(d: dict[str, Any], now: datetime) -> list[str]:
    blocks = []
    for r in d["runs"]:
        mark = _RUN_MARK.get(r["status"], "❌")
        note = r["error_message"] or (r.get("stats") or {}).get("summary") or ""
        took = f" {r['duration_ms'] / 1000:.1f}s" if r["duration_ms"] is not None else ""
        line = (
            f"{mark} #{r['run_id']} <b>{esc(r['job'])}</b> {esc(r['status'])}{took}"
            f" · {ago(r['started_at'] or r['finished_at'], now)}"
        )
        if note:
            line += f"\n   {esc(clip(str(note), NOTE))}"
        blocks.append(line)
    return blocks or ["no runs recorded yet"]


def triggered(d: dict[str, Any]) -> list[str]:
    return [f"▶️ <b>{esc(d['job'])}</b> started: run #{d['run_id']}"]


def paused(names: list[str], verb: str) -> list[str]:
    return [f"{verb}: {esc(', '.join(names)) or 'nothing'}"]


def search(d: dict[str, Any], zone: tzinfo) -> list[str]:
    results = d["results"]
    if not results:
        return [f"nothing found for <i>{esc(clip(d['query'], NOTE))}</i>"]
    blocks = []
    for n, result in enumerate(results, 1):
        source = result["source"]
        when = source.get("started_at")
        day = datetime.fromisoformat(when).astimezone(zone).date().isoformat() if when else "-"
        blocks.append(
            f"<b>{n}.</b> {esc(source.get('agent_id') or 'all agents')} · {day}"
            f" · {esc(source['kind'])}\n{esc(clip(result['text'], SNIPPET))}"
        )
    return blocks


def refined(d: dict[str, Any]) -> list[str]:
    critique = d.get("critique")
    found = f", {count(len(critique['problems']), 'problem')} found" if critique is not None else ""
    return [*text_blocks(d["final"]), f"<i>{esc(d['mode'])}{found}</i>"]


def failure(message: str) -> list[str]:
    return [f"⚠️ {esc(clip(message, 600))}"]


def transcript(text: str, *, language: str | None, duration_s: float | None) -> list[str]:
    facts = [f for f in (language, f"{duration_s:.0f}s" if duration_s else None) if f]
    header = f"🎙 <i>{esc(' · '.join(facts))}</i>" if facts else "🎙"
    return [header, *(text_blocks(text) or ["(no speech recognised)"])]
