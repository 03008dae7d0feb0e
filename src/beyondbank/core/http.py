"""HTTP edges shared by every router: problem-details responses and request ids."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


async def request_id_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    incoming = request.headers.get("X-Request-ID", "")
    request.state.request_id = (
        incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else secrets.token_hex(8)
    )
    response = await call_next(request)
    response.headers["X-Request-ID"] = request.state.request_id
    return response
