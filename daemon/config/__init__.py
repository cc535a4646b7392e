"""The settings: one frozen ``Settings`` read at start-up from the environment and ``.env``.

``settings`` holds the root model and its loading, ``sections`` and ``telegram`` the nested
sections, ``envexample`` the ``.env.example`` rendered from them. Only ``daemon.paths`` and
pydantic are imported here: jobs and stores receive plain values, never these models.
"""
