"""``infractl``: the command line, a client of the socket protocol and nothing more.

It imports nothing heavy (no chromadb, onnxruntime, telegram or pydantic-settings at import
time), so it starts fast; it may import ``daemon.client``, ``daemon.errors``, ``daemon.paths``,
``daemon.protocol``, ``daemon.durations`` and ``stores.counts`` (all stdlib-only), and loads the
settings, the service templates or shtab only in the commands that need them.
"""
