"""The backups view: the archives (``backup.list``), the restore drills' results (``runs`` of
``restore_drill``), and two actions: verify one archive (``backup.verify``) and back up now
(``trigger`` of ``backup``), each a POST with the CSRF token."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from daemon.dashboard.access import form
from daemon.dashboard.pages import Answer, Pages

DRILLS = 10
BACKUP_RUNS = 5


class BackupsView:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def backups(self, request: Request) -> Response:
        started = request.query_params.get("started", "")
        notice = f"Backup run {started} started." if re.fullmatch(r"\d{1,12}", started) else None
        return await self._page(request, notice=notice)

    async def verify(self, request: Request) -> Response:
        fields = await form(request, self.pages.access)
        params = {"name": fields["name"]} if fields.get("name") else {}
        verified = await self.pages.ask("backup.verify", params)
        return await self._page(request, verified=verified, status_code=verified.status)

    async def back_up_now(self, request: Request) -> Response:
        await form(request, self.pages.access)
        started = await self.pages.ask("trigger", {"job": "backup"})
        if not started.ok:
            notice = f"No backup started: {started.error and started.error.message}"
            return await self._page(request, notice=notice, status_code=started.status)
        return RedirectResponse(f"/backups?started={started.data['run_id']}", status_code=303)

    async def _page(
        self,
        request: Request,
        *,
        notice: str | None = None,
        verified: Answer | None = None,
        status_code: int = 200,
    ) -> Response:
        listed = await self.pages.ask("backup.list")
        drills = await self.pages.ask("runs", {"job": "restore_drill", "limit": DRILLS})
        made = await self.pages.ask("runs", {"job": "backup", "limit": BACKUP_RUNS})
        return self.pages.render(
            request,
            "backups.html",
            status_code=status_code if status_code != 200 else listed.status,
            listed=listed,
            drills=drills,
            made=made,
            verified=verified,
            notice=notice,
        )
