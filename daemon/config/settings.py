"""The one Settings object: read once at start-up from the environment and ``.env``, then frozen.

Every bad value becomes one line that names the variable and the problem (``SettingsError``),
and unknown ``OPENCLAW_INFRA_*`` names are refused, so a typo never passes silently.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal
from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as PydanticSettingsError
from pydantic_settings.sources.utils import parse_env_vars

from daemon import paths
from daemon.config.limits import RetentionSettings, SocketSettings
from daemon.config.names import (
    SettingsError,
    iter_settings,
    leaf_fields,
    one_line,
    parse_failure_line,
    refuse_bad_json,
)
from daemon.config.sections import (
    BackupSettings,
    DashboardSettings,
    Duration,
    EmbedderSettings,
    JobsSettings,
    LLMSettings,
    MemorySettings,
    SyncSettings,
)
from daemon.config.telegram import TelegramSettings, TranscriptionSettings
from daemon.config.values import Section
from stores.openclaw.config import PROFILE_NAME, OpenClawEnv
from stores.openclaw.home import OpenClawSource


class Settings(BaseSettings, Section):
    model_config = SettingsConfigDict(
        env_prefix=paths.ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        env_ignore_empty=True,
        frozen=True,
        validate_default=True,
    )

    #: The environment at start-up, without the daemon's own variables: never shown.
    _environment: dict[str, str] = PrivateAttr(default_factory=dict)

    state_dir: Path = Field(
        default_factory=paths.default_state_dir,
        description="where the daemon keeps its databases, memory store, backups and logs"
        " (default: ~/.local/state/openclaw-infra; on macOS ~/Library/Application Support)",
    )
    openclaw_state_dir: Path | None = Field(
        None,
        validation_alias=AliasChoices("OPENCLAW_INFRA_OPENCLAW_STATE_DIR", "OPENCLAW_STATE_DIR"),
        description="OpenClaw's state directory (default: $OPENCLAW_STATE_DIR, else ~/.openclaw)",
    )
    openclaw_profile: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENCLAW_INFRA_OPENCLAW_PROFILE", "OPENCLAW_PROFILE"),
        description="OpenClaw profile; picks ~/.openclaw-<profile> as OpenClaw's --profile does",
    )
    workspace_path: Path | None = Field(
        None,
        description="the main agent's workspace, if not where openclaw.json says (wins over it)",
    )
    openclaw_workspace_dir: Path | None = Field(
        None,
        validation_alias=AliasChoices(
            "OPENCLAW_INFRA_OPENCLAW_WORKSPACE_DIR", "OPENCLAW_WORKSPACE_DIR"
        ),
        description="OpenClaw's OPENCLAW_WORKSPACE_DIR: the owner agent's workspace when"
        " openclaw.json names none",
    )
    openclaw_config_path: Path | None = Field(
        None,
        validation_alias=AliasChoices(
            "OPENCLAW_INFRA_OPENCLAW_CONFIG_PATH", "OPENCLAW_CONFIG_PATH"
        ),
        description="OpenClaw's configuration file (default: openclaw.json in its state dir)",
    )
    openclaw_home: Path | None = Field(
        None,
        validation_alias=AliasChoices("OPENCLAW_INFRA_OPENCLAW_HOME", "OPENCLAW_HOME"),
        description="what ~ means to OpenClaw (default: $HOME)",
    )
    runtime_dir: Path | None = Field(
        None,
        validation_alias=AliasChoices("OPENCLAW_INFRA_RUNTIME_DIR", "XDG_RUNTIME_DIR"),
        description="per-login runtime directory for the socket (default: $XDG_RUNTIME_DIR)",
    )
    socket_path: Path | None = Field(
        None,
        description="control socket (default: <runtime_dir>/openclaw-infra/infrad.sock,"
        " else <state_dir>/infrad.sock)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="debug, info, warning or error"
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: readable on a terminal, JSON lines otherwise"
    )
    timezone: str = Field(
        default_factory=tzlocal.get_localzone_name,
        description="IANA time zone for cron schedules and note dates (default: the system's)",
    )
    catchup_grace: Duration = Field(
        timedelta(hours=6),
        description="a run missed by less than this is caught up once at start-up; older"
        " ones are recorded as missed",
    )
    shutdown_grace: Duration = Field(
        timedelta(seconds=30),
        description="on stop, running jobs get this long to finish before they are cancelled",
    )
    min_free_disk_mb: int = Field(
        512, ge=0, description="health turns degraded below this much free space (MiB)"
    )
    chroma_url: str | None = Field(
        None,
        description="a Chroma server (`chroma run`) such as http://127.0.0.1:8000;"
        " default: an embedded store in the state directory",
    )
    memory: MemorySettings = Field(default_factory=MemorySettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings, description="per-job settings")
    anthropic_api_key: SecretStr | None = Field(
        None, description="Anthropic API key for summaries and refine (without: extractive)"
    )
    anthropic_base_url: str | None = Field(
        None,
        description="an Anthropic-compatible endpoint (default: https://api.anthropic.com)",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    transcription: TranscriptionSettings = Field(default_factory=TranscriptionSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    socket: SocketSettings = Field(default_factory=SocketSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like 'Europe/Berlin')"
            ) from None
        return value

    @field_validator("anthropic_base_url")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @field_validator("chroma_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s:]+(:\d+)?/?$", value):
            raise ValueError(f"not a Chroma server URL: {value!r} (use http://host:port)")
        return value

    @model_validator(mode="after")
    def _windows_overlap_sensibly(self) -> Settings:
        if self.memory.window_stride > self.memory.window_turns:
            raise ValueError(
                f"{paths.ENV_PREFIX}MEMORY__WINDOW_STRIDE: larger than"
                f" {paths.ENV_PREFIX}MEMORY__WINDOW_TURNS would leave turns out of every chunk"
            )
        return self

    @field_validator("openclaw_profile")
    @classmethod
    def _profile_name(cls, value: str | None) -> str | None:
        if value is not None and not PROFILE_NAME.fullmatch(value):
            raise ValueError(
                f"not a profile name: {value!r} (letters, digits, '_' and '-', as OpenClaw's)"
            )
        return value

    @model_validator(mode="after")
    def _socket_fits(self) -> Settings:
        encoded = os.fsencode(self.resolved_socket_path())
        if len(encoded) > paths.MAX_SOCKET_PATH_BYTES:
            limit = paths.MAX_SOCKET_PATH_BYTES
            raise ValueError(
                f"{paths.ENV_PREFIX}SOCKET_PATH: socket path is {len(encoded)} bytes, over the"
                f" {limit} a Unix socket allows; set OPENCLAW_INFRA_SOCKET_PATH to a shorter path"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def resolved_socket_path(self) -> Path:
        if self.socket_path is not None:
            return self.socket_path.expanduser().absolute()
        return paths.default_socket_path(self.state_dir.absolute(), self.runtime_dir)

    def openclaw_env(self) -> OpenClawEnv:
        return OpenClawEnv(
            state_dir=self.openclaw_state_dir,
            config_path=self.openclaw_config_path,
            profile=self.openclaw_profile,
            home=self.openclaw_home,
            workspace_dir=self.openclaw_workspace_dir,
            variables=self._environment,
        )

    def openclaw_source(self) -> OpenClawSource:
        return OpenClawSource(
            self.resolved_openclaw_state_dir(), self.workspace_path, self.openclaw_env()
        )

    def resolved_openclaw_state_dir(self) -> Path:
        return self.openclaw_env().state_dir_path().absolute()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is not None:
            env_settings = _MappingEnvSource(settings_cls, environ)
        return init_settings, env_settings, dotenv_settings

    def secrets(self) -> list[str]:
        """Every secret value configured, for the log redactor."""
        return [
            value.get_secret_value()
            for _, value in iter_settings(self)
            if isinstance(value, SecretStr) and value.get_secret_value()
        ] + self.telegram.secret_parts()


def known_names(model: type[BaseModel] = Settings, prefix: str = paths.ENV_PREFIX) -> set[str]:
    return set(leaf_fields(model, prefix))


def load_settings(
    env_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the frozen Settings or raise ``SettingsError`` with one line for the user."""
    environ = dict(os.environ if environ is None else environ)
    if env_file is not None and not env_file.is_file():
        raise SettingsError(f"--env-file {env_file}: no such file")
    dotenv_path = env_file if env_file is not None else Path(".env")
    given = _given(environ, dotenv_path)
    _refuse_unknown_names(given)
    refuse_bad_json(given, Settings)
    try:
        return _build(environ, dotenv_path)
    except ValidationError as exc:
        raise SettingsError(one_line(exc)) from None
    except PydanticSettingsError as exc:
        raise SettingsError(parse_failure_line(exc)) from None


def _build(environ: dict[str, str], dotenv_path: Path) -> Settings:
    token = _ENVIRON.set(environ)
    try:
        settings = Settings(_env_file=dotenv_path if dotenv_path.is_file() else None)
    finally:
        _ENVIRON.reset(token)
    # For ``${VAR}`` in OpenClaw's configuration, read as OpenClaw would; the daemon's own
    # variables (secrets among them) are left out.
    settings._environment = {
        k: v for k, v in environ.items() if not k.upper().startswith(paths.ENV_PREFIX)
    }
    return settings


#: The environment ``load_settings`` was given; tests and SIGHUP reloads pass their own.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("environ", default=None)


class _MappingEnvSource(EnvSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._mapping = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._mapping, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def _given(environ: Mapping[str, str], dotenv_path: Path) -> dict[str, str]:
    """The OPENCLAW_INFRA_* values given, the environment's over the file's (as they apply)."""
    given: dict[str, str] = {}
    if dotenv_path.is_file():
        from dotenv import dotenv_values

        given |= {k: v or "" for k, v in dotenv_values(dotenv_path).items()}
    given |= dict(environ)
    return {k: v for k, v in given.items() if k.startswith(paths.ENV_PREFIX)}


def _refuse_unknown_names(given: Mapping[str, str]) -> None:
    known = known_names()
    for name in sorted(set(given) - known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SettingsError(f"{name}: unknown setting{hint}")
