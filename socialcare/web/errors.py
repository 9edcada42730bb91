"""Error answers: a page for a page, JSON {"detail": ...} for the API, whatever went wrong.

- HTTP errors (404, 405, 400...) and validation errors (422) keep FastAPI's JSON shapes on the
  API; a 422 names the field and the rule but echoes at most a short prefix of a scalar input
  (a 20 MB text must not come back as a 20 MB answer) and never a list or an object.
- A request body is read whole before the app sees it, up to MAX_BODY_BYTES (else 413), and a
  JSON body holding a lone UTF-16 surrogate ("\\ud800") is refused with a 422: such a string can
  be neither stored nor written back as UTF-8.
- An unknown path that ends with "/" whose slashless twin is a route is redirected with a
  relative Location (never to the Host header's site).
- An unexpected error is a 500 that says nothing of its cause (the log and Sentry have it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialcare.web.deps import templates

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
INPUT_PREFIX = 40  # characters of a refused value a 422 may show
MESSAGE_LIMIT = 300  # a message may quote the value too
SERVER_ERROR = "internal error: the server could not answer this request"
JSON_PREFIXES = ("/api/",)
JSON_PATHS = frozenset({"/metrics", "/healthz", "/readyz", "/openapi.json"})
BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
# A \uD800-\uDFFF escape in JSON text: a surrogate, paired or not (checked after parsing).
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
SURROGATE_MESSAGE = (
    "text may not contain a lone UTF-16 surrogate (such as \\ud800 without its pair): "
    "send UTF-8, or both halves of a pair"
)
# What an error page must carry even when it is written outside the middleware stack (500s).
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def wants_json(path: str) -> bool:
    """Whether an error on this path is answered as JSON (the API) rather than as a page."""
    return path.startswith(JSON_PREFIXES) or path in JSON_PATHS


def error_response(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """{"detail": message} for the API, the error page for a page."""
    if wants_json(request.url.path):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    context: dict[str, Any] = {"status": status, "message": message}
    return templates.TemplateResponse(
        request, "error.html", context, status_code=status, headers=headers
    )


def _printable(value: str) -> str:
    """value with any lone surrogate written as its escape, so it can be sent as UTF-8."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _clip(value: str, limit: int = INPUT_PREFIX) -> str:
    """At most limit characters of value (printable), marked with an ellipsis when cut."""
    return _printable(value if len(value) <= limit else value[: limit - 1] + "…")


def _loc_part(part: object) -> int | str:
    return part if isinstance(part, int) else _clip(str(part))


def public_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """A validation error's items as a client may see them: loc, msg, type, and the input only
    when it is a scalar (a string cut to its first INPUT_PREFIX characters)."""
    out: list[dict[str, Any]] = []
    for error in errors:
        item: dict[str, Any] = {
            "loc": [_loc_part(p) for p in error.get("loc", ())],
            "msg": _clip(str(error.get("msg", "")), MESSAGE_LIMIT),
            "type": str(error.get("type", "value_error")),
        }
        value = error.get("input")
        if isinstance(value, str):
            item["input"] = _clip(value)
        elif isinstance(value, bool | float) or (isinstance(value, int) and abs(value) < 2**64):
            item["input"] = value
        out.append(item)
    return out


def validation_error(request: Request, exc: Exception) -> Response:
    """422: the API's {"detail": [...]} without the bulk of the input, or the error page."""
    assert isinstance(exc, RequestValidationError)
    errors = public_errors(exc.errors())
    if wants_json(request.url.path):
        return JSONResponse({"detail": errors}, status_code=422)
    lines = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'input'}: {e['msg']}" for e in errors]
    return error_response(request, 422, "; ".join(lines))


def _slash_redirect(request: Request) -> Response | None:
    """A relative redirect from /path/ to /path when that is a route (else None)."""
    path = request.scope.get("path", "")
    if len(path) < 2 or not path.endswith("/"):
        return None
    target = path[:-1]
    if target.startswith(("//", "/\\")) or not target.startswith("/"):
        return None
    scope = {**request.scope, "path": target}
    if not any(route.matches(scope)[0] != Match.NONE for route in request.app.router.routes):
        return None
    location = quote(target, safe="/:@!$&'()*+,;=-._~")
    query = request.scope.get("query_string", b"")
    if query:
        location += "?" + query.decode("latin-1")
    return RedirectResponse(location, status_code=307)


def http_error(request: Request, exc: Exception) -> Response:
    """An HTTP error raised by a route or by routing itself (404, 405, 400...)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        redirect = _slash_redirect(request)
        if redirect is not None:
            return redirect
    headers = dict(exc.headers) if exc.headers else None
    if wants_json(request.url.path):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
    return error_response(request, exc.status_code, str(exc.detail), headers)


def server_error(request: Request, exc: Exception) -> Response:
    """500, without a word about the cause. Written outside the other middleware, so it sets the
    headers a page needs itself."""
    if wants_json(request.url.path):
        return JSONResponse({"detail": SERVER_ERROR}, status_code=500, headers=PAGE_HEADERS)
    try:
        return templates.TemplateResponse(
            request, "server_error.html", {}, status_code=500, headers=PAGE_HEADERS
        )
    except Exception:  # the page must not fail in its turn
        log.exception("could not render the error page")
        return HTMLResponse(
            "<!doctype html><title>500</title><p>Something went wrong.</p>",
            status_code=500,
            headers=PAGE_HEADERS,
        )


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, f"the request body is over {MAX_BODY_BYTES} bytes")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string in a parsed JSON value (keys included) holds a lone surrogate; walked
    with a stack, so nesting however deep cannot overflow."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def lone_surrogate_in(body: bytes) -> bool:
    """Whether body is JSON text holding a string with an unpaired surrogate."""
    if not SURROGATE_ESCAPE.search(body):
        return False
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (or too deep): the route refuses it
        return False
    return _has_lone_surrogate(parsed)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyGuardMiddleware:
    """Reads a request's body whole (at most MAX_BODY_BYTES, else 413) and refuses a JSON body
    with a lone surrogate (422), before the app sees either; then hands the body on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if scope["method"] in BODYLESS and not declared:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if declared is not None and declared > MAX_BODY_BYTES:
            await self._refuse(request, BodyTooLarge(), receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await self._refuse(request, BodyTooLarge(), receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if lone_surrogate_in(body):
            refusal = RequestValidationError(
                [{"loc": ("body",), "msg": SURROGATE_MESSAGE, "type": "value_error"}]
            )
            await validation_error(request, refusal)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(request: Request, exc: HTTPException, receive: Receive, send: Send) -> None:
        response = error_response(
            request, exc.status_code, str(exc.detail), {"Connection": "close"}
        )
        await response(request.scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the handlers above on app (a FastAPI app made with redirect_slashes=False; its
    middleware should include BodyGuardMiddleware)."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, server_error)
