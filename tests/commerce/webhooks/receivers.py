"""Real HTTP receivers on 127.0.0.1 for the delivery tests: one that fails, then recovers, and
verifies every signature; one that accepts connections and never answers."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from beyondbank.commerce.webhooks import signing


class Receiver:
    """A partner's endpoint: answers 500 to its first `failures` requests, then 200, and keeps
    each message it accepted after checking its signature, deduping on `webhook-id` as the
    Standard Webhooks asks receivers to."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.secret = ""  # set once the endpoint is registered
        self.requests = 0
        self.accepted: Counter[str] = Counter()  # webhook-id → times answered 200
        self.applied: list[dict[str, Any]] = []  # what the receiver's application processed
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.url = ""

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests += 1
            if self.requests <= self.failures:
                return 500
            try:
                # The dispatcher signs with the time of its clock: check against that.
                msg_id = signing.verify(
                    self.secret, headers, body, now=int(headers["webhook-timestamp"])
                )
            except signing.WebhookVerificationError:
                self.bad_signatures += 1
                return 401
            if msg_id not in self.accepted:
                self.applied.append(json.loads(body))
            self.accepted[msg_id] += 1
            return 200


@contextmanager
def serving(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent() -> Iterator[str]:
    """A URL whose server accepts the connection (the kernel's backlog) and never replies."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    finally:
        sock.close()
