"""One error handler: our errors carry their status; the answer is JSON or HTML by route/Accept."""

from __future__ import annotations

import http
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from archive.errors import ArchiveError, StorageError, TooManyRequests

log = logging.getLogger("archive.web")

TITLES = {
    400: "Bad request", 401: "Please sign in", 403: "Not allowed", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "File too large", 415: "Unsupported file",
    422: "Cannot accept this", 429: "Too many attempts", 500: "Something went wrong",
    503: "Storage unavailable",
}
# A storage error's own message names the endpoint, bucket or key: for the log, not the public.
STORAGE_UNAVAILABLE = "Storage is unavailable; please try again shortly."


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )


def render_error(request: Request, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message, "status": status}, status, headers=headers)
    templates = getattr(request.app.state, "templates", None)
    title = TITLES.get(status, "Error")
    if templates is None:
        return HTMLResponse(f"<h1>{title}</h1>", status, headers=headers)
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "title": title, "message": message},
        status_code=status, headers=headers,
    )


async def archive_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ArchiveError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    if exc.status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
    message = STORAGE_UNAVAILABLE if isinstance(exc, StorageError) else exc.message
    return render_error(request, exc.status, message, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    generic = {TITLES.get(exc.status_code, ""), http.HTTPStatus(exc.status_code).phrase}
    message = exc.detail if exc.detail and exc.detail not in generic else ""
    return render_error(request, exc.status_code, message or _default_message(exc.status_code),
                        dict(exc.headers) if exc.headers else None)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render_error(request, 500, "Something went wrong on our side; it has been logged.")


def _default_message(status: int) -> str:
    return {
        404: "There is nothing at this address.",
        405: "This address does not accept that kind of request.",
    }.get(status, TITLES.get(status, "Error"))


def handlers() -> dict[Any, Any]:
    return {ArchiveError: archive_error, HTTPException: http_error, 500: server_error}
