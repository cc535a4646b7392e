"""The dashboard's ASGI app: routes, the static files, and the guards in front of them.

The Host check (starlette's ``TrustedHostMiddleware``) comes first, then the access check
(``access.AccessMiddleware``): a request from a rebinding DNS name or without the session gets
no further than those two.
"""

from __future__ import annotations

from datetime import tzinfo

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from daemon.dashboard.access import LOOPBACK_HOSTS, Access, AccessMiddleware
from daemon.dashboard.backups import BackupsView
from daemon.dashboard.coordination import CoordinationView
from daemon.dashboard.health import HealthView
from daemon.dashboard.memory import MemoryView
from daemon.dashboard.pages import ApiCall, Pages
from daemon.dashboard.runs import RunsView


def build_app(call: ApiCall, access: Access, zone: tzinfo) -> Starlette:
    pages = Pages(call, access, zone)
    memory = MemoryView(pages)
    runs = RunsView(pages)
    backups = BackupsView(pages)
    routes = [
        Route("/", _home),
        Route("/runs", runs.runs),
        Route("/memory", memory.search),
        Route("/memory/context", memory.context),
        Route("/memory/forget", memory.confirm_forget, methods=["GET"]),
        Route("/memory/forget", memory.forget, methods=["POST"]),
        Route("/health", HealthView(pages).health),
        Route("/backups", backups.backups, methods=["GET"]),
        Route("/backups/verify", backups.verify, methods=["POST"]),
        Route("/backups/now", backups.back_up_now, methods=["POST"]),
        Route("/signals", CoordinationView(pages).signals),
        Mount("/static", StaticFiles(packages=[("daemon.dashboard", "static")]), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK_HOSTS)),
            Middleware(AccessMiddleware, access=access),
        ],
        exception_handlers={HTTPException: _plain_error},
    )


async def _home(request: Request) -> Response:
    return RedirectResponse("/runs", status_code=303)


async def _plain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return PlainTextResponse(f"{exc.status_code}: {exc.detail}", status_code=exc.status_code)
