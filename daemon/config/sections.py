"""The parts of the Settings: per-job schedules, the memory store and the embedder.

Each job's subclass of ``JobSettings`` gives its own defaults, so that setting one field of a
job (``OPENCLAW_INFRA_JOBS__HEALTH__TIMEOUT``) keeps the others.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, PlainSerializer, SecretStr
from pydantic_settings import NoDecode

from daemon.config.values import Section
from daemon.durations import format_duration, parse_duration
from daemon.schedule import Schedule, parse_schedule

Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]


def _duration_or_never(value: object) -> timedelta | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "never"):
        return None
    try:
        if not isinstance(value, str | int | float | timedelta):
            raise ValueError(f"not a duration: {value!r}")
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}, or 'never'") from None


#: A duration, or ``never`` (None).
DurationOrNever = Annotated[
    timedelta | None,
    BeforeValidator(_duration_or_never),
    PlainSerializer(lambda v: "never" if v is None else format_duration(v), return_type=str),
]
ScheduleField = Annotated[
    Schedule, NoDecode, BeforeValidator(parse_schedule), PlainSerializer(str, return_type=str)
]


class JobSettings(Section):
    """What every job has; each job's subclass gives its own defaults, so that setting one
    field of a job (``OPENCLAW_INFRA_JOBS__HEALTH__TIMEOUT``) keeps the others."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="run this job on its schedule")
    schedule: ScheduleField = Field(
        description="'every <duration>' (30s, 5m, 1h, 1d) or a 5-field cron line"
    )
    timeout: Duration = Field(description="a run still going after this is cancelled")


class HealthJobSettings(JobSettings):
    schedule: ScheduleField = Field(
        parse_schedule("every 5m"), description="when component checks run"
    )
    timeout: Duration = Field(timedelta(seconds=60), description="limit for one health run")
    keep_history: Duration = Field(
        timedelta(days=30), description="health reports older than this leave the history"
    )


class IngestJobSettings(JobSettings):
    schedule: ScheduleField = Field(
        parse_schedule("every 1m"), description="when new transcript entries and notes are read"
    )
    timeout: Duration = Field(
        timedelta(hours=1), description="limit for one ingest run (the first reads everything)"
    )


class SummarizeJobSettings(JobSettings):
    schedule: ScheduleField = Field(
        parse_schedule("5 * * * *"), description="when the last hour of each agent is summarised"
    )
    timeout: Duration = Field(timedelta(minutes=20), description="limit for one summarize run")
    prompting: Literal["three-pass", "single-pass"] = Field(
        "three-pass", description="draft-critique-refine, or a single draft"
    )
    keep_hourly_for: Duration = Field(
        timedelta(days=7), description="hourly sections older than this fold into the day summary"
    )
    catch_up: Duration = Field(
        timedelta(hours=24), description="after downtime, summarise at most this far back"
    )


class SyncJobSettings(JobSettings):
    schedule: ScheduleField = Field(
        parse_schedule("15 7 * * *"),
        description="when each agent's daily sync note is written (cron, local time)",
    )
    timeout: Duration = Field(timedelta(minutes=10), description="limit for one sync run")


class SynthesizeJobSettings(JobSettings):
    schedule: ScheduleField = Field(
        parse_schedule("0 8 * * 1"),
        description="when the week's mistakes are synthesised (cron, local time)",
    )
    timeout: Duration = Field(timedelta(minutes=30), description="limit for one synthesis")
    prompting: Literal["three-pass", "single-pass"] = Field(
        "three-pass", description="draft-critique-refine, or a single draft"
    )
    similarity: float = Field(
        0.6, ge=0.0, le=1.0, description="mistakes at least this similar (cosine) form a pattern"
    )
    max_recommendations: int = Field(
        3, ge=0, le=10, description="recommendations per agent and week, at most"
    )


class BackupJobSettings(JobSettings):
    schedule: ScheduleField = Field(parse_schedule("30 3 * * *"), description="when backups run")
    timeout: Duration = Field(timedelta(hours=1), description="limit for one backup")


class RestoreDrillJobSettings(JobSettings):
    schedule: ScheduleField = Field(
        parse_schedule("0 5 * * 0"), description="when the newest backup is restored and checked"
    )
    timeout: Duration = Field(timedelta(hours=1), description="limit for one restore drill")


class RetentionJobSettings(JobSettings):
    schedule: ScheduleField = Field(
        parse_schedule("45 4 * * *"),
        description="when old runs, LLM results and closed signals are deleted",
    )
    timeout: Duration = Field(timedelta(minutes=30), description="limit for one retention run")


class JobsSettings(Section):
    """One entry per job in ``jobs.JOBS``; a test keeps the two in step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    health: HealthJobSettings = Field(default_factory=HealthJobSettings)
    ingest: IngestJobSettings = Field(default_factory=IngestJobSettings)
    summarize: SummarizeJobSettings = Field(default_factory=SummarizeJobSettings)
    sync: SyncJobSettings = Field(default_factory=SyncJobSettings)
    synthesize: SynthesizeJobSettings = Field(default_factory=SynthesizeJobSettings)
    backup: BackupJobSettings = Field(default_factory=BackupJobSettings)
    restore_drill: RestoreDrillJobSettings = Field(default_factory=RestoreDrillJobSettings)
    retention: RetentionJobSettings = Field(default_factory=RetentionJobSettings)


class EmbedderSettings(Section):
    """How memory text becomes vectors. Changing it means `infractl memory reindex`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["minilm-int8", "sentence-transformers", "openai"] = Field(
        "minilm-int8",
        description="minilm-int8 (offline, shipped), sentence-transformers, or openai"
        " (any OpenAI-compatible /embeddings endpoint)",
    )
    model: str | None = Field(None, description="model name for sentence-transformers or openai")
    base_url: str | None = Field(None, description="endpoint for kind openai")
    api_key: SecretStr | None = Field(None, description="key for kind openai")
    threads: int | None = Field(None, ge=1, le=64, description="ONNX threads (default: all)")


class BackupSettings(Section):
    """What backups hold, where they go, how many are kept, how they are protected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dir: Path | None = Field(None, description="where archives go (default: <state_dir>/backups)")
    compression: Literal["zstd", "gzip"] = Field("zstd", description="zstd or gzip")
    keep_hourly: int = Field(24, ge=0, le=10_000, description="newest backup of each of N hours")
    keep_daily: int = Field(7, ge=0, le=10_000, description="newest backup of each of N days")
    keep_weekly: int = Field(4, ge=0, le=10_000, description="newest backup of each of N weeks")
    keep_monthly: int = Field(6, ge=0, le=10_000, description="newest backup of each of N months")
    keep_manual: int = Field(
        10,
        ge=0,
        le=10_000,
        description="the newest N backups made with `infractl backup now`, whatever the"
        " hourly, daily, weekly and monthly rules say",
    )
    include_openclaw_databases: bool = Field(
        False, description="also copy each agent's OpenClaw database (read-only)"
    )
    include: list[str] = Field(
        default_factory=lambda: ["*.md", "memory/**"],
        description='workspace files to save, as a JSON list of globs (["**"] for all)',
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="workspace files never to save, as a JSON list of globs",
        examples=[["drafts/**", "*.tmp"]],
    )
    passphrase: SecretStr | None = Field(None, description="encrypt archives with this (age)")
    key_file: Path | None = Field(None, description="or with this age identity file")


class LLMSettings(Section):
    """The model behind summaries and `infractl refine`. The key is
    OPENCLAW_INFRA_ANTHROPIC_API_KEY; without one, summaries are extractive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("claude-sonnet-4-6", min_length=1, description="Anthropic model id")
    max_tokens: int = Field(2048, ge=1, le=128_000, description="most tokens one answer may have")
    timeout: Duration = Field(timedelta(seconds=120), description="limit for one API request")
    max_retries: int = Field(
        3, ge=0, le=10, description="retries on overload, rate limits and server errors"
    )
    input_usd_per_mtok: float = Field(
        3.0, ge=0, description="price of a million input tokens, for the cost in run stats"
    )
    output_usd_per_mtok: float = Field(
        15.0, ge=0, description="price of a million output tokens, for the cost in run stats"
    )
    send_temperature: bool = Field(
        False,
        description="send each pass's temperature (0.7/0.5/0.6); only for an endpoint that"
        " takes it: the Anthropic API's current version refuses it",
    )
    api_version: str | None = Field(
        None, description="pin the anthropic-version header, e.g. 2023-06-01"
    )


class MemorySettings(Section):
    model_config = ConfigDict(frozen=True, extra="forbid")

    token_budget: int = Field(1500, ge=50, le=100_000, description="most tokens one search returns")
    window_turns: int = Field(4, ge=1, le=32, description="conversation turns per memory chunk")
    window_stride: int = Field(
        2, ge=1, le=32, description="turns between the starts of consecutive chunks"
    )
    watch: bool = Field(True, description="ingest within seconds of a transcript or note change")
    watch_debounce: Duration = Field(
        timedelta(milliseconds=400), description="wait for writes to settle before ingesting"
    )
    release_vectors_after: DurationOrNever = Field(
        timedelta(minutes=10),
        description="free the vector index's memory after this long without a search or write;"
        " the next one loads it again (~0.4 s at 100k chunks); 'never' keeps it loaded",
    )


class SyncSettings(Section):
    """Cross-agent signals and how the daily sync tells OpenClaw about its notes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    openclaw_command: str = Field(
        "openclaw",
        min_length=1,
        description="the openclaw executable (a name on PATH or a path) used to announce notes",
    )
    announce: bool = Field(
        True, description="wake the agent with `openclaw system event` when its sync note changes"
    )
    announce_timeout: Duration = Field(
        timedelta(seconds=30), description="an announcement still running after this is killed"
    )
    signal_ttl: Duration = Field(
        timedelta(days=7), description="how long a signal without its own expiry stays open"
    )
    wake_on: Literal["urgent", "high", "never"] = Field(
        "urgent",
        description="a signal of this priority or higher wakes the agents it is for at once"
        " (`openclaw system event`), not only in their next daily sync",
    )


class DashboardSettings(Section):
    """The local web dashboard: another face on the socket methods, on 127.0.0.1 only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="serve the dashboard on 127.0.0.1 at this port (0: any free port;"
        " `infractl dashboard` opens it); unset: no dashboard",
    )
