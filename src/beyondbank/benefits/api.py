"""Benefit endpoints: benefits and their approval, member codes, voucher redemption at the counter."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["benefits"])
