"""Who may use the dashboard: the holder of this start's access link, from this machine.

A random token, new at every start, comes in the link ``infractl dashboard`` opens; the first
request trades it for an HttpOnly, SameSite=Strict session cookie and is redirected to the same
address without the token (so it leaves the address bar and the history). Without the cookie
every page, fragment and static file answers 401. The Host header must name loopback (a
rebinding DNS name reaches 127.0.0.1 with another Host), and a change (a POST) needs the page's
CSRF token as well. Every answer forbids framing and sending the address elsewhere, and pages
are not cached (the static files are, revalidated by ETag).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp

#: The names the dashboard answers to; it listens on 127.0.0.1 alone.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
#: A form the dashboard posts is a few fields; anything larger is not one of its forms.
MAX_FORM_BYTES = 16 * 1024

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
        " form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

DENIED = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>openclaw-infra dashboard</title></head><body>
<h1>401: this dashboard needs its access link</h1>
<p>Run <code>infractl dashboard</code> to open it, or <code>infractl dashboard --print-url</code>
for the link. A link works until infrad restarts.</p></body></html>"""


@dataclass(frozen=True)
class Access:
    """This start's secrets. ``cookie`` names the session cookie after the port, since a
    browser sends a 127.0.0.1 cookie to every port of it (two daemons, two sessions)."""

    cookie: str
    token: str = field(repr=False)
    session: str = field(repr=False)
    csrf: str = field(repr=False)

    @classmethod
    def new(cls, port: int) -> Access:
        return cls(
            cookie=f"openclaw_infra_{port}",
            token=secrets.token_urlsafe(32),
            session=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
        )

    def signed_in(self, request: Request) -> bool:
        return secrets.compare_digest(request.cookies.get(self.cookie, ""), self.session)

    def token_ok(self, given: str) -> bool:
        return secrets.compare_digest(given.encode(), self.token.encode())


class AccessMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: ASGIApp, access: Access) -> None:
        super().__init__(app)
        self.access = access

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await self._answer(request, call_next)
        if request.url.path.startswith("/static/") and response.status_code in (200, 304):
            # The same for everyone who may see them: kept, and checked by ETag on each use.
            response.headers.setdefault("Cache-Control", "private, no-cache")
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _answer(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            return self._exchange(request, given)
        if not self.access.signed_in(request):
            return HTMLResponse(DENIED, status_code=401)
        if request.method not in ("GET", "HEAD", "POST"):
            return Response("method not allowed", status_code=405, headers={"Allow": "GET, POST"})
        if request.method == "POST" and not _same_origin(request):
            return Response("a change must come from the dashboard's own pages", status_code=403)
        return await call_next(request)

    def _exchange(self, request: Request, given: str) -> Response:
        if not self.access.token_ok(given):
            return HTMLResponse(DENIED, status_code=401)
        clean = request.url.remove_query_params("token")
        target = clean.path + (f"?{clean.query}" if clean.query else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            self.access.cookie, self.access.session, httponly=True, samesite="strict", path="/"
        )
        return response


def _same_origin(request: Request) -> bool:
    """A browser names the page a POST came from; it must be one of ours (or unnamed)."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"http://{request.headers.get('host', '')}"


async def form(request: Request, access: Access) -> dict[str, str]:
    """The posted form, once its CSRF token is checked: a page of ours, not another site's."""
    too_large = HTTPException(413, f"a form of the dashboard is at most {MAX_FORM_BYTES} bytes")
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        raise too_large
    body = b""
    async for part in request.stream():  # read no further than the limit, whatever was declared
        body += part
        if len(body) > MAX_FORM_BYTES:
            raise too_large
    fields = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    if not secrets.compare_digest(fields.get("csrf", "").encode(), access.csrf.encode()):
        raise HTTPException(403, "the form's CSRF token is missing or stale; reload the page")
    return fields
