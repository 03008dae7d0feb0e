"""`beyondbank shop import-catalog` and `beyondbank shop retail-history` from the command line."""

from __future__ import annotations

import gzip
from pathlib import Path

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from beyondbank.cli import app
from beyondbank.commerce.models import CatalogImport
from beyondbank.core.clock import SystemClock
from beyondbank.core.uow import UnitOfWork, make_session_factory
from tests.factories import make_partner

FEED = (
    "sku,title,category,public_price,client_price,stock\n"
    "MUG-1,Enamel mug,kitchen,12.50,11.25,40\n"
    "BAG-2,Tote,bags,8.00,9.00,3\n"
)
RETAIL = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,UK\n"
    "536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.00,17850.0,UK\n"
    "C536379,22556,PLASTERS IN TIN CIRCUS PARADE,-12,2010-12-01 09:41:00,1.65,14527.0,UK\n"
    "536366,22556,PLASTERS IN TIN CIRCUS PARADE,12,2010-12-01 09:41:00,1.65,14527.0,UK\n"
)


def _partner(engine: Engine) -> str:
    with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
        partner = make_partner(uow)
        uow.commit()
        return partner.public_id


def test_import_catalog_prints_the_counts_and_the_rejects(
    cli_database: Engine, tmp_path: Path
) -> None:
    partner = _partner(cli_database)
    feed = tmp_path / "feed.csv"
    feed.write_text(FEED)
    result = CliRunner().invoke(app, ["shop", "import-catalog", str(feed), "--partner", partner])
    assert result.exit_code == 0, result.output
    assert "First rejected rows (of 1)" in result.output
    assert "bank-client price must be below" in result.output
    with UnitOfWork(make_session_factory(cli_database), SystemClock()) as uow:
        job = uow.session.scalars(select(CatalogImport)).one()
        assert (job.rows_read, job.created, job.rejected) == (2, 1, 1)


def test_import_catalog_online_retail_and_unknown_partner(
    cli_database: Engine, tmp_path: Path
) -> None:
    partner = _partner(cli_database)
    path = tmp_path / "online_retail.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(RETAIL)
    result = CliRunner().invoke(app, ["shop", "import-catalog", str(path), "--partner", partner])
    assert result.exit_code == 0, result.output
    assert "4 lines: 2 sales gave 2 products" in result.output
    assert "1 cancellations, 1 postage" in result.output
    missing = CliRunner().invoke(
        app, ["shop", "import-catalog", str(path), "--partner", "prt_nobody"]
    )
    assert missing.exit_code == 1
    assert "No partner 'prt_nobody'" in missing.output


def test_retail_history_writes_parquet_and_a_summary(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with gzip.open(data / "online_retail.csv.gz", "wt") as handle:
        handle.write(RETAIL)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["shop", "retail-history", "--data-dir", str(data), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "online_retail_history.parquet").exists()
    # 6 x £2.55 + 12 x £1.65 - 12 x £1.65: the cancellation nets out.
    assert "£15.30" in result.output
    assert "2 invoices" in result.output
