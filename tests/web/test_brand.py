"""The white label and embedding in the bank's app: the bank's colours and logo, served from this
host; customer pages framed only by the bank's configured origins; staff pages never framed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Connection, Engine

from beyondbank.api import create_app
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings, contrast_ratio
from beyondbank.web.security import content_security_policy

BANK_APP = "https://app.thames-harbour.example"


def _client(
    settings: Settings, engine: Engine, connection: Connection, clock: FixedClock, **changes: object
) -> TestClient:
    configured = settings.model_copy(update=changes)
    app = create_app(configured, engine=engine, session_bind=connection, clock=clock)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def embedded(
    settings: Settings, engine: Engine, connection: Connection, clock: FixedClock
) -> Iterator[TestClient]:
    with _client(settings, engine, connection, clock, embed_origins=[BANK_APP]) as client:
        yield client


def test_the_theme_carries_the_banks_colours(
    settings: Settings, engine: Engine, connection: Connection, clock: FixedClock
) -> None:
    with _client(
        settings, engine, connection, clock, brand_colour="#7a0019", accent_colour="#005a9c"
    ) as client:
        css = client.get("/brand/theme.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert "--brand: #7a0019;" in css.text
        assert "--accent: #005a9c;" in css.text
        page = client.get("/login")
        assert '<link rel="stylesheet" href="/brand/theme.css">' in page.text
        assert 'src="/brand/logo"' in page.text


def test_the_logo_is_the_banks_file_or_its_initials(
    settings: Settings, engine: Engine, connection: Connection, clock: FixedClock, tmp_path: Path
) -> None:
    with _client(settings, engine, connection, clock) as client:
        mark = client.get("/brand/logo")
        assert mark.headers["content-type"] == "image/svg+xml"
        assert ">TH</text>" in mark.text  # Thames & Harbour Bank
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>')
    with _client(settings, engine, connection, clock, brand_logo_file=logo) as client:
        assert client.get("/brand/logo").text == logo.read_text()


def test_customer_pages_may_be_framed_by_the_bank_app_only(embedded: TestClient) -> None:
    sso = embedded.get("/sso")  # refused without a token, but still a page of the bank's app
    assert f"frame-ancestors {BANK_APP}" in sso.headers["content-security-policy"]
    for staff_page in ("/login", "/console"):
        response = embedded.get(staff_page)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_without_configured_origins_nothing_is_framed(client: TestClient) -> None:
    assert "frame-ancestors 'none'" in client.get("/sso").headers["content-security-policy"]


def test_embeddable_means_the_customer_areas_and_nothing_that_merely_starts_alike() -> None:
    assert content_security_policy("/shop/products", [BANK_APP]).endswith(
        f"frame-ancestors {BANK_APP}"
    )
    assert content_security_policy("/shopping", [BANK_APP]).endswith("frame-ancestors 'none'")


def test_a_session_set_inside_the_bank_app_is_samesite_none_and_secure(
    embedded: TestClient,
) -> None:
    page = embedded.get("/login")  # a form page starts a session for its CSRF token
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("beyondbank_session=")
    assert "samesite=none" in cookie.lower()
    assert "secure" in cookie.lower()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("brand_colour", "red", "#rrggbb"),
        ("brand_colour", "#dddddd", "contrast"),  # white ink on light grey: unreadable
        ("embed_origins", ["https://app.example/path"], "not an origin"),
        ("embed_origins", ["javascript:alert(1)"], "not an origin"),
    ],
)
def test_settings_refuse_an_illegible_or_malformed_brand(
    field: str, value: object, reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        Settings.model_validate({field: value})


def test_production_embeds_only_over_https() -> None:
    with pytest.raises(ValidationError, match="https in production"):
        Settings(
            environment="production",
            secret_key="a-real-secret-0123456789abcdef0123456789",
            database_url="postgresql+psycopg://db/bank",
            sso_public_keys_file=Path("/etc/bank/keys.json"),
            embed_origins=["http://app.example"],
        )


def test_contrast_ratio_is_wcags() -> None:
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
