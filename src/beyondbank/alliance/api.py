"""Alliance endpoints: taxonomy, branches, circles, merchants, admission, waitlists, members, relationships."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["alliance"])
