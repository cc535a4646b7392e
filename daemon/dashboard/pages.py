"""What every view shares: asking the daemon, rendering a template, showing times.

A view asks through ``Pages.ask``, which turns a refused call into an ``Answer`` with the
daemon's own message instead of an exception, so one part that is not configured (backups, the
memory store) leaves the rest of the page standing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from daemon.dashboard.access import Access
from daemon.errors import ErrorCode, InfraError
from stores.counts import count

#: The daemon's API dispatcher: ``DaemonAPI.call``, the same calls the socket answers.
ApiCall = Callable[[str, dict[str, Any]], Awaitable[Any]]

#: The HTTP status a page answers when its main call is refused with this code.
HTTP_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNKNOWN_JOB: 404,
    ErrorCode.BUSY: 409,
    ErrorCode.TIMEOUT: 504,
}


@dataclass(frozen=True)
class Answer:
    data: Any = None
    error: InfraError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> int:
        """200, or what the refusal means over HTTP (503: the part is not there)."""
        if self.error is None:
            return 200
        return HTTP_STATUS.get(self.error.code, 503)


class Pages:
    def __init__(self, call: ApiCall, access: Access, zone: tzinfo) -> None:
        self.call = call
        self.access = access
        self.zone = zone
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("daemon.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["when"] = self.when
        env.filters["took"] = took
        env.filters["as_json"] = as_json
        env.filters["count"] = count
        self.templates = Jinja2Templates(env=env)

    async def ask(self, method: str, params: dict[str, Any] | None = None) -> Answer:
        try:
            return Answer(await self.call(method, params or {}))
        except InfraError as exc:
            return Answer(error=exc)

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> Response:
        context.setdefault("notice", None)
        return self.templates.TemplateResponse(
            request, name, {"csrf": self.access.csrf, **context}, status_code=status_code
        )

    def when(self, value: str | float | None, precise: bool = False) -> str:
        """An ISO time or a Unix time, in the daemon's zone."""
        if value is None or value == "":
            return "-"
        moment = (
            datetime.fromtimestamp(value, self.zone)
            if isinstance(value, (int, float))
            else datetime.fromisoformat(value).astimezone(self.zone)
        )
        return moment.strftime("%Y-%m-%d %H:%M:%S" if precise else "%Y-%m-%d %H:%M")


def took(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def as_json(value: Any) -> Markup:
    """For a ``<script type="application/json">`` block: '<' escaped so it cannot end it."""
    text = json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")
    return Markup(text)  # noqa: S704 - JSON with every '<' escaped cannot leave its script block
