"""The demo's partner shop: its catalog (an excerpt of a real retailer's, shipped with the package)."""

from __future__ import annotations

from pathlib import Path

CATALOG_FILE = Path(__file__).parent / "data" / "harbour_catalog.csv"
