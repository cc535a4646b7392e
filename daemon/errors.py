"""The error codes shared by the control socket, the daemon and ``infractl``.

The set is closed: a code is what the server puts in ``error.code`` and what ``infractl`` turns
into its exit status, one to one. Stdlib only, because ``infractl`` imports it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_METHOD = "unknown_method"
    UNKNOWN_JOB = "unknown_job"
    TOO_LARGE = "too_large"
    BUSY = "busy"
    FORBIDDEN = "forbidden"
    TIMEOUT = "timeout"
    JOB_FAILED = "job_failed"
    NOT_FOUND = "not_found"
    NOT_CONFIGURED = "not_configured"
    #: The settings (environment, .env) have a bad value: a reload changed nothing.
    BAD_SETTINGS = "bad_settings"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


#: ``infractl`` exit status per code. 1 is left for "the command itself failed" and 2 for usage
#: errors (argparse's own), so scripts can tell a refused request from a broken invocation.
EXIT_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAVAILABLE: 3,
    ErrorCode.BAD_REQUEST: 10,
    ErrorCode.UNSUPPORTED_VERSION: 11,
    ErrorCode.UNKNOWN_METHOD: 12,
    ErrorCode.UNKNOWN_JOB: 13,
    ErrorCode.TOO_LARGE: 14,
    ErrorCode.BUSY: 15,
    ErrorCode.FORBIDDEN: 16,
    ErrorCode.TIMEOUT: 17,
    ErrorCode.JOB_FAILED: 18,
    ErrorCode.NOT_FOUND: 19,
    ErrorCode.NOT_CONFIGURED: 20,
    ErrorCode.BAD_SETTINGS: 21,
    ErrorCode.INTERNAL: 70,
}


class InfraError(Exception):
    """An error with a code from the closed set; raised anywhere, answered on the socket."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value}: {self.message!r})"

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.code]

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.data:
            error["data"] = self.data
        return error


class BadRequest(InfraError):
    code = ErrorCode.BAD_REQUEST


class UnsupportedVersion(InfraError):
    code = ErrorCode.UNSUPPORTED_VERSION


class UnknownMethod(InfraError):
    code = ErrorCode.UNKNOWN_METHOD


class UnknownJob(InfraError):
    code = ErrorCode.UNKNOWN_JOB


class TooLarge(InfraError):
    code = ErrorCode.TOO_LARGE


class Busy(InfraError):
    code = ErrorCode.BUSY


class Forbidden(InfraError):
    code = ErrorCode.FORBIDDEN


class Timeout(InfraError):
    code = ErrorCode.TIMEOUT


class JobFailed(InfraError):
    code = ErrorCode.JOB_FAILED


class NotFound(InfraError):
    code = ErrorCode.NOT_FOUND


class NotConfigured(InfraError):
    code = ErrorCode.NOT_CONFIGURED


class BadSettings(InfraError):
    code = ErrorCode.BAD_SETTINGS


class Unavailable(InfraError):
    code = ErrorCode.UNAVAILABLE


class Internal(InfraError):
    code = ErrorCode.INTERNAL


_BY_CODE: dict[ErrorCode, type[InfraError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        UnsupportedVersion,
        UnknownMethod,
        UnknownJob,
        TooLarge,
        Busy,
        Forbidden,
        Timeout,
        JobFailed,
        NotFound,
        NotConfigured,
        BadSettings,
        Unavailable,
        Internal,
    )
}


def from_wire(error: dict[str, Any]) -> InfraError:
    """Rebuild the exception a server sent; an unknown code becomes ``internal``."""
    message = str(error.get("message", "no message"))
    data = error.get("data") if isinstance(error.get("data"), dict) else None
    try:
        code = ErrorCode(str(error.get("code")))
    except ValueError:
        return Internal(f"{error.get('code')}: {message}", data=data)
    return _BY_CODE[code](message, data=data)
