"""A backup's manifests: one inside the archive (first member), one beside it.

The inside manifest lists every file with its size and sha256, the versions that wrote it, where
each part came from and what was left out and why. The beside manifest
(``<name>.manifest.json``) is what ``list`` reads without opening the archive: the archive's own
size and sha256, and, unless the backup is encrypted, the inside manifest itself. Writing the
beside manifest is the step that makes a backup exist.

An encrypted backup's beside manifest names no file: only counts, the inside manifest's sha256
and the (passphrase-wrapped) key. The beside manifest is plain JSON next to the archive, often
on a disk or in a cloud folder that is the reason for encrypting at all, and the file list says a
lot on its own: agent ids, workspace paths (the user's name), dated notes, which databases
exist. Encrypting the archive would hide little if the list lay beside it in the clear. So for
an encrypted backup ``list`` shows counts and sizes only, and ``verify``/``restore`` read the
list from inside the archive, after decrypting, and check it against the recorded sha256.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT = 1
PREFIX = "openclaw-infra-"
NAME = re.compile(r"^openclaw-infra-\d{8}T\d{6}Z(?:-\d{1,3})?$")
INSIDE = "manifest.json"
BESIDE_SUFFIX = ".manifest.json"
VERIFIED_SUFFIX = ".verified.json"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileEntry(_Model):
    path: str = Field(description="path inside the archive: state/..., workspaces/<agent>/...")
    size: int
    sha256: str
    kind: Literal["sqlite", "file"] = "file"


class Skipped(_Model):
    path: str
    reason: str


class Versions(_Model):
    openclaw_infra: str
    chromadb: str | None
    python: str
    sqlite: str
    #: PRAGMA user_version of every SQLite copy, by archive path.
    schema_versions: dict[str, int] = Field(default_factory=dict, alias="schema")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Sources(_Model):
    state_dir: str
    openclaw_home: str | None = None
    #: agent id -> the workspace its files came from (what --force-workspaces writes back to).
    workspaces: dict[str, str] = Field(default_factory=dict)
    openclaw_databases: dict[str, str] = Field(default_factory=dict)


class Pause(_Model):
    """How long the memory store's writers were held while its files were copied."""

    paused: bool
    waited_ms: float = 0.0
    held_ms: float = 0.0
    note: str = ""


class MemoryCounts(_Model):
    """Read from the memory.sqlite copy: what a restore must find again."""

    chunks: int
    embedded: int
    turns: int
    vector_deletes: int


class Manifest(_Model):
    format: int = FORMAT
    name: str
    created_at: datetime
    compression: Literal["zstd", "gzip"]
    versions: Versions
    sources: Sources
    files: list[FileEntry]
    skipped: list[Skipped] = Field(default_factory=list)
    pause: Pause
    memory: MemoryCounts | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def encoded(self) -> bytes:
        return self.model_dump_json(indent=1, by_alias=True).encode()


class Encryption(_Model):
    """age recipients the archive is encrypted to; with a passphrase, a fresh x25519 identity
    made for this backup, itself age-encrypted with the passphrase (base64)."""

    recipients: list[str]
    wrapped_identity: str | None = None


class Beside(_Model):
    format: int = FORMAT
    name: str
    created_at: datetime
    archive: str
    archive_size: int
    archive_sha256: str
    compression: Literal["zstd", "gzip"]
    encryption: Encryption | None = None
    files: int
    data_bytes: int
    manifest_sha256: str
    #: The inside manifest, when the backup is not encrypted (file names are not secret then).
    manifest: Manifest | None = None
    #: Asked for by a person (``infractl backup now``): retention's ``manual`` rule keeps it.
    manual: bool = False

    def encoded(self) -> bytes:
        return self.model_dump_json(indent=1, by_alias=True).encode()


class Verification(_Model):
    """The last check of a backup (``<name>.verified.json``): what retention trusts."""

    ok: bool
    at: datetime
    problems: list[str] = Field(default_factory=list)
    #: What checked it: ``backup`` (the run that made it), ``verify``, ``restore drill``.
    by: str | None = None


def archive_name(name: str, compression: str, encrypted: bool) -> str:
    suffix = ".tar.zst" if compression == "zstd" else ".tar.gz"
    return name + suffix + (".age" if encrypted else "")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
