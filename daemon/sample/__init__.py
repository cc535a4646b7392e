"""A sample OpenClaw home for the quickstart and the tests, written the way OpenClaw writes one.

``writer`` writes agents, workspaces and transcripts in both layouts; ``home`` is the
quickstart's home built with it. Standard library only: it imports nothing of the daemon.
"""
