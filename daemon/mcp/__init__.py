"""The agents' face: ``infractl mcp``, a stdio MCP server an agent host runs for each agent.

It gives agents the memory and the coordination stores as tools (``memory_search``,
``memory_get``, ``memory_add``, ``signal_send``, ``signals``, ``priorities``, ``mistake_add``),
each a call of the daemon's socket methods, like every other face. It imports the MCP SDK,
``daemon.client``, ``daemon.errors``, ``daemon.protocol`` and ``stores.counts``, no other
store and no job, and only
when ``infractl mcp`` runs: the SDK costs half a second to import.
"""
