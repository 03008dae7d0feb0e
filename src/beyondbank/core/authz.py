"""Authorisation, decided in one place: which role (or client scope) may do what, and whose objects it sees.

Roles hold permissions; partner API clients hold scopes, and a scope is the name of a
permission. A principal bound to an organisation (a merchant's users and clients) only ever
sees that organisation's objects: anything else answers 404, exactly as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from beyondbank.core.errors import Forbidden, NotFound, Unauthenticated
from beyondbank.core.i18n import _


class Role(StrEnum):
    BANK_ADMIN = "bank_admin"
    RELATIONSHIP_MANAGER = "relationship_manager"
    AUDITOR = "auditor"
    ANALYST = "analyst"
    MERCHANT_ADMIN = "merchant_admin"
    MERCHANT_STAFF = "merchant_staff"
    PARTNER_ADMIN = "partner_admin"  # an e-commerce partner's staff: its shop, orders, support
    PARTNER_STAFF = "partner_staff"
    CUSTOMER = "customer"


STAFF_ROLES = frozenset({Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER, Role.AUDITOR, Role.ANALYST})
MERCHANT_ROLES = frozenset({Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF})
PARTNER_ROLES = frozenset({Role.PARTNER_ADMIN, Role.PARTNER_STAFF})


class Permission(StrEnum):
    TAXONOMY_READ = "taxonomy:read"
    CIRCLES_READ = "circles:read"
    CIRCLES_WRITE = "circles:write"
    MERCHANTS_READ = "merchants:read"
    MERCHANTS_WRITE = "merchants:write"
    MERCHANTS_LIFECYCLE = "merchants:lifecycle"
    MERCHANT_CONTACTS_READ = "merchants:contacts"
    APPLICATIONS_READ = "applications:read"
    APPLICATIONS_CREATE = "applications:create"
    APPLICATIONS_DECIDE = "applications:decide"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    BENEFITS_READ = "benefits:read"
    BENEFITS_WRITE = "benefits:write"
    BENEFITS_APPROVE = "benefits:approve"
    REDEMPTIONS_READ = "redemptions:read"
    REDEMPTIONS_CREATE = "redemptions:create"
    REDEMPTIONS_REVERSE = "redemptions:reverse"
    RELATIONSHIP_READ = "relationship:read"
    RELATIONSHIP_WRITE = "relationship:write"
    RELATIONSHIP_ASSIGN = "relationship:assign"  # who manages which merchant: the programme's call
    AUDIT_READ = "audit:read"  # the audit trail of every change
    VISITS_READ = "visits:read"  # mystery-shopper visits (a merchant: its own results)
    VISITS_RECORD = "visits:record"  # record a visit made to a merchant: the auditors' one write
    VISITS_CLOSE = "visits:close"  # close a visit's corrective action (the merchant's manager)
    USERS_MANAGE = "users:manage"
    CLIENTS_MANAGE = "clients:manage"
    STATS_READ = "stats:read"
    LEDGER_READ = "ledger:read"
    LEDGER_WRITE = "ledger:write"  # manual journal entries, corrections, holds: finance only
    PAYMENTS_READ = "payments:read"
    PAYMENTS_CREATE = "payments:create"  # authorise, capture, void, refund through the bank core
    BANK_CORE_MANAGE = "bankcore:manage"  # deposit accounts: open, block, limits
    SETTLEMENT_READ = "settlement:read"
    SETTLEMENT_MANAGE = "settlement:manage"  # contracts, periods, closing, payouts
    CARDS_READ = "cards:read"  # card-linked runs and rewards (a merchant: its own rewards)
    CARDS_REVIEW = "cards:review"  # decide the descriptor review queue
    CARDS_INGEST = "cards:ingest"  # send card events in real time (the bank's card switch)
    SHOP_READ = "shop:read"  # the partner shop's catalog, prices and group buys
    CATALOG_WRITE = "catalog:write"  # a partner's products, feeds, stock and prices
    GROUPBUY_MANAGE = "groupbuy:manage"  # create, cancel and close group-buy campaigns
    ORDERS_READ = "orders:read"  # a customer: its own; a partner: orders placed with it
    ORDERS_CREATE = "orders:create"  # carts and checkout, as a customer
    ORDERS_FULFIL = "orders:fulfil"  # a partner moves its orders on: fulfilling, shipped, …
    SUPPORT_READ = "support:read"
    SUPPORT_WRITE = "support:write"  # open tickets and answer them
    WEBHOOKS_MANAGE = "webhooks:manage"  # a partner's webhook endpoints and their deliveries


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.BANK_ADMIN: frozenset(Permission),
    Role.RELATIONSHIP_MANAGER: frozenset(
        {
            P.TAXONOMY_READ,
            P.CIRCLES_READ,
            P.MERCHANTS_READ,
            P.MERCHANTS_WRITE,
            P.MERCHANTS_LIFECYCLE,
            P.MERCHANT_CONTACTS_READ,
            P.APPLICATIONS_READ,
            P.APPLICATIONS_CREATE,
            P.APPLICATIONS_DECIDE,
            P.BENEFITS_READ,
            P.REDEMPTIONS_READ,
            P.RELATIONSHIP_READ,
            P.RELATIONSHIP_WRITE,
            P.VISITS_READ,
            P.VISITS_CLOSE,
            P.STATS_READ,
            P.SETTLEMENT_READ,
            P.CARDS_READ,
            P.CARDS_REVIEW,
            P.SHOP_READ,
            P.ORDERS_READ,
            P.SUPPORT_READ,
            P.SUPPORT_WRITE,  # the bank may step into a customer's conversation with a partner
        }
    ),
    Role.AUDITOR: frozenset(
        {
            P.TAXONOMY_READ,
            P.CIRCLES_READ,
            P.MERCHANTS_READ,
            P.MERCHANT_CONTACTS_READ,
            P.APPLICATIONS_READ,
            P.BENEFITS_READ,
            P.REDEMPTIONS_READ,
            P.RELATIONSHIP_READ,
            P.AUDIT_READ,
            P.VISITS_READ,
            P.VISITS_RECORD,  # the auditor's one write: everything else stays read-only
            P.STATS_READ,
            P.LEDGER_READ,
            P.PAYMENTS_READ,
            P.SETTLEMENT_READ,
            P.CARDS_READ,
            P.SHOP_READ,
            P.ORDERS_READ,
            P.SUPPORT_READ,
        }
    ),
    # Analysts read aggregated and business data only: no people, no contacts, no audit trail.
    Role.ANALYST: frozenset(
        {
            P.TAXONOMY_READ,
            P.CIRCLES_READ,
            P.MERCHANTS_READ,
            P.BENEFITS_READ,
            P.STATS_READ,
            P.SHOP_READ,
        }
    ),
    # A merchant sees who its relationship manager is, not the manager's internal notes.
    Role.MERCHANT_ADMIN: frozenset(
        {
            P.TAXONOMY_READ,
            P.CIRCLES_READ,
            P.MERCHANTS_READ,
            P.MERCHANTS_WRITE,
            P.MERCHANT_CONTACTS_READ,
            P.APPLICATIONS_READ,
            P.APPLICATIONS_CREATE,
            P.BENEFITS_READ,
            P.BENEFITS_WRITE,
            P.REDEMPTIONS_READ,
            P.REDEMPTIONS_CREATE,
            P.REDEMPTIONS_REVERSE,
            P.USERS_MANAGE,
            P.SETTLEMENT_READ,  # its own statements only: the service scopes it
            P.CARDS_READ,  # its own card-linked rewards only
            P.VISITS_READ,  # its own visits' results only
        }
    ),
    Role.MERCHANT_STAFF: frozenset(
        {
            P.TAXONOMY_READ,
            P.MERCHANTS_READ,
            P.BENEFITS_READ,
            P.REDEMPTIONS_READ,
            P.REDEMPTIONS_CREATE,
            P.VISITS_READ,  # its own visits' results only
        }
    ),
    # A partner's people hold the shop's permissions only: nothing in the merchant areas, which
    # scope by merchant and would take an unbound principal for bank staff.
    Role.PARTNER_ADMIN: frozenset(
        {
            P.SHOP_READ,
            P.CATALOG_WRITE,
            P.GROUPBUY_MANAGE,
            P.ORDERS_READ,
            P.ORDERS_FULFIL,
            P.SUPPORT_READ,
            P.SUPPORT_WRITE,
            P.WEBHOOKS_MANAGE,
            P.SETTLEMENT_READ,  # its own commission statements only: the service scopes it
        }
    ),
    Role.PARTNER_STAFF: frozenset(
        {P.SHOP_READ, P.ORDERS_READ, P.ORDERS_FULFIL, P.SUPPORT_READ, P.SUPPORT_WRITE}
    ),
    # Customers act on their own membership; the service layer scopes them to themselves.
    Role.CUSTOMER: frozenset(
        {
            P.TAXONOMY_READ,
            P.BENEFITS_READ,
            P.SHOP_READ,
            P.ORDERS_READ,
            P.ORDERS_CREATE,
            P.SUPPORT_READ,
            P.SUPPORT_WRITE,
        }
    ),
}

# Scopes a partner API client may be granted (the bank's app backend, card feed, core system).
CLIENT_SCOPES: frozenset[Permission] = frozenset(
    {
        P.TAXONOMY_READ,
        P.CIRCLES_READ,
        P.MERCHANTS_READ,
        P.MEMBERS_READ,
        P.MEMBERS_WRITE,
        P.BENEFITS_READ,
        P.REDEMPTIONS_READ,
        P.REDEMPTIONS_CREATE,
        P.PAYMENTS_READ,
        P.PAYMENTS_CREATE,
        P.CARDS_INGEST,
        P.SHOP_READ,
        P.CATALOG_WRITE,
        P.GROUPBUY_MANAGE,
        P.ORDERS_READ,
        P.ORDERS_FULFIL,
        P.SUPPORT_READ,
        P.SUPPORT_WRITE,
    }
)
# What a partner-bound client may hold: its own shop's, and nothing a merchant scope guards.
PARTNER_CLIENT_SCOPES: frozenset[Permission] = frozenset(
    {
        P.SHOP_READ,
        P.CATALOG_WRITE,
        P.GROUPBUY_MANAGE,
        P.ORDERS_READ,
        P.ORDERS_FULFIL,
        P.SUPPORT_READ,
        P.SUPPORT_WRITE,
    }
)

PrincipalKind = Literal["user", "client", "customer", "system"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a staff or merchant user, a partner API client, a customer, or the system."""

    kind: PrincipalKind
    id: int
    public_id: str
    label: str
    role: Role | None = None
    merchant_id: int | None = None  # set for merchant users and merchant-bound clients
    partner_id: int | None = None  # set for a partner's users and clients
    customer_id: int | None = None
    scopes: frozenset[Permission] = field(default_factory=frozenset)

    @property
    def permissions(self) -> frozenset[Permission]:
        if self.kind == "system":
            return frozenset(Permission)
        if self.kind == "client":
            return self.scopes
        return ROLE_PERMISSIONS.get(self.role, frozenset()) if self.role else frozenset()

    @property
    def is_staff(self) -> bool:
        return self.kind == "user" and self.role in STAFF_ROLES

    @property
    def is_org_bound(self) -> bool:
        return self.merchant_id is not None or self.partner_id is not None


SYSTEM = Principal(kind="system", id=0, public_id="system", label="system")


def require(principal: Principal | None, permission: Permission) -> Principal:
    """The principal, if it holds the permission; 401 if nobody is signed in, 403 otherwise."""
    if principal is None:
        raise Unauthenticated(_("Sign in, or send a bearer token."))
    if permission not in principal.permissions:
        raise Forbidden(
            _("Your access does not include %(permission)s.", permission=permission.value)
        )
    return principal


def can(principal: Principal | None, permission: Permission) -> bool:
    return principal is not None and permission in principal.permissions


def ensure_visible(
    principal: Principal, merchant_id: int | None, kind: str, public_id: str
) -> None:
    """Another organisation's object answers 404, as if it did not exist (`kind` is marked with
    N_() by the caller and translated here)."""
    if principal.partner_id is not None or (
        principal.merchant_id is not None and principal.merchant_id != merchant_id
    ):
        raise NotFound(_("No %(kind)s %(public_id)r here.", kind=_(kind), public_id=public_id))


def ensure_partner_visible(
    principal: Principal, partner_id: int | None, kind: str, public_id: str
) -> None:
    """A partner's principal sees its own partner's objects only; others answer 404."""
    if principal.merchant_id is not None or (
        principal.partner_id is not None and principal.partner_id != partner_id
    ):
        raise NotFound(_("No %(kind)s %(public_id)r here.", kind=_(kind), public_id=public_id))
