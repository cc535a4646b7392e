"""The socket methods: the daemon's whole API, validated at the edge.

``core`` holds the dispatcher and the job and status methods; each other module one family of
methods (memory, backups, LLM, feedback, sync). Handlers reach the running daemon through the
``Daemon`` protocol in ``host`` and may import ``daemon.errors``, ``daemon.schedule``, jobs and
stores, never the supervisor, so every face (CLI, bot, MCP, dashboard) sees the same calls.
"""
