"""Catalog endpoints under /shop: a partner's feed imports, stock and prices (catalog:write), and
the customer-facing catalog of products on sale now (shop:read).

A partner's users and clients act for their own partner only; bank staff name the partner with
`?partner=`. A product is named by its id (`prd_…`) or, for a partner, by its sku.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from beyondbank.commerce.catalog import schemas, service
from beyondbank.commerce.catalog.feed import FeedFormat, sniff_format
from beyondbank.commerce.service import partner_public_ids
from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import InvalidInput, invalid
from beyondbank.core.i18n import _
from beyondbank.core.money import Money
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.deps import UoW, requires

router = APIRouter(prefix="/shop", tags=["shop: catalog"])

Writer = Annotated[Principal, Depends(requires(Permission.CATALOG_WRITE))]
Reader = Annotated[Principal, Depends(requires(Permission.SHOP_READ))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
PartnerRef = Annotated[
    str | None,
    Query(max_length=40, description="The partner (prt_…); a partner's own principal may omit it"),
]

MAX_FEED_BYTES = 100 * 1024 * 1024
_SPOOL_IN_MEMORY = 1024 * 1024  # bigger uploads go to a temporary file, never all in memory

_WRITE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such product or import, or another partner's"},
    409: {"description": "Stock below what orders hold reserved (`stock_reserved` says how many)"},
    422: {"description": "Invalid fields, e.g. a price with a third decimal for GBP"},
}


class _Upload:
    """The request body spooled to memory or disk, with the format its Content-Type names."""

    def __init__(self, stream: IO[bytes], fmt: FeedFormat) -> None:
        self.stream = stream
        self.format = fmt


async def _feed_body(request: Request) -> AsyncIterator[_Upload]:
    fmt = sniff_format(request.headers.get("content-type"))
    if fmt is None:
        raise invalid(
            "header.Content-Type",
            _("send the feed as text/csv, application/json or application/x-ndjson"),
        )
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FEED_BYTES:
                raise invalid(
                    "body", _("larger than %(mib)s MiB", mib=MAX_FEED_BYTES // (1024 * 1024))
                )
            spool.write(chunk)
        if size == 0:
            raise invalid("body", _("the feed is empty"))
        spool.seek(0)
        yield _Upload(spool, fmt)


Upload = Annotated[_Upload, Depends(_feed_body)]


# -- imports -----------------------------------------------------------------------------------


@router.post(
    "/catalog/imports",
    response_model=schemas.ImportResultOut,
    status_code=201,
    summary="Import a catalog feed (CSV, JSON Lines or a JSON array, by Content-Type)",
    responses=_WRITE_PROBLEMS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
)
def post_import(
    uow: UoW,
    actor: Writer,
    upload: Upload,
    partner: PartnerRef = None,
    source: Annotated[str, Query(max_length=200, description="A name for the feed")] = "api",
) -> schemas.ImportResultOut:
    owner = service.acting_partner(uow, actor, partner)
    job = service.import_feed(
        uow, actor, owner, upload.stream, upload.format, source=f"api:{source}"
    )
    rejects, _next = service.import_rejects(uow, job, cursor=None, limit=20)
    out = schemas.ImportOut.of(job, owner.public_id)
    return schemas.ImportResultOut(
        **out.model_dump(), first_rejects=[schemas.RejectOut.of(r) for r in rejects]
    )


@router.get(
    "/catalog/imports",
    response_model=Page[schemas.ImportOut],
    summary="Catalog imports, newest first (a partner: its own)",
)
def list_imports(
    uow: UoW,
    actor: Writer,
    partner: PartnerRef = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.ImportOut]:
    partner_id = service.visible_partner_filter(uow, actor, partner)
    jobs, next_cursor = service.list_imports(uow, partner_id, cursor=cursor, limit=limit)
    names = partner_public_ids(uow, {j.partner_id for j in jobs})
    return Page(
        items=[schemas.ImportOut.of(j, names[j.partner_id]) for j in jobs],
        next_cursor=next_cursor,
    )


@router.get(
    "/catalog/imports/{import_id}",
    response_model=schemas.ImportDetailOut,
    response_model_by_alias=True,
    summary="One import with its rejected rows, a page at a time",
    responses=_WRITE_PROBLEMS,
)
def get_import(
    import_id: str,
    uow: UoW,
    actor: Writer,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> schemas.ImportDetailOut:
    job = service.get_import(uow, actor, import_id)
    rejects, next_cursor = service.import_rejects(uow, job, cursor=cursor, limit=limit)
    names = partner_public_ids(uow, {job.partner_id})
    return schemas.ImportDetailOut(
        catalog_import=schemas.ImportOut.of(job, names[job.partner_id]),
        rejects=[schemas.RejectOut.of(r) for r in rejects],
        next_cursor=next_cursor,
    )


# -- stock and prices --------------------------------------------------------------------------


@router.patch(
    "/products/{product_ref}/stock",
    response_model=schemas.StockOut,
    summary="Set a product's units on hand (never below those reserved by orders)",
    responses=_WRITE_PROBLEMS,
)
def patch_stock(
    product_ref: str,
    body: schemas.StockIn,
    uow: UoW,
    actor: Writer,
    partner: PartnerRef = None,
) -> schemas.StockOut:
    product = service.product_for(uow, actor, product_ref, partner)
    return schemas.StockOut.of(service.set_stock(uow, actor, product, body.stock_on_hand))


@router.put(
    "/products/{product_ref}/prices",
    response_model=schemas.ProductPricesOut,
    summary="Add a price period: public and bank-client price from valid_from (default now)",
    responses=_WRITE_PROBLEMS,
)
def put_price(
    product_ref: str,
    body: schemas.PriceIn,
    uow: UoW,
    actor: Writer,
    partner: PartnerRef = None,
) -> schemas.ProductPricesOut:
    product = service.product_for(uow, actor, product_ref, partner)
    errors = []
    amounts: dict[str, int] = {}
    for name in ("public_price", "client_price"):
        try:
            amounts[name] = Money.parse(getattr(body, name), product.currency).amount
        except ValueError as exc:
            errors.append(invalid(f"body.{name}", str(exc)).errors[0])
    if errors:
        raise InvalidInput(_("The price cannot be set as it stands."), errors=errors)
    periods = service.add_price(
        uow,
        actor,
        product,
        service.PriceIn(
            public_minor=amounts["public_price"],
            client_minor=amounts["client_price"],
            valid_from=body.valid_from,
            valid_to=body.valid_to,
        ),
        names=("public_price", "client_price"),
    )
    return schemas.ProductPricesOut(
        id=product.public_id,
        sku=product.sku,
        currency=product.currency,
        prices=[schemas.PricePeriodOut.of(p) for p in periods],
    )


# -- the customer-facing catalog -----------------------------------------------------------------


@router.get(
    "/products",
    response_model=Page[schemas.OfferOut],
    summary="Products on sale now, with public and bank-client prices; search and filter",
)
def list_products(
    uow: UoW,
    actor: Reader,
    q: Annotated[
        str | None, Query(max_length=100, description="Words in title or description")
    ] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    partner: PartnerRef = None,
    in_stock: Annotated[bool, Query(description="Only products that can be bought now")] = False,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.OfferOut]:
    partner_id = service.visible_partner_filter(uow, actor, partner)
    offers, next_cursor = service.search_offers(
        uow,
        uow.clock.now(),
        text=q,
        category=category,
        partner_id=partner_id,
        in_stock=in_stock,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=[schemas.OfferOut.of(o) for o in offers], next_cursor=next_cursor)


@router.get(
    "/products/{product_id}",
    response_model=schemas.OfferOut,
    summary="One product on sale now (withdrawn or unpriced answers 404)",
    responses={404: {"description": "No such product on sale, or another partner's"}},
)
def get_product(product_id: str, uow: UoW, actor: Reader) -> schemas.OfferOut:
    return schemas.OfferOut.of(service.get_offer(uow, actor, product_id, uow.clock.now()))


@router.get(
    "/categories",
    response_model=list[schemas.CategoryOut],
    summary="Categories with the number of products on sale now in each",
)
def list_categories(
    uow: UoW, actor: Reader, partner: PartnerRef = None
) -> list[schemas.CategoryOut]:
    partner_id = service.visible_partner_filter(uow, actor, partner)
    return [
        schemas.CategoryOut(name=name, products=count)
        for name, count in service.categories(uow, uow.clock.now(), partner_id)
    ]
