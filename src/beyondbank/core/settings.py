"""Process settings, read from `BEYONDBANK_*` environment variables (and an optional `.env`)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DEMO_KEYS_DIR = PACKAGE_DIR / "demo" / "keys"
# Known development values: production refuses to start with them.
DEVELOPMENT_SECRET = "development-only-secret-change-me-0123456789abcdef"  # noqa: S105
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?")


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.1 contrast ratio of two `#rrggbb` colours (1 to 21)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEYONDBANK_", env_file=".env", extra="ignore")

    environment: Literal["development", "demo", "test", "production"] = "development"
    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{(Path.cwd() / 'var' / 'beyondbank.db').as_posix()}"
    )
    # Database connections a server process keeps open, and how many more a burst may open
    # for a while. Requests are served by at most their sum of threads at once (`api.lifespan`):
    # a thread with no connection to take would only wait. None more by default: a connection
    # opened for a burst and closed after it costs a new backend (its caches and plans built
    # again) at the next, which under a steady load near the pool's size is every few seconds.
    database_pool_size: int = Field(default=20, ge=1)
    database_max_overflow: int = Field(default=0, ge=0)
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    # Where the shared public data sets (MCC list, online retail history) live.
    data_dir: Path = Path("../shared/data")

    bank_name: str = "Thames & Harbour Bank"
    default_currency: str = "GBP"
    default_timezone: str = "Europe/London"

    # Single sign-on from the bank's app: tokens signed by the bank, verified with its keys.
    sso_issuer: str = "https://app.thames-harbour.example"
    sso_audience: str = "beyondbank"
    sso_public_keys_file: Path = DEMO_KEYS_DIR / "bank_app_sso.jwks.json"
    sso_algorithms: list[str] = ["RS256", "ES256"]
    sso_leeway_seconds: int = 30
    sso_max_lifetime_seconds: int = 600

    # Card-linked runs: rows matched per committed chunk (500k keeps a 10M-row file under 2 GiB;
    # docs/benchmarks.md), where quarantine and rewards files go, and the fuzzy descriptor score
    # (0–1) at or above which a descriptor resolves unreviewed.
    cards_chunk_rows: int = 500_000
    cards_output_dir: Path = Path("var/cards")
    cards_descriptor_threshold: float | None = None  # None: the resolver's measured default
    cards_resolver_ttl_seconds: float = 60.0  # how stale the real-time path's resolver may be

    # White label: the bank's colours and logo in every page, served from this host. Colours are
    # `#rrggbb`; the ink must read on the brand colour (WCAG AA, 4.5:1), which startup checks.
    brand_colour: str = "#0b4f6c"
    brand_ink_colour: str = "#ffffff"
    accent_colour: str = "#c8553d"
    brand_logo_file: Path | None = None  # SVG or PNG; none: a mark drawn from the bank's initials
    # Origins of the bank's app that may embed the customer pages (iframe or webview), e.g.
    # `https://app.thames-harbour.example`. Empty: no framing at all.
    embed_origins: list[str] = []

    # Partner shop: how long stock is held for an order waiting for the bank's authorisation.
    # At least a minute (the bank must have time to answer), at most two hours (held stock is
    # stock nobody else can buy; a longer hold would let abandoned orders empty a flash sale).
    shop_reservation_minutes: int = Field(default=15, ge=1, le=120)
    # Partner webhooks: after a secret is rotated, how long deliveries are still signed with the
    # old secret too (both signatures), so the partner can switch its receivers without losing
    # an event. At most a week: an old secret must not live on; a rotation may ask for less.
    shop_webhook_secret_grace_hours: int = Field(default=24, ge=0, le=168)

    access_token_ttl_seconds: int = 3600
    idempotency_in_flight_seconds: int = 120
    session_cookie_secure: bool = False

    @field_validator("brand_colour", "brand_ink_colour", "accent_colour")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        if not HEX_COLOUR.fullmatch(value):
            raise ValueError(f"{value!r} is not a colour of the form #rrggbb")
        return value.lower()

    @field_validator("brand_logo_file")
    @classmethod
    def _logo(cls, value: Path | None) -> Path | None:
        if value is not None and (
            value.suffix.lower() not in {".svg", ".png"} or not value.is_file()
        ):
            raise ValueError(f"{value} is not an SVG or PNG file")
        return value

    @field_validator("embed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not ORIGIN.fullmatch(v)]
        if bad:
            raise ValueError(f"not an origin (scheme://host[:port], nothing after): {bad}")
        return values

    @model_validator(mode="after")
    def _brand_is_legible(self) -> Settings:
        ratio = contrast_ratio(self.brand_colour, self.brand_ink_colour)
        if ratio < 4.5:
            raise ValueError(
                f"brand_ink_colour on brand_colour has a contrast of {ratio:.2f}:1; "
                "WCAG AA needs 4.5:1"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production":
            if self.secret_key.get_secret_value() == DEVELOPMENT_SECRET:
                raise ValueError("BEYONDBANK_SECRET_KEY must be set in production")
            if self.sso_public_keys_file.resolve().is_relative_to(DEMO_KEYS_DIR):
                raise ValueError("BEYONDBANK_SSO_PUBLIC_KEYS_FILE must name the bank's keys")
            if self.database_url.startswith("sqlite"):
                raise ValueError("production runs on PostgreSQL, not SQLite")
            plain = [o for o in self.embed_origins if not o.startswith("https://")]
            if plain:
                raise ValueError(f"embedding origins must be https in production: {plain}")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
