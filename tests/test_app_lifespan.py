"""The served app freezes its start-up heap (no 300 ms full collections walking it); a test
suite's apps do not, or each would stay in memory for good."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from beyondbank.api import create_app
from beyondbank.core.settings import Settings


def test_a_served_app_freezes_its_start_up_heap(settings: Settings, engine: Engine) -> None:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    served = create_app(settings.model_copy(update={"environment": "demo"}), engine=engine)
    try:
        with TestClient(served):
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[0] == 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_a_test_suites_app_does_not(settings: Settings, engine: Engine) -> None:
    gc.unfreeze()
    with TestClient(create_app(settings, engine=engine)):
        assert gc.get_freeze_count() == 0
