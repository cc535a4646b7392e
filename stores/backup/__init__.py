"""Backups: consistent snapshots of the state directory and workspaces, archived, verified,
restored, pruned.

``create`` snapshots (``snapshot``, ``select``) and archives (``archive``, ``crypto``,
``manifest``); ``verify`` reads an archive back (``extract``, ``checks``, and ``probe`` in a
fresh interpreter); ``restore`` and ``writeback`` put files back; ``repo`` lists and
``retention`` prunes. It may import ``stores.openclaw`` (to find workspaces) and the shared
``stores.atomic``; nothing here schedules or talks to the socket.
"""
