"""The parts of the Settings: per-job schedules, the memory store and the embedder.

Each job's subclass of ``JobSettings`` gives its own defaults, so that setting one field of a
job (``OPENCLAW_INFRA_JOBS__HEALTH__TIMEOUT``) keeps the others.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, SecretStr
from pydantic_settings import NoDecode

from daemon.schedule import Schedule, format_duration, parse_duration, parse_schedule

Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]
ScheduleField = Annotated[
    Schedule, NoDecode, BeforeValidator(parse_schedule), PlainSerializer(str, return_type=str)
]


class JobSettings(BaseModel):
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


class IngestJobSettings(JobSettings):
    schedule: ScheduleField = Field(
        parse_schedule("every 1m"), description="when new transcript entries and notes are read"
    )
    timeout: Duration = Field(
        timedelta(hours=1), description="limit for one ingest run (the first reads everything)"
    )


class JobsSettings(BaseModel):
    """One entry per job in ``jobs.JOBS``; a test keeps the two in step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    health: HealthJobSettings = Field(default_factory=HealthJobSettings)
    ingest: IngestJobSettings = Field(default_factory=IngestJobSettings)


class EmbedderSettings(BaseModel):
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


class MemorySettings(BaseModel):
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
