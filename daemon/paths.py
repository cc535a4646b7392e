"""Where the daemon keeps its state and its socket, computed the same way by both faces.

``infrad`` builds these into its Settings; ``infractl`` must find the same socket without
importing pydantic, so the rules live here, on the stdlib and platformdirs alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

APP_NAME = "openclaw-infra"
ENV_PREFIX = "OPENCLAW_INFRA_"
SOCKET_NAME = "infrad.sock"
#: sockaddr_un.sun_path is 108 bytes on Linux and 104 on macOS, terminating NUL included.
MAX_SOCKET_PATH_BYTES = 103


def default_state_dir() -> Path:
    import platformdirs  # deferred: infractl with --socket or SOCKET_PATH never needs it

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def default_openclaw_state_dir(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("OPENCLAW_STATE_DIR")
    return Path(explicit).expanduser() if explicit else Path.home() / ".openclaw"


def default_socket_path(state_dir: Path, runtime_dir: Path | str | None) -> Path:
    """``$XDG_RUNTIME_DIR/openclaw-infra/infrad.sock``, else inside the state directory."""
    if runtime_dir and Path(runtime_dir).is_absolute():
        return Path(runtime_dir) / APP_NAME / SOCKET_NAME
    return state_dir / SOCKET_NAME


def client_socket_path(
    explicit: str | None, environ: Mapping[str, str], env_file: Path | None
) -> Path:
    """The socket ``infractl`` talks to: flag, then environment, then ``.env``, then default."""
    if explicit:
        return Path(explicit).expanduser()
    values = dict(_read_env_file(env_file))
    values.update({k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)})
    if values.get(ENV_PREFIX + "SOCKET_PATH"):
        return Path(values[ENV_PREFIX + "SOCKET_PATH"]).expanduser()
    state = values.get(ENV_PREFIX + "STATE_DIR")
    state_dir = Path(state).expanduser().absolute() if state else default_state_dir()
    runtime = values.get(ENV_PREFIX + "RUNTIME_DIR") or environ.get("XDG_RUNTIME_DIR")
    return default_socket_path(state_dir, runtime)


def _read_env_file(env_file: Path | None) -> dict[str, str]:
    path = env_file if env_file is not None else Path(".env")
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # deferred: only paid when a .env file exists

    return {k: v for k, v in dotenv_values(path).items() if v is not None}
