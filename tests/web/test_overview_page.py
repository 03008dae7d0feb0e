"""The console's overview: programme figures (counted afresh on every visit), what needs my
attention, and the recent changes for those who read the audit trail."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.benefits import factories as bf
from tests.web.conftest import World
from tests.web.pages import sign_in, text_of


def _figures(html: str) -> dict[str, str]:
    found = re.findall(
        r'<span class="stat">([^<]+)</span>\s*<span class="stat-label">(?:<a [^>]+>)?([^<]+)', html
    )
    return {label: value for value, label in found}


def test_programme_figures(
    client: TestClient, world: World, uow: UnitOfWork, clock: FixedClock
) -> None:
    for _ in range(3):
        f.make_member(uow)
    member = f.make_member(uow)
    live = bf.make_benefit(uow, world.holder, title="Live")
    bf.make_redemption(uow, live, member)
    sign_in(client, world.analyst)
    page = client.get("/console")
    assert _figures(page.text) == {
        "Active members": "4",
        "Active merchants": "1",  # the applicant is under review
        "Active circles": "1",
        "Applications awaiting a decision": "1",
        "Benefits awaiting approval": "1",
        "Redemptions in the last 30 days": "1",
    }
    f.make_member(uow)
    assert _figures(client.get("/console").text)["Active members"] == "5"
    # A redemption ages out of the 30-day window.
    clock.advance(timedelta(days=31))
    assert _figures(client.get("/console").text)["Redemptions in the last 30 days"] == "0"


def test_attention_for_a_relationship_manager(client: TestClient, world: World) -> None:
    sign_in(client, world.rm)
    text = text_of(client.get("/console").text)
    assert "Waitlist offers for me No freed slot is waiting for your decision." in text
    assert "My overdue follow-ups Nothing overdue." in text
    assert (
        "Applications to decide Wharf Bakery → Canary Wharf (Bakeries and confectioners): all requirements met"
        in text
    )
    assert "Recent changes" not in text  # relationship managers do not read the audit trail


def test_recent_changes_for_auditors(client: TestClient, world: World) -> None:
    sign_in(client, world.auditor)
    text = text_of(client.get("/console").text)
    assert "Needs my attention" not in text  # auditors decide nothing
    changes = text.split("Recent changes", 1)[1]
    assert "interaction.logged" in changes
    assert "merchant.manager_assigned" in changes
    assert changes.index("interaction.logged") < changes.index("application.submitted")
