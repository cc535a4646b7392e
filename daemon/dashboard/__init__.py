"""The local web dashboard: a read-mostly face on the socket methods, served on 127.0.0.1.

It owns the ASGI app (starlette), its pages (jinja2 templates), the static files shipped with
it (the uPlot chart library among them, so the page works offline) and the uvicorn server the
supervisor starts and stops inside the daemon's event loop. Every page asks the daemon through
the ``call`` it is handed (``DaemonAPI.call``, as the bot does), never a store, so it sees
exactly what ``infractl`` sees. It may import ``daemon.config``, ``daemon.errors``, ``daemon.logs``,
``jobs.checks`` (its health check), ``stores.counts`` (numbers in words) and the web libraries;
not ``daemon.api``, not a store.
"""
