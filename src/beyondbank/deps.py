"""FastAPI dependencies every router shares: the unit of work, settings, clock and the principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request

from beyondbank.core.authz import Permission, Principal, require
from beyondbank.core.clock import Clock
from beyondbank.core.errors import Unauthenticated
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_uow(request: Request) -> Iterator[UnitOfWork]:
    with UnitOfWork(request.app.state.session_factory, request.app.state.clock) as uow:
        yield uow


SettingsDep = Annotated[Settings, Depends(get_settings)]
UoW = Annotated[UnitOfWork, Depends(get_uow)]


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Send the access token as `Authorization: Bearer <token>`.")
    return token.strip()


def get_principal(
    uow: UoW,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal | None:
    """The caller named by the bearer token; None when anonymous.

    The API takes bearer tokens only (never the web session's cookie), so it needs no CSRF guard.
    """
    token = _bearer(authorization)
    if token is None:
        return None
    # A short transaction of its own, so that no lock is held while the endpoint runs.
    with uow.fresh() as own:
        return identity.principal_from_access_token(own, settings, token)


MaybePrincipal = Annotated[Principal | None, Depends(get_principal)]


def requires(permission: Permission) -> Callable[[Principal | None], Principal]:
    def dependency(principal: MaybePrincipal) -> Principal:
        return require(principal, permission)

    return dependency


def signed_in(principal: MaybePrincipal) -> Principal:
    if principal is None:
        raise Unauthenticated("Sign in, or send a bearer token.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(signed_in)]


def idempotency_key(
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> str | None:
    return idempotency_key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]
