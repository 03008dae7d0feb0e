"""The Online Retail history as a partner's feed and as analytics, on its first 5,000 lines,
checked against a plain-Python reading of the same lines."""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from beyondbank.commerce.catalog import retail, service
from beyondbank.commerce.models import Product
from beyondbank.core.authz import SYSTEM
from beyondbank.core.uow import UnitOfWork
from tests.conftest import SHARED_DATA
from tests.factories import make_partner

SAMPLE_LINES = 5_000
NOT_GOODS = {"POST", "DOT", "M", "D", "C2", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 5,000 lines (and the header) of the real file, as a file of their own."""
    source = retail.retail_path(SHARED_DATA)
    if not source.exists():
        pytest.skip(f"{source} not found (set BEYONDBANK_DATA_DIR to the shared data)")
    path = tmp_path_factory.mktemp("retail") / retail.RETAIL_FILE
    with gzip.open(source, "rt", newline="") as src, gzip.open(path, "wt", newline="") as out:
        for i, line in enumerate(src):
            if i > SAMPLE_LINES:
                break
            out.write(line)
    return path


def _oracle(path: Path) -> dict[str, tuple[str, int]]:
    """sku → (title, public price in pence), by the documented rules, in plain Python."""
    titles: dict[str, Counter[str]] = defaultdict(Counter)
    prices: dict[str, Counter[int]] = defaultdict(Counter)
    with gzip.open(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            sku = row["StockCode"].strip().upper()
            price = Decimal(row["UnitPrice"])
            if (
                row["InvoiceNo"].startswith("C")
                or not (sku[:5].isdigit() or sku.startswith("DCGS"))
                or price <= 0
                or price.as_tuple().exponent < -2  # type: ignore[operator]
                or not row["Description"].strip()
                or int(row["Quantity"]) <= 0
            ):
                continue
            titles[sku][row["Description"].strip()] += 1
            prices[sku][int(price * 100)] += 1
    return {
        sku: (
            min(titles[sku].items(), key=lambda kv: (-kv[1], kv[0]))[0],
            max(prices[sku].items(), key=lambda kv: (kv[1], kv[0]))[0],
        )
        for sku in titles
    }


def test_products_derived_as_documented(uow: UnitOfWork, sample: Path) -> None:
    partner = make_partner(uow)
    result = service.import_online_retail(uow, SYSTEM, partner, sample)
    job, lines = result.job, result.lines
    assert lines.lines == SAMPLE_LINES
    assert (
        lines.cancellations
        + lines.not_products
        + lines.bad_price
        + lines.no_description
        + lines.non_positive_quantity
        + lines.sales
    ) == lines.lines
    expected = _oracle(sample)
    assert job.rows_read == len(expected) == result.products
    assert job.rows_read == job.created + job.updated + job.unchanged + job.rejected
    products = {
        p.sku: p
        for p in uow.session.scalars(select(Product).where(Product.partner_id == partner.id))
    }
    assert not set(products) & NOT_GOODS
    now = uow.clock.now()
    for sku, (title, public) in expected.items():
        if public * 9 // 10 == 0:  # a 1p product has no bank-client price below it
            assert sku not in products
            continue
        product = products[sku]
        assert product.title == title
        assert service.price_now(uow, product, now) == (public, public * 9 // 10)
        assert product.category == retail.category_of(title)
        assert product.stock_on_hand >= 0
    heart = products["85123A"]
    assert heart.category == "candles and lights"


def test_reimporting_the_history_changes_nothing(uow: UnitOfWork, sample: Path) -> None:
    partner = make_partner(uow)
    first = service.import_online_retail(uow, SYSTEM, partner, sample).job
    again = service.import_online_retail(uow, SYSTEM, partner, sample).job
    assert again.unchanged == first.created
    assert (again.created, again.updated) == (0, 0)


def test_the_history_parquet_and_its_summary(sample: Path, tmp_path: Path) -> None:
    lines = retail.read_lines(sample)
    path = retail.write_history(lines, tmp_path)
    summary = retail.summarise(path, top=3)
    total = 0
    invoices: dict[str, int] = Counter()
    with gzip.open(sample, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            sku = row["StockCode"].strip().upper()
            price = Decimal(row["UnitPrice"])
            if (
                (sku[:5].isdigit() or sku.startswith("DCGS"))
                and price > 0
                and row["Description"].strip()
                and int(row["Quantity"]) != 0
            ):
                total += int(row["Quantity"]) * int(price * 100)
                if not row["InvoiceNo"].startswith("C"):
                    invoices[row["InvoiceNo"]] += 1
    assert int(summary.monthly["revenue_minor"].sum()) == total
    assert summary.baskets["invoices"] == len(invoices)
    assert summary.baskets["mean_lines"] == pytest.approx(sum(invoices.values()) / len(invoices))
    assert summary.top_products.height == 3
    revenues = summary.top_products["revenue_minor"].to_list()
    assert revenues == sorted(revenues, reverse=True)


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "candles and lights"),
        ("CREAM CUPID HEARTS COAT HANGER", "home decor"),  # CUP is not in CUPID
        ("JUMBO BAG RED RETROSPOT", "bags"),
        ("PAPER CHAIN KIT 50'S CHRISTMAS", "christmas"),
        ("SET OF 6 FUNKY BEAKERS", "kitchen"),
        ("INFLATABLE POLITICAL GLOBE", "toys and games"),
        ("SOMETHING UNHEARD OF", "other"),
    ],
)
def test_categories_from_whole_keywords(title: str, category: str) -> None:
    assert retail.category_of(title) == category


def test_prices_are_read_exactly(tmp_path: Path) -> None:
    path = _tiny(tmp_path, ["0.85", "2.1", "10", "0.001", "-11062.06"])
    frame = retail.read_lines(path).select("price_minor")
    assert frame["price_minor"].to_list() == [85, 210, 1_000, None, -1_106_206]


def _tiny(directory: Path, prices: list[str]) -> Path:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(
        [
            "InvoiceNo",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
            "Country",
        ]
    )
    for i, price in enumerate(prices):
        writer.writerow([f"5{i:05d}", "10002", "MUG", "1", "2011-01-04 10:00:00", price, "", "UK"])
    path = directory / "tiny.csv"
    path.write_text(text.getvalue())
    return path
