"""Catalog use cases: pricing a product now, looking products up (for the checkout), feeds, stock."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from sqlalchemy import ColumnElement, Select, func, insert, or_, select, update

from beyondbank.commerce.catalog import retail
from beyondbank.commerce.catalog.feed import (
    FeedFormat,
    FeedRow,
    Record,
    RowProblem,
    check,
    read_records,
    sha256_of,
)
from beyondbank.commerce.models import (
    CatalogImport,
    CatalogReject,
    ImportStatus,
    Partner,
    PartnerStatus,
    Product,
    ProductPrice,
    ProductStatus,
)
from beyondbank.commerce.service import get_partner
from beyondbank.core import audit
from beyondbank.core.authz import Principal, ensure_partner_visible
from beyondbank.core.errors import Conflict, FieldError, InvalidInput, NotFound, invalid
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import MAX_LIMIT, decode_cursor, encode_cursor, paginate
from beyondbank.core.uow import UnitOfWork


class NotForSale(Conflict):
    """The product cannot be bought now: withdrawn, or no price period covers the instant (409:
    it is the product's current state, not the request, that is in the way)."""

    slug = "not-for-sale"
    title = "The product is not for sale"


def _price_covering(at: datetime) -> ColumnElement[bool]:
    return (ProductPrice.valid_from <= at) & or_(
        ProductPrice.valid_to.is_(None), ProductPrice.valid_to > at
    )


def price_now(uow: UnitOfWork, product: Product, at: datetime) -> tuple[int, int]:
    """(public_minor, client_minor) of the product at `at`; NotForSale if withdrawn or unpriced."""
    if product.status != ProductStatus.ACTIVE:
        raise NotForSale(
            _(
                "Product %(public_id)r is %(status)s: not for sale.",
                public_id=product.public_id,
                status=product.status.value,
            ),
            extra={"product_id": product.public_id, "reason": "withdrawn"},
        )
    row = uow.session.execute(
        select(ProductPrice.public_minor, ProductPrice.client_minor)
        .where(ProductPrice.product_id == product.id, _price_covering(at))
        # Periods of one product do not overlap when written through this service; should a
        # hand-made one overlap, the latest start wins, as the newest decision.
        .order_by(ProductPrice.valid_from.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotForSale(
            _(
                "Product %(public_id)r has no price valid at %(at)s.",
                public_id=product.public_id,
                at=at.isoformat(),
            ),
            extra={"product_id": product.public_id, "reason": "no_price"},
        )
    return int(row.public_minor), int(row.client_minor)


def prices_now(
    uow: UnitOfWork, product_ids: Iterable[int], at: datetime
) -> dict[int, tuple[int, int]]:
    """(public_minor, client_minor) at `at` for each product id that has a price then, in one query.

    Withdrawn products are not filtered here: callers check `status` (or use `price_now`).
    """
    ids = set(product_ids)
    if not ids:
        return {}
    rows = uow.session.execute(
        select(
            ProductPrice.product_id,
            ProductPrice.public_minor,
            ProductPrice.client_minor,
        )
        .where(ProductPrice.product_id.in_(ids), _price_covering(at))
        .order_by(ProductPrice.product_id, ProductPrice.valid_from)
    ).all()
    # Ordered by start, so the latest covering period of each product is the one kept.
    return {int(r.product_id): (int(r.public_minor), int(r.client_minor)) for r in rows}


def products_by_ids(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, Product]:
    """The products with these internal ids, keyed by id; ids that name no product are absent."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = uow.session.scalars(select(Product).where(Product.id.in_(wanted))).all()
    return {p.id: p for p in rows}


# -- whose catalog -------------------------------------------------------------------------------


def acting_partner(uow: UnitOfWork, actor: Principal, partner_ref: str | None) -> Partner:
    """The partner a catalog change is for: a partner's own principal acts for its partner only
    (naming another answers 404); bank staff and the bank's own clients must name one."""
    if actor.partner_id is not None:
        own = uow.session.get(Partner, actor.partner_id)
        if own is None or (partner_ref is not None and partner_ref != own.public_id):
            raise NotFound(_("No partner %(public_id)r here.", public_id=partner_ref or ""))
        return own
    if actor.merchant_id is not None:
        raise NotFound(_("No partner %(public_id)r here.", public_id=partner_ref or ""))
    if partner_ref is None:
        raise invalid("query.partner", _("required: the partner whose catalog this is"))
    return get_partner(uow, partner_ref)


def visible_partner_filter(
    uow: UnitOfWork, actor: Principal, partner_ref: str | None
) -> int | None:
    """For reads: the partner id to filter on (a partner's principal: always its own), or None."""
    if actor.partner_id is not None:
        return acting_partner(uow, actor, partner_ref).id
    if partner_ref is None:
        return None
    return get_partner(uow, partner_ref).id


def stock_levels(
    uow: UnitOfWork,
    actor: Principal,
    *,
    partner_ref: str | None = None,
    low_at: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[Product], str | None]:
    """The partner's products with their stock (on hand, reserved by orders), every status, by
    id; `low_at`: only those with at most that many units free to sell."""
    stmt = select(Product).where(Product.partner_id == acting_partner(uow, actor, partner_ref).id)
    if low_at is not None:
        stmt = stmt.where(Product.stock_on_hand - Product.stock_reserved <= low_at)
    return paginate(uow.session, stmt, Product.id, cursor=cursor, limit=limit)


def product_for(uow: UnitOfWork, actor: Principal, ref: str, partner_ref: str | None) -> Product:
    """A product by public id (`prd_…`) or by the partner's sku; another partner's is a 404."""
    if ref.startswith("prd_"):
        product = uow.session.scalars(select(Product).where(Product.public_id == ref)).one_or_none()
    else:
        partner = acting_partner(uow, actor, partner_ref)
        product = uow.session.scalars(
            select(Product).where(Product.partner_id == partner.id, Product.sku == ref)
        ).one_or_none()
    if product is None:
        raise NotFound(_("No product %(public_id)r here.", public_id=ref))
    ensure_partner_visible(actor, product.partner_id, "product", ref)
    return product


# -- prices ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceIn:
    public_minor: int
    client_minor: int
    valid_from: datetime | None = None  # None: from now
    valid_to: datetime | None = None  # None: open-ended


def check_price(
    price: PriceIn,
    now: datetime,
    prefix: str = "body",
    names: tuple[str, str] = ("public_minor", "client_minor"),
) -> tuple[datetime, datetime | None]:
    """The period the price will cover, or a 422 naming the field; writes nothing."""
    errors: list[FieldError] = []
    public_field, client_field = (f"{prefix}.{name}" for name in names)
    if price.public_minor <= 0:
        errors.append(FieldError(public_field, _("must be positive")))
    if price.client_minor <= 0:
        errors.append(FieldError(client_field, _("must be positive")))
    elif price.client_minor >= price.public_minor:
        errors.append(
            FieldError(client_field, _("the bank-client price must be below the public price"))
        )
    start = price.valid_from or now
    if price.valid_to is not None and price.valid_to <= start:
        errors.append(FieldError(f"{prefix}.valid_to", _("must be after valid_from (or now)")))
    if errors:
        raise InvalidInput(_("The price cannot be set as it stands."), errors=errors)
    return start, price.valid_to


def _apply_price(
    uow: UnitOfWork,
    product_id: int,
    public_minor: int,
    client_minor: int,
    start: datetime,
    end: datetime | None,
) -> bool:
    """Make [start, end) carry this price, keeping the product's periods from overlapping.

    The period covering `start` is cut at `start` (or, if it starts exactly then, rewritten)
    and, if it went on past `end`, resumes at `end`; periods that start later stay, and the new
    one stops at the next one's start. True if anything changed: the same price over the same
    period is left alone.
    """
    periods = uow.session.scalars(
        select(ProductPrice)
        .where(ProductPrice.product_id == product_id)
        .order_by(ProductPrice.valid_from)
        .with_for_update()
    ).all()
    covering = next(
        (
            p
            for p in reversed(periods)
            if p.valid_from <= start and (p.valid_to is None or p.valid_to > start)
        ),
        None,
    )
    later = [p.valid_from for p in periods if p.valid_from > start]
    if later and (end is None or end > later[0]):
        end = later[0]
    if (
        covering is not None
        and (covering.public_minor, covering.client_minor) == (public_minor, client_minor)
        and covering.valid_to == end
    ):
        return False
    now = uow.clock.now()

    def period(public: int, client: int, begins: datetime, ends: datetime | None) -> None:
        uow.session.add(
            ProductPrice(
                public_id=new_public_id("prc"),
                product_id=product_id,
                public_minor=public,
                client_minor=client,
                valid_from=begins,
                valid_to=ends,
                created_at=now,
            )
        )

    if covering is None:
        period(public_minor, client_minor, start, end)
        return True
    old = (covering.public_minor, covering.client_minor, covering.valid_to)
    if covering.valid_from == start:
        covering.public_minor, covering.client_minor, covering.valid_to = (
            public_minor,
            client_minor,
            end,
        )
    else:
        covering.valid_to = start
        period(public_minor, client_minor, start, end)
    # A bounded period inside a longer one (a sale): the old price resumes where it ends.
    if end is not None and (old[2] is None or old[2] > end):
        uow.session.flush()  # the rows above first: (product, valid_from) is unique
        period(old[0], old[1], end, old[2])
    return True


def add_price(
    uow: UnitOfWork,
    actor: Principal,
    product: Product,
    price: PriceIn,
    *,
    names: tuple[str, str] = ("public_minor", "client_minor"),
) -> list[ProductPrice]:
    """Set the product's price for a period (from now if no start); answers all its periods.
    `names` are the request's fields for the two prices, for the 422's field errors."""
    now = uow.clock.now()
    start, end = check_price(price, now, names=names)
    before = _periods(uow, product.id)
    before_snapshot = [audit.snapshot(p) for p in before]
    changed = _apply_price(uow, product.id, price.public_minor, price.client_minor, start, end)
    uow.session.flush()
    after = _periods(uow, product.id)
    if changed:
        product.updated_at = now
        audit.record(
            uow.session,
            actor=actor,
            at=now,
            action="shop.product.priced",
            object_type="product",
            object_id=product.public_id,
            before={"prices": before_snapshot},
            after={"prices": [audit.snapshot(p) for p in after]},
        )
    uow.commit()
    return list(after)


def _periods(uow: UnitOfWork, product_id: int) -> list[ProductPrice]:
    return list(
        uow.session.scalars(
            select(ProductPrice)
            .where(ProductPrice.product_id == product_id)
            .order_by(ProductPrice.valid_from)
        ).all()
    )


def price_periods(uow: UnitOfWork, product_id: int) -> list[ProductPrice]:
    """A product's price periods, oldest first."""
    return _periods(uow, product_id)


# -- stock -------------------------------------------------------------------------------------


def set_stock(uow: UnitOfWork, actor: Principal, product: Product, on_hand: int) -> Product:
    """Set the units on hand; never below what orders hold reserved (409 saying how many)."""
    if on_hand < 0:
        raise invalid("body.stock_on_hand", _("must not be negative"))
    now = uow.clock.now()
    before = product.stock_on_hand
    # The condition is the guarantee: a reservation committed between our read and this write
    # makes it match nothing rather than push on_hand below reserved.
    done = uow.session.execute(
        update(Product)
        .where(Product.id == product.id, Product.stock_reserved <= on_hand)
        .values(stock_on_hand=on_hand, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        reserved = uow.session.scalar(
            select(Product.stock_reserved).where(Product.id == product.id)
        )
        uow.rollback()
        raise Conflict(
            _(
                "%(reserved)s unit(s) of %(sku)r are reserved by orders: stock on hand cannot "
                "go below %(reserved)s.",
                reserved=reserved,
                sku=product.sku,
            ),
            extra={"stock_reserved": reserved, "requested": on_hand},
        )
    uow.session.refresh(product)
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="shop.product.stock_set",
        object_type="product",
        object_id=product.public_id,
        before={"stock_on_hand": before},
        after={"stock_on_hand": on_hand},
    )
    uow.commit()
    return product


# -- feed imports ------------------------------------------------------------------------------

CHUNK_ROWS = 500  # rows per committed transaction: a big feed never holds one long transaction


@dataclass
class _Counts:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


def import_feed(
    uow: UnitOfWork,
    actor: Principal,
    partner: Partner,
    stream: IO[bytes],
    fmt: FeedFormat | Literal["retail"],
    *,
    source: str,
    rows: Iterable[Record] | None = None,
    progress: Callable[[int], None] | None = None,
) -> CatalogImport:
    """Import a catalog feed, chunk by chunk, and answer the import with its counts.

    `stream` is read once for its sha256 and once for its records (it must be seekable);
    `rows`, if given, replaces the parse of `stream` (the Online Retail adapter derives its
    rows). Each chunk commits, so a very large feed holds no long transaction; re-running a
    feed that stopped half-way is safe, as every row already applied is then `unchanged`.
    """
    now = uow.clock.now()
    job = CatalogImport(
        public_id=new_public_id("cim"),
        partner_id=partner.id,
        source=source[:300],
        format=fmt,
        sha256=sha256_of(stream),
        status=ImportStatus.RUNNING,
        started_at=now,
        finished_at=None,
        requested_by=actor.public_id[:40],
    )
    uow.session.add(job)
    uow.commit()
    counts = _Counts()
    first_line: dict[str, int] = {}  # sku → the line that carried it first in this feed
    if rows is not None:
        records: Iterable[Record] = rows
    elif fmt == "retail":
        raise ValueError("an Online Retail import derives its rows: use import_online_retail")
    else:
        records = read_records(stream, fmt)
    try:
        for chunk in _chunks(records, CHUNK_ROWS):
            _import_chunk(uow, job, partner, chunk, counts, first_line)
            _store_counts(job, counts)
            uow.commit()
            if progress is not None:
                progress(counts.read)
    except Exception:
        uow.rollback()
        job = uow.session.get(CatalogImport, job.id) or job
        job.status = ImportStatus.FAILED
        job.finished_at = uow.clock.now()
        uow.commit()
        raise
    job.status = ImportStatus.COMPLETED
    job.finished_at = uow.clock.now()
    audit.record(
        uow.session,
        actor=actor,
        at=job.finished_at,
        action="shop.catalog.imported",
        object_type="catalog_import",
        object_id=job.public_id,
        after={
            "partner": partner.public_id,
            "source": job.source,
            "sha256": job.sha256,
            "rows_read": job.rows_read,
            "created": job.created,
            "updated": job.updated,
            "unchanged": job.unchanged,
            "rejected": job.rejected,
        },
    )
    uow.commit()
    return job


def _store_counts(job: CatalogImport, counts: _Counts) -> None:
    job.rows_read = counts.read
    job.created = counts.created
    job.updated = counts.updated
    job.unchanged = counts.unchanged
    job.rejected = counts.rejected


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _import_chunk(
    uow: UnitOfWork,
    job: CatalogImport,
    partner: Partner,
    records: list[Record],
    counts: _Counts,
    first_line: dict[str, int],
) -> None:
    now = uow.clock.now()
    rejects: list[dict[str, Any]] = []

    def reject(line: int, field: str | None, reason: str, raw: str) -> None:
        rejects.append(
            {"import_id": job.id, "line": line, "field": field, "reason": reason, "raw": raw}
        )
        counts.rejected += 1

    # Two imports for one partner at once would both see a new sku as absent and both insert
    # it: the partner's row, locked for the chunk's short transaction, takes them in turn.
    uow.session.execute(select(Partner.id).where(Partner.id == partner.id).with_for_update())
    good: list[FeedRow] = []
    for record in records:
        counts.read += 1
        row = check(record, partner.currency)
        if isinstance(row, RowProblem):
            reject(row.line, row.field, row.reason, row.raw)
            continue
        if row.valid_to is not None and row.valid_from is None and row.valid_to <= now:
            reject(row.line, "valid_to", "is already past: the price would never apply", record.raw)
            continue
        seen = first_line.get(row.sku)
        if seen is not None:
            # The first row for a sku wins; a second one is a mistake in the feed, not an update.
            reject(
                row.line, "sku", f"duplicate sku in this feed (first on line {seen})", record.raw
            )
            continue
        first_line[row.sku] = row.line
        good.append(row)

    existing = (
        {
            p.sku: p
            for p in uow.session.scalars(
                select(Product).where(
                    Product.partner_id == partner.id, Product.sku.in_([r.sku for r in good])
                )
            )
        }
        if good
        else {}
    )
    new_products: list[tuple[Product, FeedRow]] = []
    for row in good:
        fingerprint = row.fingerprint
        product = existing.get(row.sku)
        if product is None:
            product = Product(
                public_id=new_public_id("prd"),
                partner_id=partner.id,
                sku=row.sku,
                title=row.title,
                description=row.description,
                category=row.category,
                currency=row.currency,
                image_url=row.image_url,
                status=row.status,
                stock_on_hand=row.stock,
                stock_reserved=0,
                feed_fingerprint=fingerprint,
                created_at=now,
                updated_at=now,
            )
            uow.session.add(product)
            new_products.append((product, row))
            counts.created += 1
            continue
        if product.feed_fingerprint == fingerprint:
            counts.unchanged += 1
            continue
        # One conditional UPDATE: stock never below what orders hold, whatever ran meanwhile.
        done = uow.session.execute(
            update(Product)
            .where(Product.id == product.id, Product.stock_reserved <= row.stock)
            .values(
                title=row.title,
                description=row.description,
                category=row.category,
                image_url=row.image_url,
                status=row.status,
                stock_on_hand=row.stock,
                feed_fingerprint=fingerprint,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            reject(
                row.line,
                "stock",
                f"{row.stock} is below the {product.stock_reserved} unit(s) reserved by orders",
                _raw_of(records, row.line),
            )
            continue
        _apply_price(
            uow, product.id, row.public_minor, row.client_minor, row.valid_from or now, row.valid_to
        )
        counts.updated += 1
    if new_products:
        uow.session.flush()  # the new products' ids, for their first prices
        uow.session.add_all(
            ProductPrice(
                public_id=new_public_id("prc"),
                product_id=product.id,
                public_minor=row.public_minor,
                client_minor=row.client_minor,
                valid_from=row.valid_from or now,
                valid_to=row.valid_to,
                created_at=now,
            )
            for product, row in new_products
        )
    if rejects:
        uow.session.execute(insert(CatalogReject), rejects)
    uow.session.flush()


def _raw_of(records: list[Record], line: int) -> str:
    return next((r.raw for r in records if r.line == line), "")[:2_000]


def list_imports(
    uow: UnitOfWork, partner_id: int | None, *, cursor: str | None, limit: int
) -> tuple[Sequence[CatalogImport], str | None]:
    """Imports newest first, of one partner or (bank staff) of all."""
    stmt = select(CatalogImport)
    if partner_id is not None:
        stmt = stmt.where(CatalogImport.partner_id == partner_id)
    return paginate(
        uow.session, stmt, CatalogImport.id, cursor=cursor, limit=limit, descending=True
    )


def get_import(uow: UnitOfWork, actor: Principal, public_id: str) -> CatalogImport:
    job = uow.session.scalars(
        select(CatalogImport).where(CatalogImport.public_id == public_id)
    ).one_or_none()
    if job is None:
        raise NotFound(_("No catalog import %(public_id)r here.", public_id=public_id))
    ensure_partner_visible(actor, job.partner_id, "catalog import", public_id)
    return job


def import_rejects(
    uow: UnitOfWork, job: CatalogImport, *, cursor: str | None, limit: int
) -> tuple[Sequence[CatalogReject], str | None]:
    """The import's rejected rows in feed order, a page at a time."""
    stmt = select(CatalogReject).where(CatalogReject.import_id == job.id)
    return paginate(uow.session, stmt, CatalogReject.id, cursor=cursor, limit=limit)


# -- the customer-facing catalog ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """A product on sale now, with what everyone pays and what the bank's customers pay."""

    product: Product
    partner_public_id: str
    public_minor: int
    client_minor: int

    @property
    def saving_minor(self) -> int:
        return self.public_minor - self.client_minor

    @property
    def available(self) -> int:
        return self.product.stock_on_hand - self.product.stock_reserved


def _offers_stmt(at: datetime) -> Select[Product, str, int, int]:
    return (
        select(Product, Partner.public_id, ProductPrice.public_minor, ProductPrice.client_minor)
        .join(Partner, Partner.id == Product.partner_id)
        .join(ProductPrice, (ProductPrice.product_id == Product.id) & _price_covering(at))
        .where(Product.status == ProductStatus.ACTIVE, Partner.status == PartnerStatus.ACTIVE)
    )


def search_offers(
    uow: UnitOfWork,
    at: datetime,
    *,
    text: str | None = None,
    category: str | None = None,
    partner_id: int | None = None,
    in_stock: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Offer], str | None]:
    """Active products with a price valid at `at`, matching the filters, in catalog order."""
    stmt = _offers_stmt(at)
    if partner_id is not None:
        stmt = stmt.where(Product.partner_id == partner_id)
    if category:
        stmt = stmt.where(Product.category == category.lower())
    if text:
        pattern = f"%{_escape_like(text.strip().lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(Product.title).like(pattern, escape="\\"),
                func.lower(Product.description).like(pattern, escape="\\"),
            )
        )
    if in_stock:
        stmt = stmt.where(Product.stock_on_hand > Product.stock_reserved)
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor:
        stmt = stmt.where(Product.id > decode_cursor(cursor))
    rows = uow.session.execute(stmt.order_by(Product.id).limit(limit + 1)).all()
    offers = [Offer(r[0], r[1], int(r[2]), int(r[3])) for r in rows[:limit]]
    next_cursor = encode_cursor(offers[-1].product.id) if len(rows) > limit else None
    return offers, next_cursor


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_offer(uow: UnitOfWork, actor: Principal, public_id: str, at: datetime) -> Offer:
    """One product on sale now; withdrawn, unpriced or another partner's (for a partner) is 404."""
    row = uow.session.execute(
        _offers_stmt(at)
        .where(Product.public_id == public_id)
        .order_by(ProductPrice.valid_from.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(_("No product %(public_id)r here.", public_id=public_id))
    ensure_partner_visible(actor, row[0].partner_id, "product", public_id)
    return Offer(row[0], row[1], int(row[2]), int(row[3]))


def categories(uow: UnitOfWork, at: datetime, partner_id: int | None) -> list[tuple[str, int]]:
    """Each category with the number of products on sale in it now, by name."""
    stmt = (
        select(Product.category, func.count())
        .select_from(Product)
        .join(Partner, Partner.id == Product.partner_id)
        .join(ProductPrice, (ProductPrice.product_id == Product.id) & _price_covering(at))
        .where(Product.status == ProductStatus.ACTIVE, Partner.status == PartnerStatus.ACTIVE)
        .group_by(Product.category)
        .order_by(Product.category)
    )
    if partner_id is not None:
        stmt = stmt.where(Product.partner_id == partner_id)
    return [(str(c), int(n)) for c, n in uow.session.execute(stmt)]


# -- the Online Retail history as a partner's feed -------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetailImport:
    job: CatalogImport
    lines: retail.LineCounts
    products: int  # derived from the lines: the feed's rows


def import_online_retail(
    uow: UnitOfWork,
    actor: Principal,
    partner: Partner,
    path: Path,
    *,
    limit_lines: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_derived: Callable[[int], None] | None = None,
) -> RetailImport:
    """Import the products of the Online Retail history (retail.py says how they are derived)."""
    if partner.currency != "GBP":
        raise invalid(
            "query.partner",
            _(
                "the Online Retail prices are GBP; %(public_id)s sells in %(currency)s",
                public_id=partner.public_id,
                currency=partner.currency,
            ),
        )
    lines = retail.read_lines(path)
    if limit_lines is not None:
        lines = lines.head(limit_lines)
    counts = retail.count_lines(lines)
    products = retail.derive_products(lines)
    if on_derived is not None:
        on_derived(products.height)
    with path.open("rb") as stream:
        job = import_feed(
            uow,
            actor,
            partner,
            stream,
            "retail",
            source=path.name,
            rows=retail.feed_records(products),
            progress=progress,
        )
    return RetailImport(job, counts, products.height)
