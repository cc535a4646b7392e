"""What the agents share and what is written for them: signals (and the drop files agents
write them in), priorities, mistakes (recorded and scanned from transcripts), feedback on
recommendations, each agent's hourly activity, and the notes the daemon writes into workspaces
(hourly summaries, daily sync digests).

It may import ``stores.openclaw`` (transcripts, workspaces), ``stores.memory`` (the index's
turns) and the shared ``stores.atomic``, ``stores.sqlite`` and ``stores.redaction``.
"""
