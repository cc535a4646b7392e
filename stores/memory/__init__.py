"""The memory store: every turn and note, searchable by meaning and by words.

``store`` is the ``MemoryStore`` the jobs use; under it ``index`` (SQLite: chunks, turns, FTS5,
checkpoints; the source of truth), ``vectors`` (Chroma), ``keyword_search`` and ``keywords``,
``chunking`` (turns and notes into windows), ``embeddings`` with ``embedding_services`` and
``chroma_embedding`` (the embedders), ``results`` (fusion, merging, the token budget) and
``models`` (the records). It may import ``stores.openclaw`` (for turns and notes), the shared
``stores.atomic``, ``stores.sqlite`` and ``stores.redaction``; nothing imports it but jobs,
the daemon and ``stores.coordination``.
"""
