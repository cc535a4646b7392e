"""Encryption at rest with age (pyrage): no crypto of our own, only age's primitives composed.

With a key file (an age identity, ``AGE-SECRET-KEY-1...``) the archive is encrypted to its
recipient. With a passphrase: age's passphrase (scrypt) mode works on whole byte strings in
memory, which does not suit an archive of gigabytes, so each backup gets a fresh x25519
identity, the archive is stream-encrypted to it, and that identity, encrypted with the
passphrase, is kept in the beside manifest. Both may be set: either then opens the backup.

Streams: age reads from a file and writes to a file, so the archive's writer feeds it through a
pipe from a thread (and the reader drains one); an error on either side ends both.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyrage  # type: ignore[import-untyped]  # no stubs; its API is four calls

from stores.backup.errors import KeyDamaged, KeyProblem
from stores.backup.manifest import Encryption

PASSPHRASE_VAR = "OPENCLAW_INFRA_BACKUP__PASSPHRASE"  # noqa: S105 - a name, not a secret
KEY_FILE_VAR = "OPENCLAW_INFRA_BACKUP__KEY_FILE"
#: pyrage's word for an age file no given key opens. age cannot tell a wrong passphrase from a
#: damaged stanza of the right one (both fail the same authenticated decryption); every other
#: error (bad header, bad format, cut short) is damage.
WRONG_PASSPHRASE = "Decryption failed"  # noqa: S105 - an error message, not a secret


@dataclass(frozen=True)
class Keys:
    passphrase: str | None = None
    key_file: Path | None = None

    def __repr__(self) -> str:
        return f"Keys(passphrase={'set' if self.passphrase else None}, key_file={self.key_file})"

    @property
    def encrypting(self) -> bool:
        return bool(self.passphrase) or self.key_file is not None

    def seal(self) -> tuple[list[Any], Encryption]:
        """Recipients to encrypt a new archive to, and what its manifest records of them."""
        recipients: list[Any] = []
        wrapped = None
        if self.passphrase:
            fresh = pyrage.x25519.Identity.generate()
            recipients.append(fresh.to_public())
            sealed = pyrage.passphrase.encrypt(str(fresh).encode(), self.passphrase)
            wrapped = base64.b64encode(sealed).decode()
        if self.key_file is not None:
            recipients.extend(i.to_public() for i in self._file_identities())
        return recipients, Encryption(
            recipients=[str(r) for r in recipients], wrapped_identity=wrapped
        )

    def open(self, encryption: Encryption, name: str) -> list[Any]:
        """Identities that open a backup: the key file's, else the passphrase's. ``KeyProblem``
        says in one line why the keys given do not open it; ``KeyDamaged``, that the backup's
        own wrapped key is damaged. A key file that cannot be read is no reason to stop while
        the passphrase may still open the backup."""
        unusable = None
        if self.key_file is not None:
            try:
                mine = [
                    i
                    for i in self._file_identities()
                    if str(i.to_public()) in encryption.recipients
                ]
            except KeyProblem as exc:
                mine, unusable = [], str(exc)
            if mine:
                return mine
        if encryption.wrapped_identity and self.passphrase:
            return [self._unwrap(encryption.wrapped_identity, name, unusable)]
        if unusable is not None:
            hint = f" (or set {PASSPHRASE_VAR})" if encryption.wrapped_identity else ""
            raise KeyProblem(f"backup {name} is encrypted and the {unusable}{hint}")
        raise KeyProblem(f"backup {name} is encrypted; {self._what_is_needed(encryption)}")

    def _unwrap(self, wrapped: str, name: str, unusable: str | None) -> Any:
        """The backup's own identity, out of the passphrase-wrapped copy in its manifest."""
        assert self.passphrase
        where = f"the passphrase-wrapped key in {name}.manifest.json"
        try:
            sealed = base64.b64decode(wrapped, validate=True)
        except binascii.Error:
            raise KeyDamaged(f"{where} is not base64: damaged or tampered") from None
        try:
            plain = pyrage.passphrase.decrypt(sealed, self.passphrase)
        except pyrage.DecryptError as exc:
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if why != WRONG_PASSPHRASE:
                raise KeyDamaged(f"{where} does not decrypt ({why}): damaged or tampered") from None
            also = f"; and the {unusable}" if unusable else ""
            raise KeyProblem(
                f"wrong passphrase for backup {name}: {PASSPHRASE_VAR} does not open it{also}"
            ) from None
        try:
            return pyrage.x25519.Identity.from_str(plain.decode())
        except (UnicodeDecodeError, pyrage.IdentityError):
            raise KeyDamaged(f"{where} holds no age identity: damaged or tampered") from None

    def _what_is_needed(self, encryption: Encryption) -> str:
        if self.key_file is not None:
            return f"the key file {self.key_file} is not one it was encrypted to" + (
                f" (set {PASSPHRASE_VAR})" if encryption.wrapped_identity else ""
            )
        if encryption.wrapped_identity:
            return f"set {PASSPHRASE_VAR} (or {KEY_FILE_VAR}) to open it"
        return f"set {KEY_FILE_VAR} to the age identity file it was encrypted to"

    def _file_identities(self) -> list[Any]:
        assert self.key_file is not None
        try:
            text = self.key_file.expanduser().read_text()
        except OSError as exc:
            raise KeyProblem(f"key file {self.key_file}: {exc.strerror or exc}") from None
        lines = [line.strip() for line in text.splitlines()]
        keys = [line for line in lines if line.startswith("AGE-SECRET-KEY-")]
        try:
            identities = [pyrage.x25519.Identity.from_str(k) for k in keys]
        except pyrage.IdentityError:
            identities = []
        if not identities:
            raise KeyProblem(f"key file {self.key_file}: no age identity (AGE-SECRET-KEY-1...)")
        return identities


def new_identity_file(path: Path) -> str:
    """Write a fresh age identity (0600); returns its recipient. For tests and first set-up."""
    identity = pyrage.x25519.Identity.generate()
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with open(fd, "w") as out:
        out.write(f"# public key: {identity.to_public()}\n{identity}\n")
    return str(identity.to_public())


class EncryptingWriter(io.RawIOBase):
    """Bytes written here come out age-encrypted into ``sink``."""

    def __init__(self, sink: Any, recipients: Iterable[Any]) -> None:
        read_fd, write_fd = os.pipe()
        self._pipe = open(write_fd, "wb")  # noqa: SIM115 - closed in close(), not a block
        self._error: BaseException | None = None
        source = open(read_fd, "rb")  # noqa: SIM115 - the thread closes it
        self._thread = threading.Thread(
            target=self._run, args=(source, sink, list(recipients)), name="age-encrypt"
        )
        self._thread.start()

    def _run(self, source: BinaryIO, sink: BinaryIO, recipients: list[Any]) -> None:
        try:
            pyrage.encrypt_io(source, sink, recipients)
        except BaseException as exc:  # handed to the writing thread
            self._error = exc
        finally:
            source.close()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            self._pipe.write(data)
        except BrokenPipeError:
            self._raise_cause()
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._pipe.close()
        except BrokenPipeError:
            pass
        finally:
            self._thread.join()
            super().close()
        if self._error is not None:
            raise self._error

    def _raise_cause(self) -> None:
        self._thread.join()
        raise self._error or BrokenPipeError("age encryption stopped")


class DecryptingReader(io.RawIOBase):
    """Reads the plaintext of an age stream read from ``source``."""

    def __init__(self, source: Any, identities: Iterable[Any]) -> None:
        read_fd, write_fd = os.pipe()
        self._pipe = open(read_fd, "rb")  # noqa: SIM115 - closed in close()
        self._error: BaseException | None = None
        sink = open(write_fd, "wb")  # noqa: SIM115 - the thread closes it
        self._thread = threading.Thread(
            target=self._run, args=(source, sink, list(identities)), name="age-decrypt"
        )
        self._thread.start()

    def _run(self, source: BinaryIO, sink: BinaryIO, identities: list[Any]) -> None:
        try:
            pyrage.decrypt_io(source, sink, identities)
        except BaseException as exc:  # handed to the reading thread
            self._error = exc
        finally:
            with contextlib.suppress(BrokenPipeError):
                sink.close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._pipe.readinto(buffer)
        if not n:
            self._thread.join()
            if self._error is not None:
                raise DecryptFailed(str(self._error) or type(self._error).__name__)
        return n

    def close(self) -> None:
        if self.closed:
            return
        self._pipe.close()  # a thread still writing gets a broken pipe and stops
        self._thread.join()
        super().close()


class DecryptFailed(Exception):
    """The age stream did not decrypt: damaged, tampered with, or cut short."""
