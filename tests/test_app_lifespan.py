"""The served app freezes its start-up heap (no 300 ms full collections walking it) and hands the
GIL on sooner (the card events' writer threads); a test suite's apps do neither, or each would
stay in memory for good."""

from __future__ import annotations

import gc
import sys

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from beyondbank.api import GIL_SWITCH_SECONDS, create_app
from beyondbank.core.settings import Settings


def test_a_served_app_freezes_its_start_up_heap(settings: Settings, engine: Engine) -> None:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    interval = sys.getswitchinterval()
    served = create_app(settings.model_copy(update={"environment": "demo"}), engine=engine)
    try:
        with TestClient(served):
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[0] == 10_000
            assert sys.getswitchinterval() == GIL_SWITCH_SECONDS < interval
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)


def test_a_test_suites_app_does_not(settings: Settings, engine: Engine) -> None:
    gc.unfreeze()
    interval = sys.getswitchinterval()
    with TestClient(create_app(settings, engine=engine)):
        assert gc.get_freeze_count() == 0
        assert sys.getswitchinterval() == interval
