"""Chroma's side of the embedders: a collection remembers how it was embedded.

Chroma persists an embedding function as a registered name plus ``get_config()``, and on
``get_collection(name)`` without a function rebuilds it from that with ``build_from_config``, so
queries are embedded the way the documents were. Importing this module registers the function;
whatever opens the store imports it first.

Chroma rebuilds the function from its config on every ``add`` and ``query`` of such a collection,
so built embedders are kept per config here: the model loads once per process, not per query.

Secrets are never persisted. For a service that needs a key the config holds the name of the
environment variable that has it, and only a rebuild by Chroma reads it; the daemon itself passes
a function built from its settings.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, cast

from chromadb.api.types import Documents, Embeddable, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from stores.memory.embedders import make_embedder
from stores.memory.embeddings import KINDS, Embedder, EmbedderSpec

NAME = "openclaw-infra"

_built: dict[tuple[EmbedderSpec, str | None], Embedder] = {}
_built_lock = threading.Lock()


class InfraEmbeddingFunction(EmbeddingFunction[Documents]):
    """Wraps an :class:`~stores.memory.embeddings.Embedder` so that Chroma can persist and
    rebuild it."""

    def __init__(self, embedder: Embedder, *, api_key_env_var: str | None = None) -> None:
        self.embedder = embedder
        self.api_key_env_var = api_key_env_var

    def __repr__(self) -> str:
        return f"InfraEmbeddingFunction({self.embedder!r})"

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return NAME

    def default_space(self) -> Space:
        return "cosine"  # rows are unit vectors; cosine is what the models were trained for

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def is_legacy(self) -> bool:
        return False  # Chroma's own test would build a second embedder just to find this out

    def get_config(self) -> dict[str, Any]:
        spec = self.embedder.spec
        return {
            "kind": spec.kind,
            "model": spec.model,
            "base_url": spec.base_url,
            "api_key_env_var": self.api_key_env_var,
            "embedder_id": self.embedder.id,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> InfraEmbeddingFunction:
        InfraEmbeddingFunction.validate_config(config)
        spec = EmbedderSpec(kind=config["kind"], model=config["model"], base_url=config["base_url"])
        env_var = config.get("api_key_env_var")
        embedder = shared_embedder(spec, api_key_env_var=env_var)
        if embedder.id != config["embedder_id"]:
            raise ValueError(
                f"collection was embedded by {config['embedder_id']!r},"
                f" its config now builds {embedder.id!r}"
            )
        return InfraEmbeddingFunction(embedder, api_key_env_var=env_var)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if config.get("kind") not in KINDS:
            raise ValueError(f"embedder kind {config.get('kind')!r} is not one of {KINDS}")
        for key in ("model", "base_url", "api_key_env_var"):
            if not isinstance(config.get(key), str | None):
                raise ValueError(f"embedder config {key} must be a string or null")
        if not isinstance(config.get("embedder_id"), str):
            raise ValueError("embedder config has no embedder_id")

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        if old_config.get("embedder_id") != new_config.get("embedder_id"):
            raise ValueError(
                "a collection's embedder cannot change: its stored vectors would no longer"
                " compare with new ones; embed into a new collection instead"
            )


def embedding_function(
    embedder: Embedder, *, api_key_env_var: str | None = None
) -> EmbeddingFunction[Embeddable]:
    """The function to hand to ``create_collection`` and ``get_collection``.

    Typed as the client API declares its argument: mypy will not take a text-only function
    there, since chromadb's ``EmbeddingFunction`` is invariant in what it embeds.
    """
    function = InfraEmbeddingFunction(embedder, api_key_env_var=api_key_env_var)
    return cast(EmbeddingFunction[Embeddable], function)


_register = cast(Callable[[type[Any]], type[Any]], register_embedding_function)
_register(InfraEmbeddingFunction)


def shared_embedder(spec: EmbedderSpec, *, api_key_env_var: str | None = None) -> Embedder:
    """One embedder per config and process, however often Chroma rebuilds the function."""
    key = (spec, api_key_env_var)
    with _built_lock:
        embedder = _built.get(key)
        if embedder is None:
            api_key = os.environ.get(api_key_env_var) if api_key_env_var else None
            embedder = make_embedder(
                spec.kind,
                model=spec.model,
                base_url=spec.base_url,
                api_key=api_key,
                threads=spec.threads,
            )
            _built[key] = embedder
        return embedder
