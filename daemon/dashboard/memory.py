"""The memory view: search with filters, the stretch of the session around a result, forget.

Search is ``memory.search``, the stretch is ``memory.get`` and forgetting is ``memory.forget``
(after a confirmation page, with the CSRF token): the same calls ``infractl memory`` makes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from daemon.dashboard.access import form
from daemon.dashboard.pages import Pages
from stores.counts import count

KINDS = ("turns", "summary", "note", "manual", "hourly", "sync", "weekly")
#: The search form's fields, as the page's address carries them.
FILTERS = ("q", "agent", "kind", "speaker", "since", "until")
#: Turns shown before and after a result's own.
AROUND = 3


class MemoryView:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def search(self, request: Request) -> Response:
        asked = {k: request.query_params.get(k, "").strip() for k in FILTERS}
        stats = await self.pages.ask("memory.stats")
        agents = sorted(a for a in (stats.data or {}).get("by_agent", {}) if a)
        answer = None
        if asked["q"]:
            answer = await self.pages.ask("memory.search", _search_params(asked))
        results = [_shown(r) for r in answer.data["results"]] if answer and answer.ok else []
        forgot = request.query_params.get("forgot")
        return self.pages.render(
            request,
            "memory.html",
            status_code=answer.status if answer else stats.status,
            asked=asked,
            agents=agents,
            kinds=KINDS,
            stats=stats,
            answer=answer,
            results=results,
            back=urlencode({k: v for k, v in asked.items() if v}),
            notice=(
                f"Forgotten: {count(int(forgot), 'memory record')} removed."
                if forgot and forgot.isdigit()
                else None
            ),
        )

    async def context(self, request: Request) -> Response:
        """The stretch of the session (or of the note) around a result."""
        query = request.query_params
        params: dict[str, Any] = {
            k: query[k]
            for k in ("agent", "session_id", "entry_id", "path", "line_start", "line_end")
            if query.get(k)
        }
        span = _number(query.get("span"), 1)
        if "path" in params:
            params.update(before=AROUND, after=AROUND)
        else:
            params.update(before=AROUND, after=min(50, span - 1 + AROUND))
        answer = await self.pages.ask("memory.get", params)
        fragment = request.headers.get("x-fragment") == "1"
        return self.pages.render(
            request,
            "context_body.html" if fragment else "context.html",
            status_code=answer.status,
            answer=answer,
            span=span,
        )

    async def confirm_forget(self, request: Request) -> Response:
        """What is about to be forgotten, found again by the search that showed it."""
        chunk_id = request.query_params.get("id", "")
        back = _clean_back(request.query_params.get("back", ""))
        asked = dict(parse_qsl(back))
        found = None
        if asked.get("q"):
            answer = await self.pages.ask("memory.search", _search_params(asked))
            if answer.ok:
                found = next((r for r in answer.data["results"] if r["id"] == chunk_id), None)
        return self.pages.render(
            request,
            "forget.html",
            chunk_id=chunk_id,
            result=_shown(found) if found else None,
            back=back,
        )

    async def forget(self, request: Request) -> Response:
        fields = await form(request, self.pages.access)
        answer = await self.pages.ask("memory.forget", {"id": fields.get("id", "")})
        if not answer.ok:
            return self.pages.render(
                request,
                "forget.html",
                status_code=answer.status,
                chunk_id=fields.get("id", ""),
                result=None,
                back=_clean_back(fields.get("back", "")),
                notice=f"Not forgotten: {answer.error and answer.error.message}",
            )
        back = _clean_back(fields.get("back", ""))
        removed = answer.data["removed"]
        return RedirectResponse(f"/memory?{back}&forgot={removed}", status_code=303)


def _search_params(asked: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {"query": asked["q"], "k": 20}
    if asked.get("agent"):
        params["agent"] = [asked["agent"]]
    if asked.get("kind"):
        params["kind"] = [asked["kind"]]
    for name in ("speaker", "since", "until"):
        if asked.get(name):
            params[name] = asked[name]
    return params


def _shown(result: dict[str, Any]) -> dict[str, Any]:
    """A result as the page lists it, with the address of its surroundings when it has any."""
    source = result["source"]
    context = None
    if source["kind"] == "turns" and source.get("session_id") and source.get("entry_ids"):
        context = "/memory/context?" + urlencode(
            {
                "agent": source["agent_id"] or "",
                "session_id": source["session_id"],
                "entry_id": source["entry_ids"][0],
                "span": len(source["entry_ids"]),
            }
        )
    elif source.get("path") and source.get("line_start"):
        context = "/memory/context?" + urlencode(
            {
                "path": source["path"],
                "line_start": source["line_start"],
                "line_end": source.get("line_end") or source["line_start"],
            }
        )
    return {**result, "context_url": context}


def _clean_back(back: str) -> str:
    """Only the search's own fields go back into the address: never a place elsewhere."""
    return urlencode([(k, v) for k, v in parse_qsl(back) if k in FILTERS])


def _number(text: str | None, default: int) -> int:
    try:
        return max(1, min(50, int(text or default)))
    except ValueError:
        return default
