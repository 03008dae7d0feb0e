"""Process settings, read from `BEYONDBANK_*` environment variables (and an optional `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DEMO_KEYS_DIR = PACKAGE_DIR / "demo" / "keys"
# Known development values: production refuses to start with them.
DEVELOPMENT_SECRET = "development-only-secret-change-me-0123456789abcdef"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEYONDBANK_", env_file=".env", extra="ignore")

    environment: Literal["development", "demo", "test", "production"] = "development"
    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{(Path.cwd() / 'var' / 'beyondbank.db').as_posix()}"
    )
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

    # Card-linked runs: rows matched per committed chunk, where quarantine and rewards files go,
    # and the fuzzy descriptor score (0–1) at or above which a descriptor resolves unreviewed.
    cards_chunk_rows: int = 1_000_000
    cards_output_dir: Path = Path("var/cards")
    cards_descriptor_threshold: float | None = None  # None: the resolver's measured default
    cards_resolver_ttl_seconds: float = 60.0  # how stale the real-time path's resolver may be

    access_token_ttl_seconds: int = 3600
    idempotency_in_flight_seconds: int = 120
    session_cookie_secure: bool = False

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production":
            if self.secret_key.get_secret_value() == DEVELOPMENT_SECRET:
                raise ValueError("BEYONDBANK_SECRET_KEY must be set in production")
            if self.sso_public_keys_file.resolve().is_relative_to(DEMO_KEYS_DIR):
                raise ValueError("BEYONDBANK_SSO_PUBLIC_KEYS_FILE must name the bank's keys")
            if self.database_url.startswith("sqlite"):
                raise ValueError("production runs on PostgreSQL, not SQLite")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
