"""HTTP edges shared by every router: problem-details responses and request ids."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beyondbank.core.errors import PROBLEM_MEDIA_TYPE, FieldError, InvalidInput, Problem

log = logging.getLogger("beyondbank")

_HTTP_SLUGS = {
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict with the current state"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
    return JSONResponse(
        problem.as_dict(instance=request.url.path),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validation_problem(exc: RequestValidationError) -> InvalidInput:
    errors = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        errors.append(FieldError(field_path(loc), message))
    names = ", ".join(sorted({e.field for e in errors}))
    return InvalidInput(f"Some fields are not valid: {names}.", errors=tuple(errors))


HtmlProblems = tuple[Callable[[Request], bool], Callable[[Request, Problem], Response]]


def install_problem_handlers(app: FastAPI, html: HtmlProblems | None = None) -> None:
    """Problems answer as problem+json; for pages (when `html` says so) as a rendered page."""

    def answer(request: Request, problem: Problem) -> Response:
        if html is not None and html[0](request):
            return html[1](request, problem)
        return problem_response(problem, request)

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return answer(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return answer(request, validation_problem(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        problem = Problem(str(exc.detail))
        problem.status = exc.status_code
        problem.slug, problem.title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        response = answer(request, problem)
        for name, value in (getattr(exc, "headers", None) or {}).items():
            response.headers[name] = value
        return response

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {
            "type": "/problems/internal-error",
            "title": "Internal error",
            "status": 500,
            "detail": "Something went wrong on our side; nothing was changed. "
            f"Quote request id {request.state.request_id} to support.",
            "instance": request.url.path,
        }
        return JSONResponse(body, status_code=500, media_type=PROBLEM_MEDIA_TYPE)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def attachment(body: bytes, media_type: str, filename: str) -> Response:
    """A file the browser saves rather than shows."""
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class RequestIdMiddleware:
    """Every request has an id: the caller's `X-Request-ID` when sane, else a fresh one; it is
    on `request.state.request_id` and answered in the response's header.

    Plain ASGI rather than Starlette's `BaseHTTPMiddleware`, which costs a task and a stream
    per request on the hot paths (checkout, card events)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        sane = 0 < len(incoming) <= 64 and incoming.isprintable()
        request_id = incoming if sane else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


# -- edges: hot endpoints answered in front of the router (plain ASGI) -----------------------


def is_json(content_type: str) -> bool:
    """`application/json`, with or without parameters (`; charset=utf-8`)."""
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


async def read_body(receive: Receive) -> bytes | None:
    """The request's whole body; None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the application the body an edge already read, then listens to
    the connection as before (for its disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
