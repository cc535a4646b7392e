"""The environment a child process is started with: what it needs to run, none of the daemon's
secrets. Every process the daemon starts (``openclaw system event``, the backup probe) gets its
environment from here, never the daemon's own.

An allow-list, not a deny-list, because a deny-list misses the secret nobody thought of:

* ``PATH``, ``HOME``, ``USER``, ``LOGNAME``, ``SHELL``, ``LANG``, ``LANGUAGE``, ``TZ``,
  ``TMPDIR``, ``LC_*`` and ``XDG_*``: finding programs, files, the locale and the runtime
  directory;
* OpenClaw's own ``OPENCLAW_*`` (``OPENCLAW_STATE_DIR``, ``OPENCLAW_PROFILE``,
  ``OPENCLAW_CONFIG_PATH``, ...), so that ``openclaw`` finds the same home the daemon reads;

and never ``OPENCLAW_INFRA_*`` (the daemon's settings, its API keys and bot token among them),
nor any name that reads like a secret (``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``,
``*PASSPHRASE*``, ``*CREDENTIAL*``): OpenClaw reads its gateway token from its own config and
``.env`` files, not from ours. Whatever the name, a value equal to one of the daemon's secrets
is left out too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ALLOWED = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR"}
)
ALLOWED_PREFIXES = ("LC_", "XDG_", "OPENCLAW_")
NEVER_PREFIXES = ("OPENCLAW_INFRA_",)
MIN_EMBEDDED = 8
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL")


def child_environ(
    environ: Mapping[str, str],
    *,
    secrets: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allowed part of ``environ`` without any of ``secrets``, then ``extra`` on top (what
    the caller sets on purpose, such as ``PYTHONPATH`` for a probe of its own)."""
    hidden = {s for s in secrets if s}
    kept = {
        name: value
        for name, value in environ.items()
        if is_passed_on(name) and not _holds_secret(value, hidden)
    }
    kept.update(extra or {})
    return kept


def _holds_secret(value: str, secrets: set[str]) -> bool:
    # Inside a longer value only a secret long enough not to match by chance.
    return any(value == s or (len(s) >= MIN_EMBEDDED and s in value) for s in secrets)


def is_passed_on(name: str) -> bool:
    upper = name.upper()
    if upper.startswith(NEVER_PREFIXES) or any(word in upper for word in SECRET_WORDS):
        return False
    return upper in ALLOWED or upper.startswith(ALLOWED_PREFIXES)
