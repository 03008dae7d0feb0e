"""Who may call each settlement endpoint: every role and partner system against every endpoint."""

from __future__ import annotations

from typing import Any

ENDPOINTS: dict[str, Any] = {}
