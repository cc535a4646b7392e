"""``infractl``: the command line, a client of the socket protocol and nothing more.

It imports nothing heavy (no chromadb, onnxruntime, telegram or pydantic-settings at import
time), so it starts fast; it may import ``daemon.client``, ``daemon.errors``, ``daemon.paths``
and ``daemon.protocol``, and loads the settings or the service templates only in the commands
that need them.
"""
