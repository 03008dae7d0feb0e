"""Security headers on every response: no sniffing, no foreign scripts or styles, and framing only
of the customer's pages, only by the bank's own app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import Request, Response

# Everything a page needs is served from this host; inline scripts and styles are not allowed.
BASE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)
CONTENT_SECURITY_POLICY = f"{BASE_POLICY}; frame-ancestors 'none'"
# The pages a customer sees inside the bank's app: the sign-on landing, the membership app and
# the shop. Staff and merchant pages are never framed (clickjacking).
EMBEDDABLE_PREFIXES = ("/sso", "/app", "/shop")


def embeddable(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in EMBEDDABLE_PREFIXES)


def content_security_policy(path: str, embed_origins: Sequence[str]) -> str:
    if embed_origins and embeddable(path):
        return f"{BASE_POLICY}; frame-ancestors {' '.join(embed_origins)}"
    return CONTENT_SECURITY_POLICY


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.headers.get("content-type", "").startswith("text/html"):
        origins = request.app.state.settings.embed_origins
        policy = content_security_policy(request.url.path, origins)
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("Cache-Control", "no-store")
    return response
