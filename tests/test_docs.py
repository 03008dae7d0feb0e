"""The reference documentation keeps up with the code: every endpoint is in docs/api.md and
every problem type the code can answer with is in docs/problems.md."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI

DOCS = Path(__file__).parents[1] / "docs"
SRC = Path(__file__).parents[1] / "src" / "beyondbank"


def test_every_endpoint_is_in_the_api_guide(app: FastAPI) -> None:
    guide = (DOCS / "api.md").read_text()
    listed = set(re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|", guide, re.M))
    routes = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert sorted(routes - listed) == []
    assert sorted(listed - routes) == [], "docs/api.md lists endpoints that do not exist"


def test_every_problem_type_is_in_the_problem_guide() -> None:
    guide = (DOCS / "problems.md").read_text()
    slugs = {
        slug
        for path in SRC.rglob("*.py")
        for slug in re.findall(r'^\s+slug = "([a-z-]+)"', path.read_text(), re.M)
    } - {"bad-request"}
    missing = sorted(s for s in slugs if f"`/problems/{s}`" not in guide)
    assert missing == []
