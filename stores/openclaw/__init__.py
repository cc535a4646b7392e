"""OpenClaw's files, read-only: the home and its agents, workspaces and notes, transcripts.

``home`` finds the state directory, the configuration and each agent's workspace; ``jsonl``
and ``database`` read the two transcript layouts into the ``entries`` model; ``turns`` keeps
what a person would call the conversation; ``notes`` reads the workspace's memory files;
``usage`` reads the token counts; ``problems`` is how each reader says what it could not read.
It imports only ``stores.sqlite`` and the standard library: nothing here writes.
"""
