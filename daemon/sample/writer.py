"""Writing an OpenClaw home the way OpenClaw writes one: agents, workspaces, both transcript
layouts with the noise real transcripts carry (session headers, model changes, tool calls,
thinking, heartbeats, compactions). ``infrad --sample`` and the tests build their homes with it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.sample.session import SessionBuilder, epoch_ms, iso_time

_SCHEMA = """
CREATE TABLE session_nodes (
  session_key TEXT NOT NULL PRIMARY KEY, current_session_id TEXT NOT NULL,
  entry_json TEXT NOT NULL, entry_valid INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL
);
CREATE TABLE session_windows (
  session_id TEXT NOT NULL PRIMARY KEY, session_key TEXT NOT NULL, previous_session_id TEXT,
  reason TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE transcript_events (
  session_id TEXT NOT NULL, seq INTEGER NOT NULL, event_json TEXT,
  event_zstd BLOB, created_at INTEGER NOT NULL, PRIMARY KEY (session_id, seq)
);
CREATE TABLE session_transcript_archives (
  session_id TEXT NOT NULL, generation TEXT NOT NULL, session_key TEXT NOT NULL,
  reason TEXT NOT NULL, encoding TEXT NOT NULL, archive_blob BLOB NOT NULL,
  archive_sha256 TEXT NOT NULL, archive_name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL, PRIMARY KEY (session_id, generation)
);
CREATE TABLE session_transcript_cold_archives (
  session_id TEXT NOT NULL PRIMARY KEY, generation TEXT NOT NULL,
  archive_name TEXT NOT NULL UNIQUE, archive_sha256 TEXT NOT NULL,
  event_count INTEGER NOT NULL, raw_bytes INTEGER NOT NULL, archive_bytes INTEGER NOT NULL,
  last_seq INTEGER NOT NULL, archived_at INTEGER NOT NULL, storage TEXT NOT NULL,
  archive_blob BLOB
);
CREATE TABLE transcript_rewrite_watermarks (
  session_id TEXT PRIMARY KEY, generation TEXT NOT NULL, updated_at INTEGER NOT NULL
);
PRAGMA user_version = 23;
"""


class OpenClawWriter:
    """Writes agents, workspaces and transcripts under an OpenClaw state directory."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.agents: list[str] = []

    def workspace(self, agent: str) -> Path:
        return self.home / ("workspace" if agent == "main" else f"workspace-{agent}")

    def add_agent(self, agent: str, name: str, user: str, memory: str = "") -> Path:
        ws = self.workspace(agent)
        (ws / "memory").mkdir(parents=True, exist_ok=True)
        (ws / "IDENTITY.md").write_text(f"# IDENTITY.md - Who Am I?\n\n- **Name:** {name}\n")
        (ws / "USER.md").write_text(f"# USER.md - About Your Human\n\n- **Name:** {user}\n")
        (ws / "MEMORY.md").write_text(f"# MEMORY.md\n\n{memory}")
        self.agents.append(agent)
        self._write_config()
        return ws

    def _write_config(self) -> None:
        listed = "".join(f'      {{ id: "{agent}" }},\n' for agent in self.agents)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "openclaw.json").write_text(
            "// OpenClaw configuration (JSON5)\n{\n  agents: {\n    list: [\n"
            + listed
            + "    ],\n  },\n}\n"
        )

    def new_session(self, agent: str, started: datetime) -> SessionBuilder:
        sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{agent}/{started.isoformat()}"))
        return SessionBuilder(sid, started, str(self.workspace(agent)))

    def write_legacy(
        self,
        agent: str,
        session_key: str,
        live: SessionBuilder,
        archived: list[SessionBuilder] | None = None,
        deleted: list[SessionBuilder] | None = None,
    ) -> Path:
        """``live`` as ``<id>.jsonl`` in ``sessions.json``; the others as reset/deleted archives."""
        sessions = self.home / "agents" / agent / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        for state, olds in (("reset", archived or []), ("deleted", deleted or [])):
            for old in olds:
                stamp = iso_time(old.now).replace(":", "-")
                (sessions / f"{old.session_id}.jsonl.{state}.{stamp}").write_text(old.jsonl())
        live_path = sessions / f"{live.session_id}.jsonl"
        live_path.write_text(live.jsonl())
        index = {
            session_key: {
                "sessionId": live.session_id,
                "updatedAt": epoch_ms(live.now),
                "sessionFile": str(live_path),
                "chatType": "direct",
                "lastChannel": "telegram",
            }
        }
        (sessions / "sessions.json").write_text(json.dumps(index, indent=2))
        return live_path

    def write_sqlite(
        self, agent: str, session_key: str, chain: list[SessionBuilder], compress: bool = False
    ) -> Path:
        db_path = self.database(agent)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db_path)
        try:
            conn.executescript(_SCHEMA)
            self._insert_chain(conn, session_key, chain, compress)
            conn.commit()
        finally:
            conn.close()
        return db_path

    def database(self, agent: str) -> Path:
        return self.home / "agents" / agent / "agent" / "openclaw-agent.sqlite"

    def append_sqlite(
        self, agent: str, session_key: str, chain: list[SessionBuilder], compress: bool = False
    ) -> Path:
        """What the builders of ``chain`` gained since they were written: new rows, new sessions."""
        db_path = self.database(agent)
        conn = sqlite3.connect(db_path)
        try:
            self._insert_chain(conn, session_key, chain, compress)
            conn.commit()
        finally:
            conn.close()
        return db_path

    def _insert_chain(
        self,
        conn: sqlite3.Connection,
        session_key: str,
        chain: list[SessionBuilder],
        compress: bool,
    ) -> None:
        previous = None
        for index, session in enumerate(chain):
            conn.execute(
                "INSERT OR IGNORE INTO session_windows VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session.session_id,
                    session_key,
                    previous,
                    "initial" if index == 0 else "reset",
                    epoch_ms(session.started),
                    epoch_ms(session.now),
                ),
            )
            for seq, entry in enumerate(session.entries):
                self._insert_event(conn, session.session_id, seq, entry, compress)
            previous = session.session_id
        conn.execute(
            "INSERT OR REPLACE INTO session_nodes VALUES (?, ?, ?, 1, ?)",
            (
                session_key,
                chain[-1].session_id,
                json.dumps({"sessionId": chain[-1].session_id}),
                epoch_ms(chain[-1].now),
            ),
        )

    @staticmethod
    def _insert_event(
        conn: sqlite3.Connection, session_id: str, seq: int, entry: dict[str, Any], compress: bool
    ) -> None:
        text = json.dumps(entry, ensure_ascii=False)
        created = epoch_ms(datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")))
        if compress:
            import zstandard

            blob = zstandard.ZstdCompressor().compress(text.encode())
            conn.execute(
                "INSERT OR IGNORE INTO transcript_events VALUES (?, ?, NULL, ?, ?)",
                (session_id, seq, blob, created),
            )
        else:
            conn.execute(
                "INSERT OR IGNORE INTO transcript_events VALUES (?, ?, ?, NULL, ?)",
                (session_id, seq, text, created),
            )

    # --- what OpenClaw 2026.9 does to sessions later: delete, cold storage, rewrites ----------

    def delete_session(self, agent: str, session: SessionBuilder, when: datetime) -> str:
        """Deleted: its rows go, a zstd JSONL archive stays in the database and is published
        as ``<id>.jsonl.deleted.<time>.<generation>.zst`` beside the sessions."""
        import zstandard

        generation = uuid.uuid5(uuid.NAMESPACE_URL, f"{session.session_id}/deleted").hex
        stamp = iso_time(when).replace(":", "-")
        name = f"{session.session_id}.jsonl.deleted.{stamp}.{generation}.zst"
        blob = zstandard.ZstdCompressor().compress(session.jsonl().encode())
        conn = sqlite3.connect(self.database(agent))
        try:
            conn.execute(
                "INSERT INTO session_transcript_archives VALUES (?, ?, ?, 'deleted', 'zstd',"
                " ?, ?, ?, ?)",
                (
                    session.session_id,
                    generation,
                    f"agent:{agent}:deleted",
                    blob,
                    hashlib.sha256(blob).hexdigest(),
                    name,
                    epoch_ms(when),
                ),
            )
            for table in ("transcript_events", "session_windows"):
                conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (session.session_id,))  # noqa: S608 - fixed table names
            conn.commit()
        finally:
            conn.close()
        sessions = self.home / "agents" / agent / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        (sessions / name).write_bytes(blob)
        return name

    def cold_store(
        self, agent: str, session: SessionBuilder, when: datetime, *, in_file: bool = True
    ) -> str:
        """Cold storage: the rows move to a zstd file of records (or into the row itself)."""
        import zstandard

        conn = sqlite3.connect(self.database(agent))
        try:
            rows = conn.execute(
                "SELECT seq, event_json, created_at FROM transcript_events WHERE session_id = ?"
                " ORDER BY seq",
                (session.session_id,),
            ).fetchall()
            generation = uuid.uuid5(uuid.NAMESPACE_URL, f"{session.session_id}/cold").hex
            records = [{"kind": "header", "version": 1, "sessionId": session.session_id}]
            records += [
                {"kind": "event", "row": {"seq": s, "event_json": j, "created_at": c}}
                for s, j, c in rows
            ]
            raw = "".join(json.dumps(r) + "\n" for r in records).encode()
            blob = zstandard.ZstdCompressor().compress(raw)
            digest = hashlib.sha256(blob).hexdigest()
            name = f"{digest}.jsonl.zst"
            conn.execute(
                "INSERT INTO session_transcript_cold_archives VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.session_id,
                    generation,
                    name,
                    digest,
                    len(rows),
                    len(raw),
                    len(blob),
                    rows[-1][0],
                    epoch_ms(when),
                    "file" if in_file else "sqlite",
                    None if in_file else blob,
                ),
            )
            conn.execute(
                "DELETE FROM transcript_events WHERE session_id = ?", (session.session_id,)
            )
            conn.commit()
        finally:
            conn.close()
        if in_file:
            cold = self.home / "agents" / agent / "sessions" / "cold"
            cold.mkdir(parents=True, exist_ok=True)
            (cold / name).write_bytes(blob)
        return name

    def rewrite(self, agent: str, session: SessionBuilder, generation: str) -> None:
        """Rows rewritten in place (as ``openclaw doctor`` relabels old text): a new
        generation in ``transcript_rewrite_watermarks``."""
        conn = sqlite3.connect(self.database(agent))
        try:
            for seq, entry in enumerate(session.entries):
                conn.execute(
                    "UPDATE transcript_events SET event_json = ? WHERE session_id = ? AND seq = ?",
                    (json.dumps(entry, ensure_ascii=False), session.session_id, seq),
                )
            conn.execute(
                "INSERT OR REPLACE INTO transcript_rewrite_watermarks VALUES (?, ?, 0)",
                (session.session_id, generation),
            )
            conn.commit()
        finally:
            conn.close()
