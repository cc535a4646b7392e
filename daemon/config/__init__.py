"""The settings: one frozen ``Settings`` read at start-up from the environment and ``.env``.

``settings`` holds the root model and its loading, ``sections``, ``limits`` and ``telegram``
the nested sections, ``values`` the rules every section shares (enumerations in any case),
``names`` the variables' names and the one-line errors, ``envexample`` the ``.env.example``
rendered from them. Imports ``daemon.paths``, ``daemon.durations``, ``daemon.schedule``,
pydantic and, to say where OpenClaw is, ``stores.openclaw``: jobs and stores receive plain
values, never these models.
"""
