"""Nothing we serve loads from another host: no CDN-hosted docs page, no external assets."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from beyondbank.web.templating import STATIC_DIR, TEMPLATES_DIR

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def test_no_interactive_docs_page_that_would_load_a_cdn(client: TestClient) -> None:
    assert client.get("/api/docs").status_code == 404
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_templates_and_static_files_reference_only_this_host() -> None:
    offenders = [
        f"{path.relative_to(TEMPLATES_DIR.parent)}: {match.group(0)}"
        for folder in (TEMPLATES_DIR, STATIC_DIR)
        for path in sorted(Path(folder).rglob("*"))
        if path.is_file() and path.suffix in {".html", ".css", ".js"}
        for match in EXTERNAL.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
