"""Request ids: the caller's when sane, a fresh one otherwise, answered on every response."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_sane_request_id_is_kept_and_answered(client: TestClient) -> None:
    response = client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_an_unusable_request_id_is_replaced(client: TestClient) -> None:
    for bad in ("x" * 65, ""):
        response = client.get("/api/v1/health", headers={"X-Request-ID": bad})
        answered = response.headers["X-Request-ID"]
        assert answered != bad
        assert len(answered) == 16
        int(answered, 16)  # a fresh random id, in hex


def test_each_request_gets_its_own_id_and_the_security_headers(client: TestClient) -> None:
    first, second = client.get("/login"), client.get("/login")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in first.headers["Content-Security-Policy"]
    # JSON answers are not pages: no CSP, but still no sniffing.
    api = client.get("/api/v1/health")
    assert "Content-Security-Policy" not in api.headers
    assert api.headers["X-Content-Type-Options"] == "nosniff"
