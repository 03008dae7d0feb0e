"""The application factory: one FastAPI app serving the API under /api/v1 and the web pages."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from anyio import to_thread
from babel.dates import format_datetime
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.datastructures import State
from starlette.middleware.sessions import SessionMiddleware

from beyondbank import __version__, health
from beyondbank.alliance import api as alliance_api
from beyondbank.alliance.taxonomy import taxonomy
from beyondbank.benefits import api as benefits_api
from beyondbank.cards import api as cards_api
from beyondbank.cards import realtime
from beyondbank.commerce.catalog import api as catalog_api
from beyondbank.commerce.groupbuy import api as groupbuy_api
from beyondbank.commerce.orders import api as orders_api
from beyondbank.commerce.support import api as support_api
from beyondbank.commerce.webhooks import api as webhooks_api
from beyondbank.core.clock import Clock, SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.http import RequestIdMiddleware, install_problem_handlers
from beyondbank.core.i18n import LANGUAGES, catalog, format_locale
from beyondbank.core.money import Money
from beyondbank.core.settings import Settings, get_settings
from beyondbank.core.uow import make_session_factory
from beyondbank.identity import api as identity_api
from beyondbank.ledger import api as ledger_api
from beyondbank.payments import api as payments_api
from beyondbank.settlement import api as settlement_api
from beyondbank.web import brand as web_brand
from beyondbank.web import console as web_console
from beyondbank.web import customer as web_customer
from beyondbank.web import demo_bank as web_demo_bank
from beyondbank.web import merchant as web_merchant
from beyondbank.web import partner as web_partner
from beyondbank.web import routes as web_routes
from beyondbank.web import shop as web_shop
from beyondbank.web.i18n import LanguageMiddleware
from beyondbank.web.pages import login_redirect, problem_page, wants_html
from beyondbank.web.security import SecurityHeaders
from beyondbank.web.session import LoginRequired
from beyondbank.web.templating import STATIC_DIR, make_templates

API_PREFIX = "/api/v1"

DESCRIPTION = """
beyondbank's API. Errors are RFC 9457 problem details (`application/problem+json`).
Lists use cursor pagination: pass `next_cursor` back as `cursor`. Requests that move money
or redeem a benefit take an `Idempotency-Key` header.

Authentication: `Authorization: Bearer <token>`, from `POST /api/v1/auth/token` (staff and
merchant users), `POST /api/v1/oauth/token` (partner systems, client credentials) or
`POST /api/v1/sso/session` (customers, with the bank app's sign-on token).
"""


# Allocations between collections of the youngest generation (Python's default is 700): a page
# allocates thousands of short-lived objects, freed by reference counting anyway.
YOUNG_COLLECTION_THRESHOLD = 10_000


def freeze_startup_heap(app: FastAPI) -> None:
    """Keep the collector's full passes off what lives as long as the process.

    What the pages load on first use (every template compiled, both catalogs, Babel's locale
    data for money and dates, the taxonomy) is loaded now, then everything made so far is moved
    out of the collector's reach; otherwise each full collection walks it all again, which here
    paused a page for ~300 ms every few dozen requests. What the first requests build to keep
    (routes' dependants, compiled statements) is not frozen: the young generation is collected
    less often, so full passes over it are rare."""
    env = app.state.templates.env
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    for language in LANGUAGES:
        catalog(language)
        locale = format_locale(language)
        Money(100, "GBP").format(locale)
        format_datetime(moment, "medium", tzinfo=ZoneInfo("Europe/London"), locale=locale)
    taxonomy()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 10, 10)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.settings
    # Sync endpoints run on anyio's thread pool (40 threads by default): no more threads than
    # the connections they could hold, so that a burst queues for a thread rather than for a
    # connection, and no thread waits holding nothing.
    to_thread.current_default_thread_limiter().total_tokens = (
        settings.database_pool_size + settings.database_max_overflow
    )
    # A test suite starts an app per test: frozen, each would stay in memory for good.
    if app.state.settings.environment != "test":
        freeze_startup_heap(app)
    yield


def app_state(
    settings: Settings,
    *,
    engine: Engine,
    session_bind: object | None = None,
    clock: Clock | None = None,
    templates: Jinja2Templates | None = None,
) -> State:
    """What requests read from the app: settings, database, clock, templates and the caches
    that live as long as the app (the card switch's resolvers)."""
    return State(
        {
            "settings": settings,
            "engine": engine,
            "session_factory": make_session_factory(session_bind or engine),
            "clock": clock or SystemClock(),
            "templates": templates or make_templates(),
            "card_resolvers": realtime.ResolverCache(
                settings.cards_resolver_ttl_seconds, settings.cards_descriptor_threshold
            ),
        }
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    session_bind: object | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    # No interactive docs page: Swagger UI would load its scripts from a CDN, and nothing we
    # serve loads anything from another host. The OpenAPI document is served; docs/api.md guides.
    app = FastAPI(
        title="beyondbank",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state = app_state(settings, engine=engine, session_bind=session_bind, clock=clock)

    install_problem_handlers(app, html=(wants_html, problem_page))
    app.add_exception_handler(LoginRequired, login_redirect)
    # Innermost: the card switch's events are answered before the router (see the class); every
    # middleware added after it (security headers, request id, language, session) wraps it.
    app.add_middleware(cards_api.CardEventEdge, prefix=API_PREFIX)
    # Likewise the shop's checkout (see the class), beside it.
    app.add_middleware(orders_api.CheckoutEdge, prefix=API_PREFIX)
    app.add_middleware(SecurityHeaders, embed_origins=settings.embed_origins)
    app.add_middleware(RequestIdMiddleware)
    # Inside the session middleware: the viewer's chosen language is kept in the session.
    app.add_middleware(LanguageMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key.get_secret_value(),
        session_cookie="beyondbank_session",
        # Inside the bank's app the pages are a third party's frame: the cookie must be sent
        # cross-site, which browsers allow only for Secure cookies.
        same_site="none" if settings.embed_origins else "lax",
        https_only=settings.session_cookie_secure or bool(settings.embed_origins),
        max_age=8 * 3600,
    )

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(health.router)
    api.include_router(identity_api.router)
    api.include_router(alliance_api.router)
    api.include_router(benefits_api.router)
    api.include_router(ledger_api.router)
    api.include_router(payments_api.router)
    api.include_router(settlement_api.router)
    api.include_router(cards_api.router)
    api.include_router(catalog_api.router)
    api.include_router(groupbuy_api.router)
    api.include_router(orders_api.router)
    api.include_router(webhooks_api.router)
    api.include_router(support_api.router)
    app.include_router(api)
    app.include_router(web_routes.router)
    app.include_router(web_console.router)
    app.include_router(web_merchant.router)
    app.include_router(web_partner.router)
    app.include_router(web_customer.router)
    app.include_router(web_shop.router)
    app.include_router(web_demo_bank.router)
    app.include_router(web_brand.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
