"""The quickstart's OpenClaw home: two agents, both transcript layouts, a few days of talk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.sample.writer import OpenClawWriter


def write_sample_home(home: Path, today: datetime | None = None) -> Path:
    """The quickstart's OpenClaw home: two agents, both layouts, a few days of talk. The latest
    talk is two and three hours before ``today`` (default: now, to the hour), so that a fresh
    daemon has finished hours to summarise at once; a given ``today`` is taken at 09:00."""
    if today is None:
        today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    else:
        today = today.replace(hour=9, minute=0, second=0, microsecond=0)
    writer = OpenClawWriter(home)
    writer.add_agent(
        "main",
        "Juniper",
        "Dana",
        "- Dana prefers short replies.\n- Dana's sister Mira lives in Lisbon.\n",
    )
    writer.add_agent("work", "Ledger", "Dana", "- Quarterly report is due on the 5th.\n")
    (writer.workspace("main") / "memory" / f"{(today - timedelta(days=2)):%Y-%m-%d}.md").write_text(
        "# Daily notes\n\n## Garden\n\nDana planted tomatoes (San Marzano) along the south fence.\n"
    )
    old = writer.new_session("main", today - timedelta(days=2))
    old.user("I planted San Marzano tomatoes along the south fence today.")
    old.assistant(
        "Lovely. They like full sun; the south fence is a good spot.",
        thinking="Dana gardens; note the variety.",
    )
    old.user("Remind me what my sister's new address is? She moved to Lisbon.")
    old.tool("memory_search", {"query": "Mira address"}, "Mira: Rua das Flores 12, Lisbon")
    old.assistant("Mira lives at Rua das Flores 12 in Lisbon.")
    old.heartbeat()
    live = writer.new_session("main", today - timedelta(hours=3))
    live.user("Book a table for two at Tasca do Chico on Friday at 8pm.")
    live.assistant("Done: Tasca do Chico, Friday 20:00, two people. Confirmation code TQ-4471.")
    live.compaction(
        "## Goal\nHelp Dana with plans.\n\n## Progress\n- Dinner booked at Tasca "
        "do Chico for Friday."
    )
    live.user("Also, the dentist moved my appointment to Tuesday at 9:30.")
    live.assistant("Noted: dentist on Tuesday at 09:30.")
    writer.write_legacy("main", "agent:main:telegram:direct:5550001", live, [old])
    first = writer.new_session("work", today - timedelta(days=1))
    first.user("The quarterly report is due on the 5th; Priya owns the revenue section.")
    first.assistant("Got it: report due on the 5th, revenue section by Priya.")
    first.assistant("", stop_reason="error")
    second = writer.new_session("work", today - timedelta(hours=2))
    second.user("We decided to move the launch review to Thursday.")
    second.assistant("Launch review moved to Thursday. I'll flag it in the report.")
    writer.write_sqlite("work", "agent:work:telegram:direct:5550001", [first, second])
    return home
