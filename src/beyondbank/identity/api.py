"""Sign-in endpoints (password, client credentials, SSO) and user and API client administration."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Header, Query
from sqlalchemy import select

from beyondbank.alliance import service as alliance
from beyondbank.commerce import service as commerce
from beyondbank.core import audit
from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import Unauthenticated, invalid
from beyondbank.core.i18n import _
from beyondbank.core.pagination import DEFAULT_LIMIT, Page, paginate
from beyondbank.deps import CurrentPrincipal, SettingsDep, UoW, requires
from beyondbank.identity import schemas, service
from beyondbank.identity.models import ApiClient, User

router = APIRouter(tags=["identity"])

Admin = Annotated[Principal, Depends(requires(Permission.USERS_MANAGE))]
ClientAdmin = Annotated[Principal, Depends(requires(Permission.CLIENTS_MANAGE))]


@router.post("/auth/token", response_model=schemas.TokenOut, summary="Sign in with a password")
def password_token(
    body: schemas.PasswordLogin, uow: UoW, settings: SettingsDep
) -> schemas.TokenOut:
    user = service.authenticate_user(uow, body.email, body.password)
    issued = service.issue_user_token(uow, settings, user)
    return schemas.TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post(
    "/oauth/token",
    response_model=schemas.TokenOut,
    summary="OAuth2 client credentials grant for partner systems",
)
def oauth_token(
    uow: UoW,
    settings: SettingsDep,
    grant_type: Annotated[str, Form()],
    scope: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> schemas.TokenOut:
    if grant_type != "client_credentials":
        raise Unauthenticated(
            _("Only the client_credentials grant is offered."),
            extra={"error": "unsupported_grant_type"},
        )
    if authorization and authorization.lower().startswith("basic "):
        client_id, client_secret = _basic_credentials(authorization)
    if not client_id or not client_secret:
        raise Unauthenticated(
            _("Send client_id and client_secret (form or HTTP Basic)."),
            extra={"error": "invalid_client"},
        )
    issued = service.client_credentials_token(
        uow, settings, client_id=client_id, client_secret=client_secret, scope=scope
    )
    return schemas.TokenOut(
        access_token=issued.access_token, expires_in=issued.expires_in, scope=" ".join(issued.scope)
    )


def _basic_credentials(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated(
            _("Malformed HTTP Basic credentials."), extra={"error": "invalid_client"}
        ) from None
    client_id, _colon, secret = decoded.partition(":")
    return client_id, secret


@router.post(
    "/sso/session",
    response_model=schemas.TokenOut,
    summary="Exchange the bank app's single-sign-on token for a customer access token",
)
def sso_session(body: schemas.SsoExchange, uow: UoW, settings: SettingsDep) -> schemas.TokenOut:
    _principal, issued = service.sso_sign_in(uow, settings, body.token)
    return schemas.TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get("/me", response_model=schemas.MeOut, summary="Who the token speaks for")
def me(principal: CurrentPrincipal, uow: UoW) -> schemas.MeOut:
    return schemas.MeOut(
        kind=principal.kind,
        id=principal.public_id,
        label=principal.label,
        role=principal.role.value if principal.role else None,
        merchant_id=_merchant_ref(uow, principal.merchant_id),
        partner_id=_partner_ref(uow, principal.partner_id),
        permissions=sorted(p.value for p in principal.permissions),
    )


@router.get("/users", response_model=Page[schemas.UserOut])
def list_users(
    uow: UoW,
    actor: Admin,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = DEFAULT_LIMIT,
    role: str | None = None,
    active: bool | None = None,
) -> Page[schemas.UserOut]:
    stmt = select(User)
    if actor.merchant_id is not None:
        stmt = stmt.where(User.merchant_id == actor.merchant_id)
    if role:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.active == active)
    rows, next_cursor = paginate(uow.session, stmt, User.id, cursor=cursor, limit=limit)
    refs = alliance.merchant_public_ids(uow, {u.merchant_id for u in rows if u.merchant_id})
    return Page(items=[_user_out(u, refs, uow) for u in rows], next_cursor=next_cursor)


@router.post("/users", response_model=schemas.UserOut, status_code=201)
def create_user(body: schemas.UserIn, uow: UoW, actor: Admin) -> schemas.UserOut:
    merchant_id = _merchant_id(uow, actor, body.merchant_id)
    user = service.create_user(
        uow,
        actor,
        email=body.email,
        name=body.name,
        role=body.role,
        merchant_id=merchant_id,
        partner_id=_partner_id(uow, body.partner_id),
        password=body.password,
    )
    return _user_out(user, alliance.merchant_public_ids(uow, {user.merchant_id or 0}), uow)


@router.patch("/users/{user_id}", response_model=schemas.UserOut)
def update_user(user_id: str, body: schemas.UserPatch, uow: UoW, actor: Admin) -> schemas.UserOut:
    user = service.get_user(uow, user_id)
    user = service.update_user(uow, actor, user, name=body.name, active=body.active, role=body.role)
    return _user_out(user, alliance.merchant_public_ids(uow, {user.merchant_id or 0}), uow)


@router.get("/clients", response_model=Page[schemas.ApiClientOut])
def list_clients(
    uow: UoW,
    actor: ClientAdmin,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = DEFAULT_LIMIT,
) -> Page[schemas.ApiClientOut]:
    rows, next_cursor = paginate(
        uow.session, select(ApiClient), ApiClient.id, cursor=cursor, limit=limit
    )
    refs = alliance.merchant_public_ids(uow, {c.merchant_id for c in rows if c.merchant_id})
    return Page(items=[_client_out(c, refs, uow) for c in rows], next_cursor=next_cursor)


@router.post("/clients", response_model=schemas.ApiClientCreated, status_code=201)
def create_client(
    body: schemas.ApiClientIn, uow: UoW, actor: ClientAdmin
) -> schemas.ApiClientCreated:
    merchant_id = _merchant_id(uow, actor, body.merchant_id)
    client, secret = service.create_client(
        uow,
        actor,
        name=body.name,
        scopes=body.scopes,
        merchant_id=merchant_id,
        partner_id=_partner_id(uow, body.partner_id),
    )
    out = _client_out(client, alliance.merchant_public_ids(uow, {client.merchant_id or 0}), uow)
    return schemas.ApiClientCreated(**out.model_dump(), client_secret=secret)


def _merchant_id(uow: UoW, actor: Principal, public_id: str | None) -> int | None:
    if public_id is None:
        return None
    return alliance.get_merchant(uow, actor, public_id, field="body.merchant_id").id


def _merchant_ref(uow: UoW, merchant_id: int | None) -> str | None:
    if merchant_id is None:
        return None
    return alliance.merchant_public_ids(uow, {merchant_id}).get(merchant_id)


def _partner_id(uow: UoW, public_id: str | None) -> int | None:
    if public_id is None:
        return None
    return commerce.get_partner(uow, public_id, field="body.partner_id").id


def _partner_ref(uow: UoW, partner_id: int | None) -> str | None:
    return commerce.partner_public_ids(uow, {partner_id}).get(partner_id) if partner_id else None


def _user_out(user: User, merchant_refs: dict[int, str], uow: UoW) -> schemas.UserOut:
    return schemas.UserOut(
        id=user.public_id,
        email=user.email,
        name=user.name,
        role=user.role,
        merchant_id=merchant_refs.get(user.merchant_id) if user.merchant_id else None,
        partner_id=_partner_ref(uow, user.partner_id),
        active=user.active,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def _client_out(client: ApiClient, merchant_refs: dict[int, str], uow: UoW) -> schemas.ApiClientOut:
    return schemas.ApiClientOut(
        id=client.public_id,
        client_id=client.client_id,
        name=client.name,
        scopes=client.scopes,
        merchant_id=merchant_refs.get(client.merchant_id) if client.merchant_id else None,
        partner_id=_partner_ref(uow, client.partner_id),
        active=client.active,
        created_at=client.created_at,
    )


@router.get(
    "/audit-events",
    response_model=Page[schemas.AuditEventOut],
    summary="The audit trail: who changed what, when, before and after (newest first)",
)
def audit_events(
    uow: UoW,
    _auditor: Annotated[Principal, Depends(requires(Permission.AUDIT_READ))],
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = DEFAULT_LIMIT,
    actor_id: str | None = None,
    actor_type: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[schemas.AuditEventOut]:
    filters = audit.TrailFilter(
        actor_id=actor_id,
        actor_type=actor_type,
        object_type=object_type,
        object_id=object_id,
        action=action,
        since=_aware(since, "query.since"),
        until=_aware(until, "query.until"),
    )
    rows, next_cursor = audit.trail(uow.session, filters, cursor=cursor, limit=limit)
    return Page(
        items=[schemas.AuditEventOut.model_validate(e) for e in rows], next_cursor=next_cursor
    )


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid(field, _("give a time zone, e.g. 2026-11-22T10:00:00Z"))
    return value
