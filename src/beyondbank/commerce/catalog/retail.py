"""The UCI "Online Retail" history (a UK gift retailer, Dec 2010 – Dec 2011) as a partner's feed
and as order history for analytics: products derived from its sale lines, and a cleaned Parquet.

Decisions, documented in docs/shop.md:
- A line is a **sale of a product** when its `InvoiceNo` does not start with `C` (a
  cancellation), its `StockCode` starts with five digits or `DCGS` (the retailer's own goods;
  everything else is postage, fees, manual adjustments or gift vouchers: `POST`, `DOT`, `M`,
  `D`, `C2`, `S`, `B`, `BANK CHARGES`, `AMAZONFEE`, `CRUK`, `PADS`, `gift_0001_*`), its
  `UnitPrice` is positive with at most two decimals, its `Quantity` positive and it has a
  `Description`. Stock codes are upper-cased (`85123a` and `85123A` are one product).
- **Title**: the product's most frequent description. **Public price**: its most frequent unit
  price over its sale lines (ties: the higher). **Bank-client price**: 10 % off, rounded down to
  the penny, so always strictly below; a 1p product gets 0p and is rejected by the import.
- **Category**: the first keyword group whose word (or its plural) is in the title
  (`CATEGORY_KEYWORDS`), else `other`.
- **Stock**: a month's cover at the recent rate: the units sold in the last 90 days of the
  history, divided by three, rounded up; a product not sold in those 90 days has none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

from beyondbank.commerce.catalog.feed import Record

RETAIL_FILE = "online_retail.csv.gz"
HISTORY_FILE = "online_retail_history.parquet"
CLIENT_DISCOUNT_BPS = 1_000  # 10 % off the public price for the bank's customers
STOCK_WINDOW = timedelta(days=90)
PRODUCT_CODE = r"^(\d{5}|DCGS)"
SOURCE_TIMEZONE = "Europe/London"  # the retailer's invoice times are UK local time

# First match wins, so the narrower groups come first ("CHRISTMAS CANDLE" is christmas).
CATEGORY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("christmas", ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "BAUBLE")),
    ("easter", ("EASTER", "BUNNY", "EGG")),
    ("bags", ("BAG", "TOTE", "PURSE", "SHOPPER")),
    ("candles and lights", ("CANDLE", "T-LIGHT", "TLIGHT", "LANTERN", "LIGHT", "LAMP")),
    (
        "kitchen",
        (
            "MUG",
            "CUP",
            "PLATE",
            "BOWL",
            "TEA",
            "CAKE",
            "LUNCH BOX",
            "JAR",
            "BAKING",
            "KITCHEN",
            "SPOON",
            "CUTLERY",
            "JUG",
            "BEAKER",
            "JAM",
            "GLASS",
            "DISH",
            "CAKESTAND",
            "NAPKIN",
            "APRON",
            "BOTTLE",
            "TRAY",
            "COASTER",
            "TIN",
        ),
    ),
    (
        "stationery",
        (
            "CARD",
            "PAPER",
            "NOTEBOOK",
            "PENCIL",
            "PEN",
            "WRAP",
            "STICKER",
            "TAPE",
            "ENVELOPE",
            "CALENDAR",
            "DIARY",
            "BOOK",
        ),
    ),
    (
        "toys and games",
        (
            "TOY",
            "GAME",
            "DOLL",
            "PUZZLE",
            "BALLOON",
            "SKIPPING",
            "SPACEBOY",
            "DOMINO",
            "JIGSAW",
            "BUILDING BLOCK",
            "PAINT",
            "GLOBE",
            "PIGGY BANK",
            "CHILDRENS",
            "CRAYON",
            "PLAYHOUSE",
        ),
    ),
    ("garden", ("GARDEN", "PLANT", "FLOWER POT", "WATERING", "BIRD", "HERB", "SEED")),
    (
        "jewellery and accessories",
        (
            "NECKLACE",
            "BRACELET",
            "EARRING",
            "RING",
            "HAIR",
            "JEWEL",
            "UMBRELLA",
            "SCARF",
            "GLOVES",
            "WARMER",
            "PARASOL",
            "KEYRING",
            "BROOCH",
            "CHARM",
        ),
    ),
    (
        "home decor",
        (
            "HEART",
            "SIGN",
            "FRAME",
            "CLOCK",
            "MIRROR",
            "CUSHION",
            "DOORMAT",
            "HOOK",
            "HANGER",
            "DECORATION",
            "VASE",
            "WALL",
            "DOORSTOP",
            "BUNTING",
            "GARLAND",
            "ORNAMENT",
            "DRAWER",
            "BOX",
            "BOXES",
            "RACK",
            "CABINET",
            "BIN",
            "DOORSIGN",
            "CHALKBOARD",
            "CUSHION COVER",
            "BASKET",
            "HOLDER",
        ),
    ),
)
FALLBACK_CATEGORY = "other"


_CATEGORY_PATTERNS = tuple(
    # Whole words, plurals allowed: "CUP" is not in "CUPID", "BAGS" is a bag.
    (category, re.compile(r"\b(?:" + "|".join(re.escape(w.strip()) for w in words) + r")S?\b"))
    for category, words in CATEGORY_KEYWORDS
)


def category_of(title: str) -> str:
    """The product's category from whole keywords in its title, or `other`."""
    upper = title.upper()
    for category, pattern in _CATEGORY_PATTERNS:
        if pattern.search(upper):
            return category
    return FALLBACK_CATEGORY


@dataclass(frozen=True, slots=True)
class LineCounts:
    """What the history's lines were, before any product is derived from them."""

    lines: int
    cancellations: int
    not_products: int  # postage, fees, adjustments, vouchers
    bad_price: int  # zero, negative, or more than two decimals
    no_description: int
    non_positive_quantity: int
    sales: int  # the lines products are derived from

    @property
    def skipped(self) -> int:
        return self.lines - self.sales


def _price_minor() -> pl.Expr:
    """UnitPrice text in pence, exactly: no float is involved; null if not a ≤2-decimal amount."""
    text = pl.col("UnitPrice").str.strip_chars()
    ok = text.str.contains(r"^-?\d+(\.\d{1,2})?$")
    whole = text.str.extract(r"^(-?\d+)", 1).cast(pl.Int64)
    frac = text.str.extract(r"\.(\d{1,2})$", 1).fill_null("0").str.pad_end(2, "0").cast(pl.Int64)
    signed = pl.when(text.str.starts_with("-")).then(-frac).otherwise(frac)
    return pl.when(ok).then(whole * 100 + signed).otherwise(None)


def read_lines(path: Path) -> pl.DataFrame:
    """Every line of the history, typed, with its line number in the file and flags."""
    frame = pl.read_csv(
        path,
        schema_overrides={
            "InvoiceNo": pl.String,
            "StockCode": pl.String,
            "Description": pl.String,
            "Quantity": pl.Int64,
            "InvoiceDate": pl.String,
            "UnitPrice": pl.String,
            "CustomerID": pl.String,
            "Country": pl.String,
        },
    )
    return frame.with_row_index("line", offset=2).with_columns(
        pl.col("StockCode").str.strip_chars().str.to_uppercase().alias("sku"),
        pl.col("Description").str.strip_chars().alias("title"),
        pl.col("InvoiceNo").str.starts_with("C").alias("is_cancellation"),
        _price_minor().alias("price_minor"),
        pl.col("InvoiceDate")
        .str.to_datetime("%Y-%m-%d %H:%M:%S")
        .dt.replace_time_zone(SOURCE_TIMEZONE, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .alias("invoiced_at"),
    )


def _is_product() -> pl.Expr:
    return pl.col("sku").str.contains(PRODUCT_CODE)


def count_lines(lines: pl.DataFrame) -> LineCounts:
    """Each line counted once, under the first reason it is not a sale (in the order below)."""
    cancelled = pl.col("is_cancellation")
    not_product = ~cancelled & ~_is_product()
    bad_price = ~cancelled & _is_product() & ~(pl.col("price_minor") > 0).fill_null(False)
    rest = ~cancelled & _is_product() & (pl.col("price_minor") > 0).fill_null(False)
    no_desc = rest & pl.col("title").is_null()
    bad_qty = rest & pl.col("title").is_not_null() & (pl.col("Quantity") <= 0)
    sale = rest & pl.col("title").is_not_null() & (pl.col("Quantity") > 0)
    row = lines.select(
        pl.len().alias("lines"),
        cancelled.sum().alias("cancellations"),
        not_product.sum().alias("not_products"),
        bad_price.sum().alias("bad_price"),
        no_desc.sum().alias("no_description"),
        bad_qty.sum().alias("non_positive_quantity"),
        sale.sum().alias("sales"),
    ).row(0, named=True)
    return LineCounts(**{k: int(v) for k, v in row.items()})


def sales(lines: pl.DataFrame) -> pl.DataFrame:
    return lines.filter(
        ~pl.col("is_cancellation")
        & _is_product()
        & (pl.col("price_minor") > 0).fill_null(False)
        & pl.col("title").is_not_null()
        & (pl.col("Quantity") > 0)
    )


def derive_products(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per product: sku, title, category, public and client price (pence), stock, line."""
    sold = sales(lines)
    end = sold.select(pl.col("invoiced_at").max()).item()
    titles = (
        sold.group_by("sku", "title")
        .agg(pl.len().alias("n"))
        .sort(["sku", "n", "title"], descending=[False, True, False])
        .unique("sku", keep="first", maintain_order=True)
        .select("sku", "title")
    )
    prices = (
        sold.group_by("sku", "price_minor")
        .agg(pl.len().alias("n"))
        .sort(["sku", "n", "price_minor"], descending=[False, True, True])
        .unique("sku", keep="first", maintain_order=True)
        .select("sku", pl.col("price_minor").alias("public_minor"))
    )
    recent = (
        sold.filter(pl.col("invoiced_at") > end - STOCK_WINDOW)
        .group_by("sku")
        .agg(pl.col("Quantity").sum().alias("recent_units"))
    )
    firsts = sold.group_by("sku").agg(pl.col("line").min().alias("line"))
    products = (
        firsts.join(titles, on="sku")
        .join(prices, on="sku")
        .join(recent, on="sku", how="left")
        .with_columns(
            (pl.col("public_minor") * (10_000 - CLIENT_DISCOUNT_BPS) // 10_000).alias(
                "client_minor"
            ),
            # ceil(units / 3) in integers: a month's cover at the last 90 days' rate.
            ((pl.col("recent_units").fill_null(0) + 2) // 3).alias("stock"),
            pl.col("title").map_elements(category_of, return_dtype=pl.String).alias("category"),
        )
        .sort("line")
    )
    return products.select(
        "line", "sku", "title", "category", "public_minor", "client_minor", "stock"
    )


def _decimal(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def feed_records(products: pl.DataFrame) -> Iterator[Record]:
    """The derived products as feed records, checked by the import like any partner's feed."""
    for row in products.iter_rows(named=True):
        fields = {
            "sku": row["sku"],
            "title": row["title"],
            "category": row["category"],
            "public_price": _decimal(row["public_minor"]),
            "client_price": _decimal(row["client_minor"]),
            "stock": str(row["stock"]),
        }
        raw = ",".join(str(v) for v in fields.values())
        yield Record(int(row["line"]), fields, raw)


# -- the history, for analytics ------------------------------------------------------------------


def write_history(lines: pl.DataFrame, out_dir: Path) -> Path:
    """The cleaned order history as Parquet: product lines with a positive price, sales and
    cancellations (negative quantities), amounts in pence, times in UTC."""
    out_dir.mkdir(parents=True, exist_ok=True)
    history = lines.filter(
        _is_product()
        & (pl.col("price_minor") > 0).fill_null(False)
        & pl.col("title").is_not_null()
        & (pl.col("Quantity") != 0)
    ).select(
        pl.col("InvoiceNo").alias("invoice"),
        "invoiced_at",
        "sku",
        pl.col("title").alias("description"),
        pl.col("Quantity").alias("quantity"),
        "price_minor",
        (pl.col("Quantity") * pl.col("price_minor")).alias("amount_minor"),
        pl.col("CustomerID")
        .str.replace(r"\.0$", "")
        .cast(pl.Int64, strict=False)
        .alias("customer"),
        pl.col("Country").alias("country"),
        "is_cancellation",
    )
    path = out_dir / HISTORY_FILE
    history.write_parquet(path)
    return path


@dataclass(frozen=True, slots=True)
class HistorySummary:
    monthly: pl.DataFrame  # month, invoices, revenue_minor (sales less cancellations)
    top_products: pl.DataFrame  # sku, description, units, revenue_minor
    baskets: dict[str, float]  # invoices, mean/median lines and units per invoice


def summarise(path: Path, top: int = 10) -> HistorySummary:
    """Monthly revenue, the best-selling products and basket sizes, from the Parquet history."""
    history = pl.scan_parquet(path)
    monthly = (
        history.with_columns(pl.col("invoiced_at").dt.strftime("%Y-%m").alias("month"))
        .group_by("month")
        .agg(
            pl.col("invoice").filter(~pl.col("is_cancellation")).n_unique().alias("invoices"),
            pl.col("amount_minor").sum().alias("revenue_minor"),
        )
        .sort("month")
        .collect()
    )
    top_products = (
        history.group_by("sku")
        .agg(
            pl.col("description").mode().first().alias("description"),
            pl.col("quantity").sum().alias("units"),
            pl.col("amount_minor").sum().alias("revenue_minor"),
        )
        .sort("revenue_minor", descending=True)
        .head(top)
        .collect()
    )
    per_invoice = (
        history.filter(~pl.col("is_cancellation"))
        .group_by("invoice")
        .agg(pl.len().alias("lines"), pl.col("quantity").sum().alias("units"))
        .collect()
    )
    baskets = {
        "invoices": float(per_invoice.height),
        "mean_lines": float(per_invoice["lines"].mean() or 0),  # type: ignore[arg-type]
        "median_lines": float(per_invoice["lines"].median() or 0),  # type: ignore[arg-type]
        "mean_units": float(per_invoice["units"].mean() or 0),  # type: ignore[arg-type]
        "median_units": float(per_invoice["units"].median() or 0),  # type: ignore[arg-type]
    }
    return HistorySummary(monthly, top_products, baskets)


def retail_path(data_dir: Path) -> Path:
    return data_dir / RETAIL_FILE
