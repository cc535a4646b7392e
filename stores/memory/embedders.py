"""Which embedder a setting names: the offline default, or one of the opt-in services.

Kept apart from ``embeddings`` (the protocol and the default) so that the services, which build
on that protocol, are imported only when chosen: the default never loads httpx or torch.
"""

from __future__ import annotations

from stores.memory.embeddings import (
    DEFAULT_KIND,
    KINDS,
    Embedder,
    EmbedderUnavailable,
    MiniLMEmbedder,
)


def make_embedder(
    kind: str = DEFAULT_KIND,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    threads: int | None = None,
) -> Embedder:
    """Build the embedder a setting names. Cheap: models load and connections open on first use."""
    if kind == "minilm-int8":
        if model is not None and model != "all-MiniLM-L6-v2":
            raise EmbedderUnavailable(f"minilm-int8 runs all-MiniLM-L6-v2 only, not {model!r}")
        return MiniLMEmbedder(threads=threads)
    # The services are imported only when chosen: the default never loads httpx or torch.
    from stores.memory import embedding_services

    if kind == "sentence-transformers":
        if not model:
            raise EmbedderUnavailable("sentence-transformers needs a model name or local path")
        return embedding_services.SentenceTransformersEmbedder(model, threads=threads)
    if kind == "openai":
        if not model or not base_url:
            raise EmbedderUnavailable("openai needs both a model and a base URL")
        return embedding_services.OpenAIEmbedder(base_url, model, api_key=api_key)
    raise EmbedderUnavailable(f"unknown embedder kind {kind!r}; choose one of {', '.join(KINDS)}")
