"""The index's tables and how records become rows and rows records: the SQL half of
``stores.memory.index``, kept apart so that the index reads as what it does."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from stores.memory.records import Chunk, ChunkFilter, TurnRow

SCHEMA = """
CREATE TABLE chunks (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    agent        TEXT,
    source       TEXT NOT NULL,
    session_key  TEXT,
    session_id   TEXT,
    entry_ids    TEXT NOT NULL DEFAULT '[]',
    path         TEXT,
    line_start   INTEGER,
    line_end     INTEGER,
    ts_start     REAL,
    ts_end       REAL,
    roles        TEXT NOT NULL DEFAULT '[]',
    speakers     TEXT NOT NULL DEFAULT '[]',
    tags         TEXT NOT NULL DEFAULT '[]',
    text         TEXT NOT NULL,
    search_text  TEXT NOT NULL,
    updated_at   REAL NOT NULL,
    -- 0 until Chroma holds this row's vector: written rows are searchable by keyword at once
    -- and the vectors follow in large batches (MemoryStore.sync_vectors)
    embedded     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX chunks_by_source ON chunks (source);
CREATE INDEX chunks_by_agent_time ON chunks (agent, ts_start);
CREATE INDEX chunks_by_session ON chunks (session_id);
CREATE INDEX chunks_to_embed ON chunks (embedded) WHERE embedded = 0;
CREATE TABLE vector_deletes (id TEXT PRIMARY KEY);
CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    search_text, content = 'chunks', content_rowid = 'rowid', tokenize = 'porter unicode61'
);
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, search_text) VALUES (new.rowid, new.search_text);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, search_text)
    VALUES ('delete', old.rowid, old.search_text);
END;
CREATE TRIGGER chunks_au AFTER UPDATE OF search_text ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, search_text)
    VALUES ('delete', old.rowid, old.search_text);
    INSERT INTO chunks_fts (rowid, search_text) VALUES (new.rowid, new.search_text);
END;
CREATE TABLE turns (
    agent       TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    entry_id    TEXT NOT NULL,
    session_key TEXT,
    ts          REAL NOT NULL,
    role        TEXT NOT NULL,
    speaker     TEXT,
    text        TEXT NOT NULL,
    source      TEXT NOT NULL,
    PRIMARY KEY (agent, session_id, idx)
);
CREATE INDEX turns_by_time ON turns (agent, ts);
CREATE UNIQUE INDEX turns_by_entry ON turns (agent, session_id, entry_id);
CREATE INDEX turns_by_entry_id ON turns (entry_id);
CREATE TABLE checkpoints (source TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
SCHEMA_VERSION = 1


CHUNK_COLUMNS = (
    "id, kind, agent, source, session_key, session_id, entry_ids, path, line_start, line_end,"
    " ts_start, ts_end, roles, speakers, tags, text, search_text, updated_at"
)
UPSERT_CHUNK = (
    f"INSERT INTO chunks ({CHUNK_COLUMNS}) VALUES ({','.join('?' * 18)})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in CHUNK_COLUMNS.split(",")[1:])
    + ", embedded = 0"
)
UPSERT_TURN = (
    "INSERT INTO turns (agent, session_id, idx, entry_id, session_key, ts, role, speaker, text,"
    " source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent, session_id, idx)"
    " DO UPDATE SET entry_id = excluded.entry_id, text = excluded.text"
)


def chunk_row(c: Chunk, stamp: float) -> tuple[Any, ...]:
    return (
        c.id,
        c.kind,
        c.agent,
        c.source,
        c.session_key,
        c.session_id,
        json.dumps(c.entry_ids),
        c.path,
        c.line_start,
        c.line_end,
        c.ts_start,
        c.ts_end,
        json.dumps(c.roles),
        json.dumps(c.speakers),
        json.dumps(c.tags),
        c.text,
        c.search_text,
        stamp,
    )


def turn_row(t: TurnRow) -> tuple[Any, ...]:
    return (
        t.agent,
        t.session_id,
        t.idx,
        t.entry_id,
        t.session_key,
        t.ts,
        t.role,
        t.speaker,
        t.text,
        t.source,
    )


def row_to_chunk(r: sqlite3.Row) -> Chunk:
    return Chunk(
        id=r["id"],
        kind=r["kind"],
        agent=r["agent"],
        source=r["source"],
        text=r["text"],
        search_text=r["search_text"],
        session_key=r["session_key"],
        session_id=r["session_id"],
        entry_ids=tuple(json.loads(r["entry_ids"])),
        path=r["path"],
        line_start=r["line_start"],
        line_end=r["line_end"],
        ts_start=r["ts_start"],
        ts_end=r["ts_end"],
        roles=tuple(json.loads(r["roles"])),
        speakers=tuple(json.loads(r["speakers"])),
        tags=tuple(json.loads(r["tags"])),
    )


def row_to_turn(r: sqlite3.Row) -> TurnRow:
    return TurnRow(
        r["agent"],
        r["session_id"],
        r["idx"],
        r["entry_id"],
        r["session_key"],
        r["ts"],
        r["role"],
        r["speaker"],
        r["text"],
        r["source"],
    )


def like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_FILTERABLE = frozenset({"source", "agent", "session_id", "path", "kind"})


def where_sql(fields: dict[str, str | None]) -> tuple[str, list[Any]]:
    unknown = set(fields) - _FILTERABLE
    if unknown:
        raise ValueError(f"cannot select chunks by {sorted(unknown)}")
    given = {name: value for name, value in fields.items() if value is not None}
    clauses = [f"{name} = ?" for name in given]
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), list(given.values())


def filter_sql(f: ChunkFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if f.agents:
        clauses.append(f"c.agent IN ({','.join('?' * len(f.agents))})")
        args.extend(f.agents)
    if f.kinds:
        clauses.append(f"c.kind IN ({','.join('?' * len(f.kinds))})")
        args.extend(f.kinds)
    if f.session_id is not None:
        clauses.append("c.session_id = ?")
        args.append(f.session_id)
    if f.since is not None:
        clauses.append("c.ts_end >= ?")
        args.append(f.since)
    if f.until is not None:
        clauses.append("c.ts_start < ?")
        args.append(f.until)
    if f.speaker is not None:
        clauses.append("EXISTS (SELECT 1 FROM json_each(c.speakers) WHERE value = ?)")
        args.append(f.speaker)
    if f.role is not None:
        clauses.append("EXISTS (SELECT 1 FROM json_each(c.roles) WHERE value = ?)")
        args.append(f.role)
    return "".join(f" AND {c}" for c in clauses), args
