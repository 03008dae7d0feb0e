"""Sign-in and access: password and client-credential tokens, SSO from the bank's app, users, clients."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jwt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from beyondbank.core import audit
from beyondbank.core.authz import (
    CLIENT_SCOPES,
    MERCHANT_ROLES,
    PARTNER_CLIENT_SCOPES,
    PARTNER_ROLES,
    STAFF_ROLES,
    Permission,
    Principal,
    Role,
)
from beyondbank.core.errors import Conflict, Forbidden, NotFound, Unauthenticated, invalid
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.models import SsoTokenUse
from beyondbank.core.passwords import check_password_strength, hash_password, verify_password
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import (
    issue_access_token,
    load_jwks,
    read_access_token,
    verify_sso_token,
)
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import ApiClient, Customer, User

# Verified when an email is unknown, so a missing account takes as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: tuple[str, ...] = ()


# -- principals ---------------------------------------------------------------------------


def principal_for_user(user: User) -> Principal:
    return Principal(
        kind="user",
        id=user.id,
        public_id=user.public_id,
        label=user.email,
        role=user.role,
        merchant_id=user.merchant_id,
        partner_id=user.partner_id,
    )


def principal_for_client(client: ApiClient, scopes: tuple[str, ...] | None = None) -> Principal:
    granted = scopes if scopes is not None else tuple(client.scopes)
    return Principal(
        kind="client",
        id=client.id,
        public_id=client.public_id,
        label=client.name,
        merchant_id=client.merchant_id,
        partner_id=client.partner_id,
        scopes=frozenset(Permission(s) for s in granted if s in client.scopes),
    )


def principal_for_customer(customer: Customer) -> Principal:
    return Principal(
        kind="customer",
        id=customer.id,
        public_id=customer.public_id,
        label=customer.name or customer.bank_ref,
        role=Role.CUSTOMER,
        customer_id=customer.id,
    )


def principal_from_access_token(uow: UnitOfWork, settings: Settings, token: str) -> Principal:
    """Who a bearer token speaks for, re-checked against the database (deactivation is immediate)."""
    claims = read_access_token(settings.secret_key.get_secret_value(), token, now=uow.clock.now())
    return principal_for(uow, claims.kind, claims.subject, claims.scopes)


def principal_for(
    uow: UnitOfWork, kind: str, public_id: str, scopes: tuple[str, ...] | None = None
) -> Principal:
    """The principal for a signed-in subject (from a token or a web session), if still allowed in."""
    session = uow.session
    if kind == "user":
        user = session.scalars(select(User).where(User.public_id == public_id)).one_or_none()
        if user is None or not user.active:
            raise Unauthenticated(_("This account is no longer active."))
        return principal_for_user(user)
    if kind == "client":
        client = session.scalars(
            select(ApiClient).where(ApiClient.public_id == public_id)
        ).one_or_none()
        if client is None or not client.active:
            raise Unauthenticated(_("This API client is no longer active."))
        return principal_for_client(client, scopes)
    if kind == "customer":
        customer = session.scalars(
            select(Customer).where(Customer.public_id == public_id)
        ).one_or_none()
        if customer is None:
            raise Unauthenticated(_("Unknown customer."))
        return principal_for_customer(customer)
    raise Unauthenticated(_("Unknown kind of principal."))


# -- users: password sign-in --------------------------------------------------------------


def authenticate_user(uow: UnitOfWork, email: str, password: str) -> User:
    user = uow.session.scalars(
        select(User).where(User.email == email.strip().lower())
    ).one_or_none()
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise Unauthenticated(_("The email or password is not right."))
    if not verify_password(user.password_hash, password) or not user.active:
        raise Unauthenticated(_("The email or password is not right."))
    user.last_login_at = uow.clock.now()
    uow.commit()
    return user


def issue_user_token(uow: UnitOfWork, settings: Settings, user: User) -> IssuedToken:
    ttl = settings.access_token_ttl_seconds
    token = issue_access_token(
        settings.secret_key.get_secret_value(),
        kind="user",
        subject=user.public_id,
        now=uow.clock.now(),
        ttl_seconds=ttl,
    )
    return IssuedToken(token, ttl)


def get_user(uow: UnitOfWork, public_id: str) -> User:
    user = uow.session.scalars(select(User).where(User.public_id == public_id)).one_or_none()
    if user is None:
        raise NotFound(_("No user %(public_id)r here.", public_id=public_id))
    return user


def users_with_role(uow: UnitOfWork, role: Role) -> list[User]:
    return list(
        uow.session.scalars(select(User).where(User.role == role, User.active).order_by(User.id))
    )


def create_user(
    uow: UnitOfWork,
    actor: Principal,
    *,
    email: str,
    name: str,
    role: Role,
    merchant_id: int | None,
    password: str,
    partner_id: int | None = None,
) -> User:
    """Staff create any user; a merchant admin creates users of its own merchant only."""
    if role == Role.CUSTOMER:
        raise invalid(
            "body.role", _("customers sign in through the bank's app, not with a password")
        )
    if role in MERCHANT_ROLES and merchant_id is None:
        raise invalid("body.merchant_id", _("merchant roles belong to a merchant"))
    if role not in MERCHANT_ROLES and merchant_id is not None:
        raise invalid("body.merchant_id", _("only merchant roles belong to a merchant"))
    if role in PARTNER_ROLES and partner_id is None:
        raise invalid("body.partner_id", _("partner roles belong to a partner"))
    if role not in PARTNER_ROLES and partner_id is not None:
        raise invalid("body.partner_id", _("only partner roles belong to a partner"))
    if actor.merchant_id is not None and (
        role not in MERCHANT_ROLES or merchant_id != actor.merchant_id
    ):
        raise Forbidden(_("A merchant admin creates users of its own merchant only."))
    if actor.partner_id is not None:
        raise Forbidden(_("A partner's users are created by the bank."))
    weakness = check_password_strength(password)
    if weakness:
        raise invalid("body.password", weakness)
    now = uow.clock.now()
    user = User(
        public_id=new_public_id("usr"),
        email=email.strip().lower(),
        name=name,
        role=role,
        merchant_id=merchant_id,
        partner_id=partner_id,
        password_hash=hash_password(password),
        active=True,
        created_at=now,
    )
    uow.session.add(user)
    try:
        uow.session.flush()
    except IntegrityError:
        uow.rollback()
        raise Conflict(
            _("A user with the email %(email)r exists already.", email=user.email)
        ) from None
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="user.created",
        object_type="user",
        object_id=user.public_id,
        after=audit.snapshot(user),
    )
    uow.commit()
    return user


def update_user(
    uow: UnitOfWork,
    actor: Principal,
    user: User,
    *,
    name: str | None,
    active: bool | None,
    role: Role | None = None,
) -> User:
    """Rename, deactivate or reactivate a user, or give them another role of the same kind (a
    bank role stays a bank role, a merchant's stays its merchant's); never one's own role or
    account, so nobody locks themselves out."""
    if actor.merchant_id is not None and user.merchant_id != actor.merchant_id:
        raise NotFound(_("No user %(public_id)r here.", public_id=user.public_id))
    if actor.kind == "user" and actor.id == user.id and active is False:
        raise Conflict(_("You cannot deactivate your own account."))
    if role is not None and role != user.role:
        _ensure_role_change(actor, user, role)
    before = audit.snapshot(user)
    if name is not None:
        user.name = name
    if active is not None:
        user.active = active
    if role is not None:
        user.role = role
    audit.record_changes(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action="user.updated",
        object_type="user",
        object_id=user.public_id,
        before=before,
        after=audit.snapshot(user),
    )
    uow.commit()
    return user


def _ensure_role_change(actor: Principal, user: User, role: Role) -> None:
    if actor.kind == "user" and actor.id == user.id:
        raise Conflict(_("You cannot change your own role."))
    for family in (STAFF_ROLES, MERCHANT_ROLES, PARTNER_ROLES):
        if user.role in family and role not in family:
            raise invalid(
                "body.role",
                _(
                    "a user keeps a role of the same kind: one of %(roles)s",
                    roles=", ".join(sorted(r.value for r in family)),
                ),
            )


# -- partner systems: OAuth2 client credentials ---------------------------------------------


def create_client(
    uow: UnitOfWork,
    actor: Principal,
    *,
    name: str,
    scopes: list[str],
    merchant_id: int | None,
    partner_id: int | None = None,
) -> tuple[ApiClient, str]:
    """A new client and its secret; the secret is shown once and only its hash is kept.

    A partner's client holds the shop's scopes only (`PARTNER_CLIENT_SCOPES`)."""
    if merchant_id is not None and partner_id is not None:
        raise invalid("body.partner_id", _("a client belongs to a merchant or a partner, not both"))
    grantable = PARTNER_CLIENT_SCOPES if partner_id is not None else CLIENT_SCOPES
    unknown = sorted(set(scopes) - {s.value for s in grantable})
    if unknown:
        raise invalid(
            "body.scopes",
            _("not grantable to this client: %(unknown)s", unknown=", ".join(unknown)),
        )
    secret = secrets.token_urlsafe(32)
    now = uow.clock.now()
    client = ApiClient(
        public_id=new_public_id("cli"),
        client_id=f"bbc_{secrets.token_hex(8)}",
        secret_hash=hash_password(secret),
        name=name,
        scopes=sorted(set(scopes)),
        merchant_id=merchant_id,
        partner_id=partner_id,
        active=True,
        created_at=now,
    )
    uow.session.add(client)
    uow.session.flush()
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="client.created",
        object_type="api_client",
        object_id=client.public_id,
        after=audit.snapshot(client),
    )
    uow.commit()
    return client, secret


def client_credentials_token(
    uow: UnitOfWork,
    settings: Settings,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None,
) -> IssuedToken:
    client = uow.session.scalars(
        select(ApiClient).where(ApiClient.client_id == client_id)
    ).one_or_none()
    if client is None:
        verify_password(_DUMMY_HASH, client_secret)
        raise Unauthenticated(_("The client credentials are not right."))
    if not verify_password(client.secret_hash, client_secret) or not client.active:
        raise Unauthenticated(_("The client credentials are not right."))
    requested = tuple(scope.split()) if scope else tuple(client.scopes)
    refused = sorted(set(requested) - set(client.scopes))
    if refused:
        raise Forbidden(
            _("This client may not ask for: %(refused)s.", refused=", ".join(refused)),
            extra={"error": "invalid_scope"},
        )
    now = uow.clock.now()
    client.last_used_at = now
    uow.commit()
    ttl = settings.access_token_ttl_seconds
    token = issue_access_token(
        settings.secret_key.get_secret_value(),
        kind="client",
        subject=client.public_id,
        now=now,
        ttl_seconds=ttl,
        scopes=requested,
    )
    return IssuedToken(token, ttl, requested)


# -- customers: single sign-on from the bank's app -------------------------------------------


@lru_cache(maxsize=8)
def _bank_keys(path: Path, _mtime: float) -> jwt.PyJWKSet:
    return load_jwks(path)


def bank_keys(settings: Settings) -> jwt.PyJWKSet:
    path = settings.sso_public_keys_file
    return _bank_keys(path, path.stat().st_mtime)


def sso_sign_in(uow: UnitOfWork, settings: Settings, token: str) -> tuple[Customer, IssuedToken]:
    """Verify the bank's token, refuse a replayed one, and sign the customer in (no second login)."""
    now = uow.clock.now()
    claims = verify_sso_token(
        token,
        keys=bank_keys(settings),
        issuer=settings.sso_issuer,
        audience=settings.sso_audience,
        algorithms=settings.sso_algorithms,
        now=now,
        leeway_seconds=settings.sso_leeway_seconds,
        max_lifetime_seconds=settings.sso_max_lifetime_seconds,
    )
    session = uow.session
    session.add(
        SsoTokenUse(
            issuer=settings.sso_issuer,
            jti=claims.jti,
            subject=claims.subject,
            used_at=now,
            expires_at=claims.expires_at,
        )
    )
    try:
        session.flush()
    except IntegrityError:
        uow.rollback()
        raise Unauthenticated(_("This sign-on token was used already.")) from None
    customer = session.scalars(
        select(Customer).where(Customer.bank_ref == claims.subject)
    ).one_or_none()
    if customer is None:
        customer = Customer(public_id=new_public_id("cus"), bank_ref=claims.subject, created_at=now)
        session.add(customer)
    customer.name = claims.name or customer.name
    customer.email = claims.email or customer.email
    customer.locale = claims.locale or customer.locale
    customer.last_seen_at = now
    uow.commit()
    ttl = settings.access_token_ttl_seconds
    access = issue_access_token(
        settings.secret_key.get_secret_value(),
        kind="customer",
        subject=customer.public_id,
        now=now,
        ttl_seconds=ttl,
    )
    return customer, IssuedToken(access, ttl)


def get_customer(uow: UnitOfWork, customer_id: int) -> Customer:
    return uow.session.get_one(Customer, customer_id)


def users_by_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in uow.session.scalars(select(User).where(User.id.in_(ids)))}


def customers_by_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, Customer]:
    if not ids:
        return {}
    return {c.id: c for c in uow.session.scalars(select(Customer).where(Customer.id.in_(ids)))}


def bank_refs_by_ids(uow: UnitOfWork, customer_ids: set[int]) -> dict[int, str]:
    """The bank's reference for each customer id."""
    if not customer_ids:
        return {}
    rows = uow.session.execute(
        select(Customer.id, Customer.bank_ref).where(Customer.id.in_(customer_ids))
    )
    return {row.id: row.bank_ref for row in rows}


def customer_ids_by_bank_refs(uow: UnitOfWork, bank_refs: Iterable[str]) -> dict[str, int]:
    """Customer ids for those of the bank references that are registered."""
    wanted = set(bank_refs)
    if not wanted:
        return {}
    rows = uow.session.execute(
        select(Customer.bank_ref, Customer.id).where(Customer.bank_ref.in_(wanted))
    )
    return {row.bank_ref: row.id for row in rows}


def customer_by_public_id(uow: UnitOfWork, public_id: str) -> Customer | None:
    return uow.session.scalars(
        select(Customer).where(Customer.public_id == public_id)
    ).one_or_none()


def customer_by_bank_ref(uow: UnitOfWork, bank_ref: str) -> Customer | None:
    return uow.session.scalars(select(Customer).where(Customer.bank_ref == bank_ref)).one_or_none()


def register_customer(uow: UnitOfWork, bank_ref: str) -> Customer:
    """The customer with this bank reference, registered now if the bank names one who has not
    signed in yet. Safe against a concurrent registration (sign-on or enrolment)."""
    existing = customer_by_bank_ref(uow, bank_ref)
    if existing is not None:
        return existing
    customer = Customer(
        public_id=new_public_id("cus"), bank_ref=bank_ref, created_at=uow.clock.now()
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(customer)
    except IntegrityError:
        registered = customer_by_bank_ref(uow, bank_ref)
        if registered is None:
            raise
        return registered
    return customer


# -- the console's list of users -------------------------------------------------------------------


def list_users(
    uow: UnitOfWork,
    actor: Principal,
    *,
    role: Role | None = None,
    active: bool | None = None,
    cursor: str | None = None,
    limit: int,
) -> tuple[list[User], str | None]:
    """Users in sign-up order, by role and status; a merchant admin sees its own merchant's only."""
    from beyondbank.core.pagination import paginate

    stmt = select(User)
    if actor.merchant_id is not None:
        stmt = stmt.where(User.merchant_id == actor.merchant_id)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.active == active)
    rows, next_cursor = paginate(uow.session, stmt, User.id, cursor=cursor, limit=limit)
    return list(rows), next_cursor
