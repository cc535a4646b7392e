from __future__ import annotations

import hashlib
import json
import random
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.sample.session import SessionBuilder
from daemon.sample.writer import OpenClawWriter
from stores.openclaw.database import SessionProgress, SqliteCheckpoint, SqliteRead, read_sqlite
from stores.openclaw.entries import Names, Role
from stores.openclaw.problems import ProblemKind, SkipReason

NAMES = Names(assistant="Ledger", user="Dana")
KEY = "agent:work:telegram:direct:5550001"
T0 = datetime(2026, 7, 20, 9, 0, tzinfo=UTC)


def _chain(writer: OpenClawWriter) -> list[SessionBuilder]:
    first = writer.new_session("work", T0)
    first.user("The quarterly report is due on the 5th.", wrapper="conversation")
    first.tool("calendar", {"day": 5}, "free")
    first.assistant("Noted: report due on the 5th.", thinking="Dates matter.")
    second = writer.new_session("work", T0 + timedelta(days=1))
    second.user("Priya owns the revenue section.")
    second.assistant("", stop_reason="error")
    second.compaction("Report due on the 5th; Priya has revenue.")
    second.assistant("Got it: Priya, revenue.")
    return [first, second]


def _read(db: Path, checkpoint: SqliteCheckpoint | None = None) -> SqliteRead:
    return read_sqlite(db, checkpoint, agent_id="work", names=NAMES)


def _texts(read: SqliteRead) -> list[str]:
    return [t.text for t in read.turns]


def test_sessions_are_read_in_chain_order_with_their_keys(root: Path) -> None:
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain)

    read = _read(db)

    assert [(t.role, t.speaker, t.text) for t in read.turns] == [
        (Role.USER, "Dana", "The quarterly report is due on the 5th."),
        (Role.ASSISTANT, "Ledger", "Noted: report due on the 5th."),
        (Role.USER, "Dana", "Priya owns the revenue section."),
        (Role.SUMMARY, None, "Report due on the 5th; Priya has revenue."),
        (Role.ASSISTANT, "Ledger", "Got it: Priya, revenue."),
    ]
    first, second = chain
    assert [(s.session_id, s.session_key, s.previous_session_id) for s in read.sessions] == [
        (first.session_id, KEY, None),
        (second.session_id, KEY, first.session_id),
    ]
    assert {t.session_key for t in read.turns} == {KEY}
    assert read.turns[0].entry_id == first.entries[2]["id"]
    assert read.turns[0].where == f"{db}#{first.session_id}:2"
    assert read.skipped == {SkipReason.METADATA: 4, SkipReason.TOOL: 2, SkipReason.ERROR: 1}
    assert read.problems == ()


def test_compressed_rows_read_like_plain_ones(root: Path) -> None:
    reads = []
    for name, compress in (("plain", False), ("packed", True)):
        writer = OpenClawWriter(root / name)
        db = writer.write_sqlite("work", KEY, _chain(writer), compress=compress)
        reads.append(_read(db))
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM transcript_events WHERE event_json IS NOT NULL"
        ).fetchone() == (0,)
    conn.close()
    plain, packed = reads
    assert packed.problems == ()
    assert len(packed.turns) == 5
    assert [(t.entry_id, t.text) for t in packed.turns] == [
        (t.entry_id, t.text) for t in plain.turns
    ]


def test_a_damaged_row_is_reported_and_the_rest_read(root: Path) -> None:
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain, compress=True)
    first = chain[0].session_id
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE transcript_events SET event_zstd = ? WHERE session_id = ? AND seq = 2",
            (b"\x28\xb5\x2f\xfd garbage", first),
        )
        conn.execute(
            "UPDATE transcript_events SET event_json = 'not json', event_zstd = NULL"
            " WHERE session_id = ? AND seq = 3",
            (first,),
        )
    conn.close()

    read = _read(db)

    assert _texts(read)[0] == "Noted: report due on the 5th."
    assert [(p.kind, p.where) for p in read.problems] == [
        (ProblemKind.BAD_ROW, f"{db}#{first}:2"),
        (ProblemKind.BAD_ROW, f"{db}#{first}:3"),
    ]
    assert read.skipped[SkipReason.MALFORMED] == 2


def test_rows_no_reader_foresaw_cost_one_row_each(root: Path) -> None:
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain, compress=True)
    first = chain[0].session_id
    with sqlite3.connect(db) as conn:
        # Compressed, with '' (not NULL) beside it, as a NOT NULL column would hold.
        conn.execute(
            "UPDATE transcript_events SET event_json = '' WHERE session_id = ? AND seq = 2",
            (first,),
        )
        conn.execute(  # text that is not UTF-8: the cursor itself would fail on it
            "UPDATE transcript_events SET event_json = CAST(x'7b22ff22' AS TEXT),"
            " event_zstd = NULL WHERE session_id = ? AND seq = 3",
            (first,),
        )
        conn.execute(
            "UPDATE transcript_events SET event_json = '{\"type\": [1]}', event_zstd = NULL"
            " WHERE session_id = ? AND seq = 4",
            (first,),
        )
    conn.close()

    read = _read(db)

    assert [(p.kind, p.where) for p in read.problems] == [
        (ProblemKind.BAD_ROW, f"{db}#{first}:3"),
        (ProblemKind.BAD_ENTRY, f"{db}#{first}:4"),
    ]
    assert _texts(read) == [
        "The quarterly report is due on the 5th.",  # read from event_zstd
        "Noted: report due on the 5th.",
        "Priya owns the revenue section.",
        "Report due on the 5th; Priya has revenue.",
        "Got it: Priya, revenue.",
    ]


def test_rows_added_between_reads_come_once(root: Path) -> None:
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain)
    first = _read(db)
    chain[1].user("Also: the offsite moved to Lisbon.")
    third = writer.new_session("work", T0 + timedelta(days=2))
    third.user("New day, new session.")
    writer.append_sqlite("work", KEY, [*chain, third])

    second = _read(db, first.checkpoint)
    again = _read(db, second.checkpoint)

    assert _texts(second) == ["Also: the offsite moved to Lisbon.", "New day, new session."]
    assert again.turns == ()
    assert again.checkpoint == second.checkpoint
    assert [t.entry_id for t in first.turns + second.turns] == [t.entry_id for t in _read(db).turns]


def test_a_checkpoint_survives_json(root: Path) -> None:
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain)
    first = _read(db)
    stored = SqliteCheckpoint.from_dict(json.loads(json.dumps(first.checkpoint.to_dict())))
    assert stored == first.checkpoint
    assert _read(db, stored).turns == ()


def test_reading_never_writes_and_never_waits_for_the_writer(root: Path) -> None:
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain)
    owner = sqlite3.connect(db, isolation_level=None)  # OpenClaw, in WAL mode, mid-write
    owner.execute("PRAGMA journal_mode=WAL")
    owner.execute("BEGIN IMMEDIATE")
    chain[1].user("not committed yet")
    entry = json.dumps(chain[1].entries[-1])
    owner.execute(
        "INSERT INTO transcript_events VALUES (?, ?, ?, NULL, 0)",
        (chain[1].session_id, len(chain[1].entries) - 1, entry),
    )
    before = _fingerprint(db)

    during = _read(db)
    assert "not committed yet" not in _texts(during)
    assert during.problems == ()
    assert _fingerprint(db) == before
    owner.execute("COMMIT")
    after = _read(db, during.checkpoint)
    owner.close()

    assert _texts(after) == ["not committed yet"]
    assert during.checkpoint.sessions[chain[1].session_id].last_seq == len(chain[1].entries) - 2


def test_rows_still_in_the_wal_are_read_and_the_wal_left_alone(root: Path) -> None:
    """A copy taken while OpenClaw runs: committed rows only in the WAL. A read-write
    connection would fold the WAL into the database when it closes; a reader must not."""
    writer = OpenClawWriter(root / "live")
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain)
    owner = sqlite3.connect(db, isolation_level=None)
    owner.execute("PRAGMA journal_mode=WAL")
    chain[1].user("only in the WAL")
    owner.execute(
        "INSERT INTO transcript_events VALUES (?, ?, ?, NULL, 0)",
        (chain[1].session_id, len(chain[1].entries) - 1, json.dumps(chain[1].entries[-1])),
    )
    copy = root / "copy" / db.name
    copy.parent.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{db}{suffix}", f"{copy}{suffix}")
    owner.close()
    before = _fingerprint(copy)

    read = _read(copy)

    assert _texts(read)[-1] == "only in the WAL"
    assert _fingerprint(copy) == before


def test_the_schema_openclaw_ships_reads_too(root: Path) -> None:
    """No event_zstd column, STRICT tables, an identities table: as in OpenClaw 2026.7."""
    writer = OpenClawWriter(root)
    (session,) = _chain(writer)[:1]
    db = root / "agent.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE session_nodes (session_key TEXT NOT NULL PRIMARY KEY,
              current_session_id TEXT NOT NULL, entry_json TEXT NOT NULL,
              updated_at INTEGER NOT NULL) STRICT;
            CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL,
              event_json TEXT NOT NULL, created_at INTEGER NOT NULL,
              PRIMARY KEY (session_id, seq)) STRICT;
            CREATE TABLE transcript_event_identities (session_id TEXT NOT NULL,
              event_id TEXT NOT NULL, seq INTEGER NOT NULL) STRICT;
            PRAGMA user_version = 7;
            """
        )
        conn.executemany(
            "INSERT INTO transcript_events VALUES (?, ?, ?, 0)",
            [(session.session_id, seq, json.dumps(e)) for seq, e in enumerate(session.entries)],
        )
        conn.execute("INSERT INTO session_nodes VALUES (?, ?, '{}', 0)", (KEY, session.session_id))
    conn.close()

    read = _read(db)

    assert _texts(read) == [
        "The quarterly report is due on the 5th.",
        "Noted: report due on the 5th.",
    ]
    # No session_windows table: the key comes from session_nodes' current session.
    assert [(s.session_id, s.session_key) for s in read.sessions] == [(session.session_id, KEY)]


def test_a_corrupt_database_is_a_problem_not_an_exception(root: Path) -> None:
    db = root / "openclaw-agent.sqlite"
    db.write_bytes(random.Random(7).randbytes(64 * 1024))
    known = SqliteCheckpoint({"s": SessionProgress(3)})

    read = _read(db, known)

    assert read.turns == ()
    assert read.checkpoint == known
    assert [(p.kind, p.where) for p in read.problems] == [(ProblemKind.CORRUPT_DATABASE, str(db))]


def test_a_database_damaged_inside_is_a_problem_too(root: Path) -> None:
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    for n in range(200):
        chain[1].user(f"padding {n} " + "x" * 200)
    db = writer.write_sqlite("work", KEY, chain)
    data = bytearray(db.read_bytes())
    data[8192:] = random.Random(1).randbytes(len(data) - 8192)  # header and schema intact
    db.write_bytes(bytes(data))

    read = _read(db)

    assert [p.kind for p in read.problems] == [ProblemKind.CORRUPT_DATABASE]


def test_a_database_without_transcripts_is_no_problem(root: Path) -> None:
    """Releases up to 2026.7.1 keep the same file (schema 1) for other things; their
    transcripts are in JSONL files."""
    db = root / "agents" / "main" / "agent" / "openclaw-agent.sqlite"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE schema_meta (meta_key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    read = _read(db)
    assert (read.turns, read.problems, read.has_transcripts) == ((), (), False)


def test_a_new_schema_without_transcripts_is_reported(root: Path) -> None:
    writer = OpenClawWriter(root)
    db = writer.write_sqlite("work", KEY, _chain(writer))
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE transcript_events")
    conn.close()
    read = _read(db)
    assert read.turns == ()
    assert [p.kind for p in read.problems] == [ProblemKind.OLD_SCHEMA]
    assert "no transcript_events table" in read.problems[0].detail


def test_a_missing_database_is_a_problem(root: Path) -> None:
    read = _read(root / "nothing.sqlite")
    assert [p.kind for p in read.problems] == [ProblemKind.UNREADABLE]


def _fingerprint(db: Path) -> list[tuple[str, int]]:
    """Content and mtime of the database and its WAL: what a writer would change."""
    files = [db, Path(f"{db}-wal")]
    return [(hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns) for f in files]


# --- sessions that left transcript_events (2026.9) -------------------------------------------


def test_a_deleted_session_is_read_once_from_its_archive(root: Path) -> None:
    writer = OpenClawWriter(root)
    first, second = _chain(writer)
    db = writer.write_sqlite("work", KEY, [first, second])
    writer.delete_session("work", first, T0 + timedelta(days=3))

    read = _read(db)

    texts = _texts(read)
    assert "The quarterly report is due on the 5th." in texts  # only in the archive now
    assert "Got it: Priya, revenue." in texts
    assert read.problems == ()
    assert {t.session_id for t in read.turns} == {first.session_id, second.session_id}
    again = _read(db, read.checkpoint)
    assert (again.turns, again.problems) == ((), ())


def test_a_session_deleted_after_it_was_read_adds_nothing_new(root: Path) -> None:
    """Its rows were read while live; the archive holds the same entries (the ingest knows them
    by id), and is not read again after that."""
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain)
    read = _read(db)
    writer.delete_session("work", chain[0], T0 + timedelta(days=3))
    after = _read(db, read.checkpoint)
    assert {t.entry_id for t in after.turns} <= {t.entry_id for t in read.turns}
    assert _read(db, after.checkpoint).turns == ()


def test_a_cold_stored_session_is_still_memory(root: Path) -> None:
    """Cold storage (opt-in) moves old rows out of transcript_events into a zstd file of
    records, or into the row itself; OpenClaw cannot be made to write it in a short run."""
    writer = OpenClawWriter(root)
    first, second = _chain(writer)
    db = writer.write_sqlite("work", KEY, [first, second])
    writer.cold_store("work", first, T0 + timedelta(days=40))
    writer.cold_store("work", second, T0 + timedelta(days=40), in_file=False)

    read = _read(db)

    assert _texts(read) == [
        "The quarterly report is due on the 5th.",
        "Noted: report due on the 5th.",
        "Priya owns the revenue section.",
        "Report due on the 5th; Priya has revenue.",
        "Got it: Priya, revenue.",
    ]
    assert read.problems == ()
    assert _read(db, read.checkpoint).turns == ()


def test_cold_storage_of_rows_already_read_reads_nothing_again(root: Path) -> None:
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain)
    read = _read(db)
    writer.cold_store("work", chain[0], T0 + timedelta(days=40))
    assert _read(db, read.checkpoint).turns == ()


def test_a_damaged_cold_archive_is_a_problem_and_the_rest_is_read(root: Path) -> None:
    writer = OpenClawWriter(root)
    first, second = _chain(writer)
    db = writer.write_sqlite("work", KEY, [first, second])
    name = writer.cold_store("work", first, T0 + timedelta(days=40))
    (root / "agents" / "work" / "sessions" / "cold" / name).write_bytes(b"not zstd at all")

    read = _read(db)

    assert _texts(read)[-1] == "Got it: Priya, revenue."
    assert [p.kind for p in read.problems] == [ProblemKind.UNREADABLE]
    assert name in read.problems[0].where


def test_a_rewritten_session_is_read_again(root: Path) -> None:
    """``openclaw doctor`` relabels old rows in place and moves the session's generation: the
    session is read again from its start (the ingest keeps what it already stored by id)."""
    writer = OpenClawWriter(root)
    chain = _chain(writer)
    db = writer.write_sqlite("work", KEY, chain)
    read = _read(db)
    assert _read(db, read.checkpoint).turns == ()
    chain[0].entries[2]["message"]["content"][0]["text"] = "The report is due on the 6th."
    writer.rewrite("work", chain[0], "a" * 32)

    again = _read(db, read.checkpoint)

    assert "The report is due on the 6th." in _texts(again)
    assert {t.session_id for t in again.turns} == {chain[0].session_id}
    assert _read(db, again.checkpoint).turns == ()


def test_checkpoints_written_before_archives_were_read_still_load(root: Path) -> None:
    old = {"s1": [7, True], "s2": [3, False]}
    checkpoint = SqliteCheckpoint.from_dict(old)
    assert checkpoint.sessions == {
        "s1": SessionProgress(7, SkipReason.MEMORY_FLUSH),
        "s2": SessionProgress(3, None),
    }
    assert SqliteCheckpoint.from_dict(checkpoint.to_dict()) == checkpoint
