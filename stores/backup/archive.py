"""The archive file: a tar stream, compressed (zstd or gzip), optionally age-encrypted.

``manifest.json`` is the first member, so a reader knows every expected file and its sha256
before it meets the first one. The bytes that reach the disk are hashed on the way, so the beside
manifest can name the archive's own sha256, checked first by ``verify``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

import zstandard

from stores.atomic import PRIVATE_FILE
from stores.backup.crypto import DecryptFailed, DecryptingReader, EncryptingWriter
from stores.backup.errors import BackupCancelled, BackupError
from stores.backup.manifest import INSIDE, FileEntry

CHUNK = 1 << 20
#: zstd level 3 is zstd's own default: most of the ratio at a fraction of the time.
ZSTD_LEVEL = 3
GZIP_LEVEL = 6
#: Compression threads: enough for throughput, few enough that a daily backup stays polite.
ZSTD_THREADS = min(4, os.cpu_count() or 1)

OpenOutput = Callable[[Path], BinaryIO]
Advance = Callable[[int], None]
Visit = Callable[[tarfile.TarInfo, IO[bytes] | None], None]


class Meter(Protocol):
    """How far a long operation has got (``jobs.base.Progress`` is one)."""

    phase: str
    done: int
    total: int | None


def begin(
    meter: Meter, phase: str, total: int | None, stop: threading.Event | None = None
) -> Advance:
    """The progress callback of one phase. It is called between files and between chunks, so
    it is also where a worker thread learns that its run was cancelled (``stop``): asyncio can
    cancel the await on a thread, never the thread itself."""
    meter.phase, meter.done, meter.total = phase, 0, total

    def advance(n: int) -> None:
        meter.done += n
        stop_point(stop)

    return advance


def stop_point(stop: threading.Event | None) -> None:
    """Raise ``BackupCancelled`` if the run was cancelled; the callers' clean-up does the rest."""
    if stop is not None and stop.is_set():
        raise BackupCancelled("cancelled (the job's timeout or the daemon stopping)")


def open_new(path: Path) -> BinaryIO:
    """The archive's temporary file: created here, private, never over another file."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    return open(fd, "wb")


@dataclass(frozen=True)
class Written:
    size: int
    sha256: str


class _Hashing(io.RawIOBase):
    """Passes bytes to (or from) a file, counting and hashing them."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        try:
            self.raw.write(view)
        except OSError as exc:  # kept: age reports it as its own error, from another thread
            self.error = exc
            raise
        self.sha.update(view)
        self.size += len(view)
        return len(view)

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


def write_archive(
    path: Path,
    staging: Path,
    manifest: bytes,
    entries: Iterable[FileEntry],
    *,
    compression: str,
    recipients: list[Any] | None = None,
    advance: Advance = lambda n: None,
    open_output: OpenOutput = open_new,
) -> Written:
    """Write the archive at ``path`` (a temporary name) and fsync it. On any error the caller
    removes ``path``; nothing here renames."""
    raw = open_output(path)
    try:
        sink = _Hashing(raw)
        layers: list[Any] = []
        try:
            if recipients:
                layers.append(EncryptingWriter(sink, recipients))
            layers.append(_compressor(layers[-1] if layers else sink, compression))
            with tarfile.open(
                fileobj=layers[-1],
                mode="w|",
                format=tarfile.PAX_FORMAT,
                bufsize=CHUNK,
            ) as tar:
                _add(tar, INSIDE, io.BytesIO(manifest), len(manifest))
                for entry in entries:
                    with (staging / entry.path).open("rb") as data:
                        _add(tar, entry.path, _Counting(data, advance), entry.size)
            for layer in reversed(layers):
                layer.close()
        except BaseException:
            for layer in reversed(layers):
                with contextlib.suppress(Exception):
                    layer.close()
            if sink.error is not None:
                raise sink.error from None  # the disk's word, not a broken pipe's
            raise
        raw.flush()
        os.fsync(raw.fileno())
    finally:
        with contextlib.suppress(OSError):
            raw.close()
    return Written(size=sink.size, sha256=sink.sha.hexdigest())


def _compressor(sink: Any, compression: str) -> Any:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, threads=ZSTD_THREADS)
    return cctx.stream_writer(sink, closefd=False)


def _add(tar: tarfile.TarFile, name: str, data: Any, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = PRIVATE_FILE
    tar.addfile(info, data)


class _Counting:
    def __init__(self, data: BinaryIO, advance: Advance) -> None:
        self.data = data
        self.advance = advance

    def read(self, n: int = -1) -> bytes:
        block = self.data.read(n)
        self.advance(len(block))
        return block


# --- reading ----------------------------------------------------------------------------------


def read_archive(
    path: Path, *, compression: str, identities: list[Any] | None, visit: Visit
) -> Written:
    """Call ``visit`` for each member in order, then drain the file; returns the size and
    sha256 of the archive file as read. A stream that cannot be read raises ``BackupError``
    naming the archive and the last member read."""
    last = "the start"
    with path.open("rb") as handle:
        raw = _Hashing(handle)
        plain: Any = DecryptingReader(raw, identities) if identities else raw
        try:
            stream = _decompressor(io.BufferedReader(plain, CHUNK), compression)
            with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK) as tar:
                for member in tar:
                    last = member.name
                    visit(member, tar.extractfile(member) if member.isfile() else None)
            _drain(stream)
            _drain(raw)
        except (
            tarfile.TarError,
            zstandard.ZstdError,
            zlib.error,
            OSError,
            EOFError,
            DecryptFailed,
        ) as exc:
            if isinstance(exc, OSError) and not _is_format_error(exc):
                raise
            raise BackupError(
                f"{path.name}: unreadable after {last} ({_why(exc)}): damaged or tampered"
            ) from None
        finally:
            if plain is not raw:
                plain.close()
    return Written(size=raw.size, sha256=raw.sha.hexdigest())


def _decompressor(source: BinaryIO, compression: str) -> Any:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=source, mode="rb")
    return zstandard.ZstdDecompressor().stream_reader(
        source, read_across_frames=True, closefd=False
    )


def _drain(stream: Any) -> None:
    while stream.read(CHUNK):
        pass


def _is_format_error(exc: OSError) -> bool:
    """gzip reports a damaged stream as ``BadGzipFile`` (an OSError) with no errno."""
    return isinstance(exc, gzip.BadGzipFile) or exc.errno is None


def _why(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__
