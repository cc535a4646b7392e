"""Backups in process over real stores: what is saved, the archive and its manifests, restore,
encryption with a key file, in-place restore and workspaces written back, retention after a run.

The helpers here (``Setup``) are shared with the fault tests.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import filelock
import pytest
import zstandard

from jobs.base import Progress
from stores.backup import checks
from stores.backup import create as create_module
from stores.backup.config import BackupConfig, Retention
from stores.backup.create import Created, Sources, create_backup
from stores.backup.crypto import Keys, new_identity_file
from stores.backup.errors import BackupError, KeyProblem, RestoreRefused
from stores.backup.manifest import Beside
from stores.backup.repo import BackupDir
from stores.backup.restore import restore_in_place, restore_into
from stores.backup.select import Workspace, credential_reason, glob_regex, select
from stores.backup.verify import verify
from stores.backup.writeback import configured_workspaces
from stores.memory.records import SearchQuery
from stores.memory.store import MemoryStore
from tests.memory_fixtures import (
    Harness,
    HashedWords,
    hashed_words_are_not_rebuilt,
    open_store,
    write_sample,
)

pytestmark = hashed_words_are_not_rebuilt

START = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
QUESTIONS = ["Where does Mira live?", "dentist appointment", "tomatoes", "launch review"]


@dataclass
class Setup:
    """A state directory fed from the sample home by the real ingest, and backups of it."""

    root: Path
    harness: Harness
    config: BackupConfig
    times: Iterator[datetime] = field(
        default_factory=lambda: (START + timedelta(hours=i) for i in itertools.count())
    )

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def repo(self) -> BackupDir:
        return BackupDir(self.config.dir)

    def sources(self) -> Sources:
        return Sources(
            self.state,
            self.home,
            [
                Workspace("main", self.home / "workspace"),
                Workspace("work", self.home / "workspace-work"),
            ],
            {"work": self.home / "agents/work/agent/openclaw-agent.sqlite"}
            if self.config.include_openclaw_databases
            else {},
        )

    def backup(
        self, meter: Any = None, *, paused: bool = True, probe: bool = False, **kw: Any
    ) -> Created:
        """A backup; without the Chroma probe (a subprocess, a second each) unless asked."""
        return create_backup(
            self.config,
            self.sources(),
            pause_writers=self.harness.store.writes_paused if paused else None,
            now=next(self.times),
            meter=meter or Progress(),
            probe=probe,
            **kw,
        )

    def keys(self) -> Keys:
        return Keys(self.config.passphrase, self.config.key_file)


def make_setup(root: Path, **config: Any) -> Setup:
    write_sample(root / "home")
    harness = Harness.open(root / "home", root / "state", HashedWords())
    harness.ingest()
    return Setup(root, harness, BackupConfig(dir=root / "state" / "backups", **config))


@pytest.fixture
def setup(root: Path) -> Iterator[Setup]:
    made = make_setup(root)
    yield made
    made.harness.close()


def searches(store: MemoryStore) -> list[list[tuple[str, str]]]:
    return [[(r.id, r.text) for r in store.search(SearchQuery(q, k=5)).results] for q in QUESTIONS]


def archive_members(path: Path) -> dict[str, bytes]:
    with (
        path.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as plain,
        tarfile.open(fileobj=plain, mode="r|") as tar,
    ):
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


# --- what is saved, and a round trip ------------------------------------------------------------


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_a_backup_restores_the_same_memory_and_workspaces(root: Path, compression: str) -> None:
    setup = make_setup(root, compression=compression)
    try:
        before = searches(setup.harness.store)
        created = setup.backup(probe=True)
    finally:
        setup.harness.close()
    backup = created.backup
    assert backup.archive.name == backup.name + (".tar.zst" if compression == "zstd" else ".tar.gz")
    assert stat.S_IMODE(setup.config.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(backup.archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.beside_path.stat().st_mode) == 0o600
    paths = {f.path for f in created.manifest.files}
    assert {"state/memory.sqlite", "state/runs.sqlite", "state/chroma/chroma.sqlite3"} <= paths
    assert any(p.startswith("state/chroma/") and p.endswith(".bin") for p in paths)
    assert {
        "workspaces/main/MEMORY.md",
        "workspaces/main/IDENTITY.md",
        "workspaces/main/memory/2026-03-08.md",
        "workspaces/work/MEMORY.md",
    } <= paths
    assert not any(p.startswith("state/backups") or p.endswith(("-wal", "-shm")) for p in paths)
    manifest = created.manifest
    assert manifest.versions.openclaw_infra != "unknown"
    assert manifest.versions.chromadb
    assert manifest.versions.schema_versions["state/memory.sqlite"] == 1
    assert manifest.sources.workspaces == {
        "main": str(setup.home / "workspace"),
        "work": str(setup.home / "workspace-work"),
    }
    assert manifest.pause.paused
    assert manifest.pause.held_ms > 0
    assert manifest.memory is not None
    assert manifest.memory.chunks == manifest.memory.embedded == 12
    beside = json.loads(backup.beside_path.read_text())
    assert beside["manifest"]["files"] == json.loads(manifest.encoded())["files"]
    assert beside["archive_sha256"]
    assert beside["archive_size"] == backup.archive.stat().st_size
    assert created.check.ok
    assert created.check.chroma
    assert created.check.chroma["count"] == 12

    restored = restore_into(backup, Keys(), root / "restored", Progress())
    assert restored.check.ok, restored.check.problems
    for agent, ws in (("main", "workspace"), ("work", "workspace-work")):
        for source in (setup.home / ws).glob("*.md"):
            copy = root / "restored" / "workspaces" / agent / source.name
            assert copy.read_bytes() == source.read_bytes()
    store = open_store(root / "restored" / "state", HashedWords())
    try:
        assert searches(store) == before
    finally:
        store.close()


def test_the_inside_manifest_comes_first_and_names_every_file(setup: Setup) -> None:
    created = setup.backup()
    members = archive_members(created.backup.archive)
    assert next(iter(members)) == "manifest.json"
    inside = json.loads(members.pop("manifest.json"))
    assert {f["path"] for f in inside["files"]} == set(members)
    assert inside["versions"]["schema"]["state/memory.sqlite"] == 1
    assert inside["created_at"].startswith("2026-03-10T10:00")


def test_globs_stay_within_a_directory_unless_doubled() -> None:
    cases = {
        "*.md": (["MEMORY.md", "a.md"], ["memory/a.md", "MEMORY.txt"]),
        "memory/**": (["memory/a.md", "memory/x/y.md"], ["MEMORY.md", "memoryx/a.md"]),
        "**/*.json": (["a.json", "x/y/a.json"], ["a.jsonl"]),
        "notes/": (["notes/a", "notes/b/c"], ["notes"]),
        "[!.]*.md": (["a.md"], [".hidden.md"]),
        "a?.md": (["ab.md"], ["a/.md", "abc.md"]),
    }
    for pattern, (yes, no) in cases.items():
        regex = glob_regex(pattern)
        assert all(regex.match(p) for p in yes), (pattern, yes)
        assert not any(regex.match(p) for p in no), (pattern, no)


def test_credentials_are_never_saved_even_when_included(root: Path) -> None:
    ws = root / "ws"
    (ws / "memory").mkdir(parents=True)
    (ws / "credentials").mkdir()
    for name in (
        "MEMORY.md",
        ".env",
        ".env.local",
        "auth-profiles.json",
        "server.pem",
        "memory/api.key",
        "credentials/telegram.md",
        "id_ed25519",
        "memory/today.md",
    ):
        (ws / name).write_text("x")
    (root / "outside.md").write_text("not in the workspace")
    (ws / "memory" / "escape.md").symlink_to(root / "outside.md")
    (ws / "memory" / "inside.md").symlink_to(ws / "MEMORY.md")
    (ws / "linked").symlink_to(root, target_is_directory=True)
    (root / "state").mkdir()
    picked = select(
        root / "state",
        root / "state" / "backups",
        workspaces=[Workspace("main", ws)],
        include=["**"],
    )
    saved = {i.arcname for i in picked.items}
    assert saved == {
        "workspaces/main/MEMORY.md",
        "workspaces/main/memory/today.md",
        "workspaces/main/memory/inside.md",
    }
    skipped = {s.path: s.reason for s in picked.skipped}
    for name in (
        ".env",
        ".env.local",
        "auth-profiles.json",
        "server.pem",
        "memory/api.key",
        "id_ed25519",
    ):
        assert "credential" in skipped[f"workspaces/main/{name}"], name
    assert "credentials directory" in skipped["workspaces/main/credentials/telegram.md"]
    assert "out of the workspace" in skipped["workspaces/main/memory/escape.md"]
    assert skipped["workspaces/main/linked/"] == "symlinked directory"
    assert credential_reason("notes/plan.md") is None


def test_a_symlink_to_a_credential_is_judged_by_its_target(root: Path) -> None:
    ws = root / "ws"
    (ws / "memory").mkdir(parents=True)
    (ws / "credentials").mkdir()
    (ws / ".env").write_text("TELEGRAM_TOKEN=123:abc")
    (ws / "credentials" / "bot.txt").write_text("secret")
    (ws / "notes.md").write_text("plain notes")
    (ws / "memory" / "x.md").symlink_to("../.env")
    (ws / "memory" / "y.md").symlink_to(ws / "credentials" / "bot.txt")
    (ws / "memory" / "z.md").symlink_to("../notes.md")
    (root / "state").mkdir()
    picked = select(root / "state", root / "state" / "backups", workspaces=[Workspace("main", ws)])
    assert {i.arcname for i in picked.items} == {
        "workspaces/main/notes.md",
        "workspaces/main/memory/z.md",
    }
    skipped = {s.path: s.reason for s in picked.skipped}
    assert skipped["workspaces/main/memory/x.md"] == (
        "symlink to .env: looks like a credential; never saved"
    )
    assert skipped["workspaces/main/memory/y.md"] == (
        "symlink to credentials/bot.txt: under a credentials directory; never saved"
    )


def test_the_state_directory_leaves_out_lock_socket_companions_and_backups(root: Path) -> None:
    state = root / "state"
    (state / "backups").mkdir(parents=True)
    (state / "backups" / "old.tar.zst").write_text("x")
    for name in (
        "infrad.lock",
        "runs.sqlite-wal",
        "memory.sqlite-shm",
        "x.sqlite.corrupt-20260101T000000Z",
        ".a.tmp",
        "notes.txt",
    ):
        (state / name).write_text("x")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(state / "infrad.sock"))
    try:
        picked = select(state, state / "backups")
    finally:
        server.close()
    assert [i.arcname for i in picked.items] == ["state/notes.txt"]
    assert [s.path for s in picked.skipped] == ["x.sqlite.corrupt-20260101T000000Z"]


def test_openclaw_databases_are_copied_read_only(root: Path) -> None:
    setup = make_setup(root, include_openclaw_databases=True)
    database = setup.home / "agents/work/agent/openclaw-agent.sqlite"
    before = sorted(p.name for p in database.parent.iterdir()), database.stat().st_mtime_ns
    try:
        created = setup.backup()
    finally:
        setup.harness.close()
    assert sorted(p.name for p in database.parent.iterdir()) == before[0]
    assert database.stat().st_mtime_ns == before[1]
    assert created.check.sqlite["openclaw/work/openclaw-agent.sqlite"] == "ok"
    assert created.manifest.sources.openclaw_databases == {"work": str(database)}


def test_without_an_open_memory_store_the_files_are_saved_and_it_says_so(setup: Setup) -> None:
    created = setup.backup(paused=False)
    assert not created.manifest.pause.paused
    assert "not open" in created.manifest.pause.note
    assert any("not open" in note for note in created.manifest.notes)
    assert created.check.ok


def test_progress_goes_through_its_phases_in_bytes(setup: Setup) -> None:
    seen: list[tuple[str, int, int | None]] = []

    class Recording(Progress):
        def __setattr__(self, name: str, value: Any) -> None:
            super().__setattr__(name, value)
            seen.append((self.phase, self.done, self.total))

    created = setup.backup(Recording())
    phases = [p for p, _, _ in seen]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == [
        "",
        "snapshot",
        "archive",
        "verify",
        "prune",
    ]
    total = created.manifest.total_bytes
    for phase in ("archive", "verify"):
        last = [s for s in seen if s[0] == phase][-1]
        assert last[1:] == (total, total), phase
    assert all(t is None or d <= t for _, d, t in seen if _ != "snapshot")


# --- encryption with a key file ---------------------------------------------------------------


def test_a_key_file_backup_hides_its_file_names_and_needs_that_key(root: Path) -> None:
    key = root / "backup.key"
    recipient = new_identity_file(key)
    setup = make_setup(root, key_file=key)
    try:
        created = setup.backup(probe=True)
    finally:
        setup.harness.close()
    archive = created.backup.archive
    assert archive.name.endswith(".tar.zst.age")
    assert archive.read_bytes().startswith(b"age-encryption.org/v1")
    beside_text = created.backup.beside_path.read_text()
    assert "MEMORY.md" not in beside_text
    assert "memory.sqlite" not in beside_text
    beside = Beside.model_validate_json(beside_text)
    assert beside.manifest is None
    assert beside.encryption
    assert beside.encryption.recipients == [recipient]
    assert verify(setup.repo, created.backup, setup.keys(), START, Progress(), probe=False).ok

    other = root / "other.key"
    new_identity_file(other)
    with pytest.raises(KeyProblem, match=f"the key file {other} is not one it was encrypted to"):
        verify(setup.repo, created.backup, Keys(key_file=other), START, Progress())
    with pytest.raises(KeyProblem, match="OPENCLAW_INFRA_BACKUP__KEY_FILE"):
        restore_into(created.backup, Keys(), root / "r", Progress())


# --- restore in place, workspaces written back --------------------------------------------------


def test_restore_in_place_waits_for_no_daemon_and_keeps_what_it_replaced(setup: Setup) -> None:
    created = setup.backup()
    lock = filelock.FileLock(setup.state / "infrad.lock")
    lock.acquire(timeout=0)
    try:
        with pytest.raises(RestoreRefused, match="infrad is running"):
            restore_in_place(
                created.backup, Keys(), setup.state, setup.config.dir, Progress(), now=START
            )
    finally:
        lock.release()
    stats = setup.harness.store.stats()
    setup.harness.store.reset()  # what the restore should undo
    setup.harness.close()
    (setup.state / "stray.txt").write_text("made after the backup")

    done = restore_in_place(
        created.backup, Keys(), setup.state, setup.config.dir, Progress(), now=START, probe=False
    )
    assert done.check.ok
    assert done.aside == setup.root / "state.before-restore-20260310T100000Z"
    assert (done.aside / "stray.txt").exists()
    assert not (setup.state / "stray.txt").exists()
    assert [b.name for b in setup.repo.backups()] == [created.backup.name]  # backups stay
    store = open_store(setup.state, HashedWords())
    try:
        assert store.stats() == stats
    finally:
        store.close()
    # The workspace files of the backup are left beside, not written over the live ones.
    assert (done.target / "workspaces" / "main" / "MEMORY.md").exists()


def test_workspaces_are_written_back_only_when_asked_and_never_through_symlinks(
    setup: Setup,
) -> None:
    created = setup.backup()
    memory_md = setup.home / "workspace" / "MEMORY.md"
    original = memory_md.read_text()
    memory_md.write_text("# MEMORY.md\n\nrewritten since\n")
    notes = setup.home / "workspace" / "memory"
    (setup.root / "elsewhere").mkdir()
    notes.rename(setup.root / "elsewhere" / "memory")
    notes.symlink_to(setup.root / "elsewhere" / "memory", target_is_directory=True)

    plain = restore_into(created.backup, Keys(), setup.root / "r1", Progress(), probe=False)
    assert plain.workspaces is None
    assert memory_md.read_text() != original

    workspaces = configured_workspaces(setup.home)
    assert workspaces == {"main": setup.home / "workspace", "work": setup.home / "workspace-work"}
    back = restore_into(
        created.backup, Keys(), setup.root / "r2", Progress(), workspaces=workspaces
    )
    assert back.workspaces is not None
    assert memory_md.read_text() == original
    assert "workspaces/main/MEMORY.md" in back.workspaces.written
    kept = setup.root / "r2" / "replaced" / "workspaces" / "main" / "MEMORY.md"
    assert kept.read_text() == "# MEMORY.md\n\nrewritten since\n"
    assert back.workspaces.unchanged >= 3  # IDENTITY.md, USER.md, the work agent's files
    (refused,) = back.workspaces.refused
    assert refused.startswith("workspaces/main/memory/2026-03-08.md:")
    assert "symlink" in refused


def test_workspaces_go_where_the_configuration_says_never_where_the_archive_says(
    setup: Setup,
) -> None:
    """The archive records main's workspace as home/workspace; the configuration now puts it
    elsewhere and knows no agent "work": only the configured place is written."""
    created = setup.backup()
    recorded = {
        agent: Path(p) / "MEMORY.md" for agent, p in created.manifest.sources.workspaces.items()
    }
    for path in recorded.values():
        path.write_text("changed since the backup\n")
    moved = setup.root / "moved-workspace"
    moved.mkdir()

    target = setup.root / "r"
    back = restore_into(
        created.backup, Keys(), target, Progress(), probe=False, workspaces={"main": moved}
    )
    assert back.workspaces is not None
    saved = target / "workspaces" / "main" / "MEMORY.md"
    assert (moved / "MEMORY.md").read_bytes() == saved.read_bytes()
    assert "workspaces/main/MEMORY.md" in back.workspaces.written
    for path in recorded.values():
        assert path.read_text() == "changed since the backup\n"  # the archive's paths: untouched
    assert back.workspaces.refused == [
        "workspaces/work/: agent work is not in the current OpenClaw configuration;"
        f" nothing written (its files are in {target / 'workspaces' / 'work'})"
    ]


# --- retention after each run -------------------------------------------------------------------


def test_each_backup_applies_retention(root: Path) -> None:
    setup = make_setup(root, retention=Retention(hourly=2, daily=0, weekly=0, monthly=0))
    try:
        made = [setup.backup() for _ in range(4)]
    finally:
        setup.harness.close()
    listed = [b.name for b in setup.repo.backups()]
    assert listed == [made[3].backup.name, made[2].backup.name]
    assert made[2].pruned is not None
    assert made[2].pruned.remove == (made[0].backup.name,)
    assert all(b.verified for b in setup.repo.backups())
    assert not any(p.name.startswith(made[0].backup.name) for p in setup.config.dir.iterdir())


def test_names_do_not_collide_within_one_second(setup: Setup) -> None:
    setup.times = iter([START, START])
    first, second = setup.backup(prune=False), setup.backup(prune=False)
    assert second.backup.name == first.backup.name + "-1"
    assert os.path.exists(first.backup.archive)
    assert os.path.exists(second.backup.archive)


def test_vectors_copied_mid_write_are_copied_again(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chroma finishes a write after it returns: a copy caught halfway is taken again before
    anything is archived, and the manifest says so; three such copies give up, keeping nothing."""
    real = checks.vector_problems
    verdicts = iter([["state/chroma: does not open: Error finding id"]])
    seen: list[Path] = []

    def halfway_once(state: Path) -> list[str]:
        seen.append(state)
        return next(verdicts, None) or real(state)

    monkeypatch.setattr(create_module, "vector_problems", halfway_once)
    created = setup.backup(probe=True)
    assert len(seen) == 2
    assert any("copied again" in note for note in created.manifest.notes)
    assert created.check.ok

    monkeypatch.setattr(create_module, "vector_problems", lambda state: ["never whole"])
    with pytest.raises(BackupError, match="could not be copied whole in 3 tries"):
        setup.backup(probe=True)
    assert [b.name for b in BackupDir(setup.config.dir).backups()] == [created.backup.name]
