"""Security headers on every response: no sniffing, no foreign scripts or styles, and framing only
of the customer's pages, only by the bank's own app."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class SecurityHeaders:
    """No sniffing, no referrer to other sites, and on every page the CSP and no caching.

    Plain ASGI (see core.http.RequestIdMiddleware for why)."""

    def __init__(self, app: ASGIApp, embed_origins: Sequence[str]) -> None:
        self.app = app
        self.embed_origins = tuple(embed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if headers.get("content-type", "").startswith("text/html"):
                    policy = content_security_policy(path, self.embed_origins)
                    headers.setdefault("Content-Security-Policy", policy)
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
