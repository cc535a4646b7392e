"""The words of the weekly synthesis: what the model is given, what comes back, the extractive
fallback and the note.

A ``Pattern`` is a cluster of the week's mistakes with its counts and a representative quote.
The model gets the patterns and last week's feedback as a ``<mistakes>`` data block and is
asked for two sections, lessons and recommendations; the recommendations are read back from the
second section line by line. Without a model (or when it fails) the synthesis is extractive:
the patterns themselves, the lessons the person recorded with ``mistake add --lesson``, and a
recommendation for each recurring pattern; the note says which it is.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, tzinfo

from jobs.sync_digest import FeedbackNote
from stores.coordination.feedback import Choice
from stores.coordination.mistakes import MistakeEntry, clip
from stores.counts import count

#: Members of one pattern quoted to the model and in the note; the rest are counted.
MAX_QUOTED = 8
SYSTEM = (
    "You write the weekly review of a personal AI agent's mistakes, for the agent to read and "
    "learn from. You get the week's mistakes grouped into patterns, each with its count, "
    "representative quote and members, and the person's feedback on last week's "
    "recommendations. State one lesson per pattern, in one sentence, concrete and in the "
    "second person. Then give at most {n} concrete recommendations the person or the agent can "
    "act on next week: do not repeat what the person marked not useful, build on what was "
    "useful. Answer in Markdown with exactly two sections and no preamble:\n"
    "## Lessons\n- Pattern 1: <lesson>\n...\n"
    "## Recommendations\n- <short title>: <what to do, one or two sentences>\n..."
)
TASK = (
    "Write the weekly review of {agent} for {start} to {end}: one lesson per pattern, then at "
    "most {n} recommendations."
)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*\S)\s*$")


@dataclass(frozen=True)
class Pattern:
    number: int
    #: Representative first, then the others oldest first.
    members: tuple[MistakeEntry, ...]
    cohesion: float = 1.0

    @property
    def representative(self) -> MistakeEntry:
        return self.members[0]

    @property
    def count(self) -> int:
        return len(self.members)

    def by_agent(self) -> dict[str, int]:
        return dict(sorted(Counter(m.agent for m in self.members).items()))

    def lessons(self) -> list[str]:
        return list(dict.fromkeys(m.lesson for m in self.members if m.lesson))

    def title(self) -> str:
        return clip(self.representative.text, 90)


@dataclass(frozen=True)
class Advice:
    """A recommendation as written, before it is sent."""

    title: str
    body: str


def recommendation_id(agent: str, day: date, number: int) -> str:
    """Stable per agent, note day and place: a re-run never sends the same one twice."""
    digest = hashlib.sha256(f"{agent}\x1f{day.isoformat()}\x1f{number}".encode()).hexdigest()
    return f"wk-{digest[:12]}"


def prompt_data(patterns: list[Pattern], feedback: list[FeedbackNote], tz: tzinfo) -> str:
    lines: list[str] = []
    for p in patterns:
        agents = ", ".join(f"{a} {n}" for a, n in p.by_agent().items())
        lines.append(f"Pattern {p.number}: {count(p.count, 'mistake')} ({agents})")
        for m in p.members[:MAX_QUOTED]:
            lines.append(f"- {_line(m, tz)}")
        if p.count > MAX_QUOTED:
            lines.append(f"- ... and {p.count - MAX_QUOTED} more like these")
        lines += [f"  lesson the person recorded: {lesson}" for lesson in p.lessons()]
        lines.append("")
    lines.append("Feedback on last week's recommendations:")
    lines += [f"- {_choice(f.choice)}: {f.title}" for f in feedback] or ["- none given"]
    return "\n".join(lines)


def parse_advice(text: str, limit: int) -> list[Advice]:
    """The bullets of the model's ``Recommendations`` section, as title and body."""
    found: list[Advice] = []
    inside = False
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            inside = heading.group(1).strip().lower().startswith("recommendation")
            continue
        bullet = _BULLET.match(line) if inside else None
        if bullet is not None:
            found.append(_advice(bullet.group(1)))
    return found[:limit]


def extractive(patterns: list[Pattern], limit: int) -> tuple[str, list[Advice]]:
    """Lessons the person recorded, and a recommendation per recurring pattern."""
    lessons = [f"- Pattern {p.number}: {lesson}" for p in patterns for lesson in p.lessons()]
    advice = [
        Advice(
            f"Recurring ({p.count}x): {clip(p.representative.text, 70)}",
            f"{count(p.count, 'time')} this week ({_agents(p)}). For example: "
            f'"{clip(p.representative.quote or p.representative.text, 240)}"'
            + (f" Lesson noted: {p.lessons()[0]}" if p.lessons() else ""),
        )
        for p in patterns
        if p.count >= 2
    ][:limit]
    # "##" like the model's sections: both are demoted one level under the note's heading.
    lines = ["## Lessons", "", *(lessons or ["- none recorded"]), "", "## Recommendations", ""]
    lines += [f"- {a.title}: {a.body}" for a in advice] or ["- none: no mistake recurred"]
    return "\n".join(lines), advice


def render(
    *,
    who: str,
    start: date,
    end: date,
    origin: str,
    patterns: list[Pattern],
    written: str,
    feedback: list[FeedbackNote],
    tz: tzinfo,
) -> str:
    parts = [f"## {who}, week {start.isoformat()} to {end.isoformat()}", "", origin, ""]
    parts += ["### Patterns", ""]
    for p in patterns:
        parts += _pattern(p, tz)
    parts += [_demoted(written.strip()), "", "### Feedback on last week's recommendations", ""]
    parts.append(feedback_line(feedback))
    return "\n".join(parts) + "\n"


def feedback_line(feedback: list[FeedbackNote]) -> str:
    useful = [f.title for f in feedback if f.choice is Choice.USEFUL]
    not_useful = [f.title for f in feedback if f.choice is Choice.NOT_USEFUL]
    if not useful and not not_useful:
        return "- none given"
    return f"useful: {'; '.join(useful) or '-'}; not useful: {'; '.join(not_useful) or '-'}"


def _pattern(p: Pattern, tz: tzinfo) -> list[str]:
    rep = p.representative
    lines = [f"#### {p.number}. {p.title()} ({p.count}x: {_agents(p)})", ""]
    lines.append(f"> {clip(rep.quote or rep.text, 400)}")
    lines.append(f"— {_line(rep, tz, quote=False)}")
    lines += [f"- {_line(m, tz)}" for m in p.members[1:MAX_QUOTED]]
    if p.count > MAX_QUOTED:
        lines.append(f"- and {p.count - MAX_QUOTED} more")
    return [*lines, ""]


def _line(m: MistakeEntry, tz: tzinfo, *, quote: bool = True) -> str:
    where = f" (session {m.session_id}, entry {m.entry_id})" if m.entry_id else ""
    said = f': "{clip(m.quote or m.text, 200)}"' if quote else ""
    return f"{m.at.astimezone(tz):%Y-%m-%d %H:%M} {m.agent}, {m.reason}{where}{said}"


def _agents(p: Pattern) -> str:
    return ", ".join(f"{a} {n}" for a, n in p.by_agent().items())


def _choice(choice: Choice) -> str:
    return choice.value.replace("_", " ")


def _advice(text: str) -> Advice:
    plain = text.replace("**", "").replace("__", "").strip()
    for separator in (": ", " — ", " - "):
        title, found, body = plain.partition(separator)
        if found and title.strip() and body.strip() and len(title) <= 120:
            return Advice(title.strip(), body.strip())
    return Advice(clip(plain, 80), plain)


def _demoted(text: str) -> str:
    """The model's ``##`` sections as ``###``: they sit under the note's own heading."""
    return "\n".join(
        f"#{line.lstrip()}"
        if _HEADING.match(line) and not line.lstrip().startswith("####")
        else line
        for line in text.splitlines()
    )
