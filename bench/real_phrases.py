"""What the daemon keeps of a home the real OpenClaw wrote, phrase by phrase, for any checkout.

    python bench/real_phrases.py tests/fixtures/openclaw/v2026.9.6 [--source CHECKOUT]

HOME is a fixture folder written by ``tools/openclaw_fixtures`` (``state/`` and its
``manifest.json``, which lists the phrases OpenClaw holds and those that must never be stored);
it is copied, never changed. The daemon of this checkout, or of ``--source`` (an older one, to
compare), runs its first ingest on the copy; then its memory database is read as it stands.
Printed: present phrases found, absent phrases stored (and why they must not be), phrases said
by a known sender but stored under another speaker, turns stored twice (the same words from
the same agent at the same time), and the problems the first ingest reported. The same rules
as ``tests/test_real_openclaw.py``, in a form that runs against code from before those tests
existed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sqlite3
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from real_home import _connect, _copy, _runs, _start, _until


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("home", type=Path, help="a fixture folder (state/ and manifest.json)")
    parser.add_argument("--source", type=Path, help="run the daemon of this checkout instead")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args()
    manifest_path = args.home / "manifest.json"
    if not manifest_path.is_file():
        parser.error(f"{args.home}: no manifest.json; give a fixture folder")
    manifest = json.loads(manifest_path.read_text())
    root = Path(tempfile.mkdtemp(prefix="phrases-", dir="/tmp"))
    try:
        home = _copy(args.home, root / "openclaw")
        proc = _start(root, home, args.source)
        try:
            client = _connect(root / "s.sock", proc)
            _until(lambda: _runs(client, "success"), timeout=600, what="the first ingest")
            runs = client.call("runs", {"job": "ingest"})["runs"]
            problems = _problems([r for r in runs if r["status"] == "success"][-1])
            client.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        found = _findings(manifest, root / "state" / "memory.sqlite", problems)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        _report(args.home.name, args.source, found)
    return 0


def _problems(run: dict[str, Any]) -> list[str]:
    """Each problem of the run's stats as ``kind where``, whatever shape that version gives."""
    seen: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "kind" in value and ("source" in value or "path" in value or "where" in value):
                where = value.get("source") or value.get("path") or value.get("where")
                seen.append(f"{value['kind']} {Path(str(where)).name}")
                return
            for key, inner in value.items():
                if key == "problems" and isinstance(inner, dict):  # {kind: count}
                    seen.extend(f"{k} x{v}" for k, v in inner.items() if isinstance(v, int))
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(run.get("stats") or {})
    return seen


def _findings(manifest: dict[str, Any], database: Path, problems: list[str]) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        turns = conn.execute("SELECT role, speaker, text, agent, ts FROM turns").fetchall()
        chunks = [t for (t,) in conn.execute("SELECT text FROM chunks")]
    finally:
        conn.close()
    stored = [t for _, _, t, _, _ in turns] + chunks
    present = manifest["present"]
    missing = [p for p in present if not any(p["phrase"] in t for t in stored)]
    leaked = [a for a in manifest["absent"] if any(a["phrase"] in t for t in stored)]
    wrong_speaker = []
    for phrase in (p for p in present if p.get("speaker")):
        said = [s for role, s, t, _, _ in turns if phrase["phrase"] in t and role == phrase["role"]]
        wrong_speaker += [
            (phrase["phrase"], phrase["speaker"], s) for s in said if s != phrase["speaker"]
        ]
    # The same words from the same agent at the same time: two copies of one turn.
    twice = [key for key, n in Counter((a, ts, r, t) for r, _, t, a, ts in turns).items() if n > 1]
    return {
        "present": len(present),
        "found": len(present) - len(missing),
        "missing": [f"{p['phrase']} ({p['where']})" for p in missing],
        "absent": len(manifest["absent"]),
        "stored": [f"{a['phrase']} ({a['why']})" for a in leaked],
        "wrong_speaker": [f"{p}: {want!r}, stored {got!r}" for p, want, got in wrong_speaker],
        "turns_twice": len(twice),
        "turns": len(turns),
        "chunks": len(chunks),
        "problems": problems,
    }


def _report(name: str, source: Path | None, found: dict[str, Any]) -> None:
    print(f"{name}, daemon of {source or 'this checkout'}")
    print(f"  present phrases found: {found['found']}/{found['present']}")
    for line in found["missing"]:
        print(f"    missing: {line}")
    print(f"  absent phrases stored: {len(found['stored'])}/{found['absent']}")
    for line in found["stored"]:
        print(f"    stored: {line}")
    print(f"  turns under the wrong speaker: {len(found['wrong_speaker'])}")
    for line in found["wrong_speaker"][:10]:
        print(f"    {line}")
    counts = f"turns: {found['turns']}, chunks: {found['chunks']}"
    print(f"  {counts}, turns stored twice: {found['turns_twice']}")
    print(f"  problems: {', '.join(found['problems']) or 'none'}")


if __name__ == "__main__":
    sys.exit(main())
