"""Card-linked console pages: runs with their counts and conservation, a run's quarantine chart,
totals and reward rows; the descriptor review queue and a reviewer's confirm or reject, with
errors beside the fields and a decided review explained at the top of the page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from beyondbank.alliance.models import MerchantStatus
from beyondbank.cards import frames, reviews, service
from beyondbank.cards.descriptors import acceptor_field
from beyondbank.cards.models import CardRun, DescriptorMapping, DescriptorReview, ReviewStatus
from beyondbank.core.authz import Role
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.cards import factories as cf
from tests.web.conftest import World
from tests.web.pages import csrf_from, field_error, sign_in, submit, text_of

LINKED = datetime(2026, 11, 1, tzinfo=UTC)
MONDAY = datetime(2026, 11, 16, 12, 30, tzinfo=UTC)


@dataclass
class Ran:
    programme: cf.Programme
    run: CardRun
    review: DescriptorReview  # the noisy descriptor the run was unsure of


@pytest.fixture
def ran(uow: UnitOfWork, world: World, tmp_path: Path) -> Ran:
    """One run: a rewarded purchase, a partial refund of it, three broken rows (two for one
    reason), a resent row and a noisy descriptor from an unregistered terminal."""
    p = cf.programme(uow, LINKED, title="20% off noodles")
    purchase = cf.feed_row(p, "t-1", MONDAY, 4_000)
    refund = cf.feed_row(
        p, "r-1", MONDAY + timedelta(days=1), 1_000, type=frames.REFUND, original="t-1"
    )
    broken = [
        {**cf.feed_row(p, "t-2", MONDAY, 100), "currency": "XXY"},
        {**cf.feed_row(p, "t-4", MONDAY, 100), "currency": "XXZ"},
        {**cf.feed_row(p, "t-5", MONDAY, 100), "amount_minor": "-100"},
    ]
    noisy = cf.feed_row(p, "t-3", MONDAY + timedelta(hours=2), 2_000, terminal="UNKNOWN1")
    noisy["acquirer_merchant_id"] = "NOTREGISTERED"
    noisy["acceptor_name_location"] = acceptor_field("SQ *HRBR NODLE BAR", "London", "GB")
    feed = cf.write_csv(tmp_path / "week-46.csv", [purchase, refund, *broken, purchase, noisy])
    run = service.run_file(uow, feed, out_dir=tmp_path / "out", chunk_rows=10, threshold=0.99)
    review = uow.session.scalars(select(DescriptorReview)).one()
    return Ran(p, run, review)


def _review(
    uow: UnitOfWork, example: str, *, transactions: int, status: ReviewStatus = ReviewStatus.OPEN
) -> DescriptorReview:
    now = uow.clock.now()
    review = DescriptorReview(
        public_id=new_public_id("dsc"),
        descriptor_key=example.lower(),
        mcc="5812",
        example=example,
        city="london",
        score=0.8,
        transactions=transactions,
        status=status,
        first_seen_at=now,
        last_seen_at=now,
    )
    uow.session.add(review)
    uow.session.flush()
    return review


def _status(uow: UnitOfWork, world: World, public_id: str) -> ReviewStatus:
    uow.session.expire_all()
    return reviews.get_review(uow, f.principal(world.admin), public_id).review.status


# -- who may open what -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "runs", "queue"),
    [
        (Role.BANK_ADMIN, 200, 200),
        (Role.RELATIONSHIP_MANAGER, 200, 200),
        (Role.AUDITOR, 200, 403),  # reads runs, does not decide descriptors
        (Role.ANALYST, 403, 403),
        (Role.MERCHANT_ADMIN, 403, 403),
        (Role.MERCHANT_STAFF, 403, 403),
    ],
    ids=lambda v: v.value if isinstance(v, Role) else str(v),
)
def test_card_pages_open_for_the_roles_that_read_cards(
    client: TestClient, world: World, ran: Ran, role: Role, runs: int, queue: int
) -> None:
    who = {
        Role.BANK_ADMIN: world.admin,
        Role.RELATIONSHIP_MANAGER: world.rm,
        Role.AUDITOR: world.auditor,
        Role.ANALYST: world.analyst,
        Role.MERCHANT_ADMIN: world.owner,
        Role.MERCHANT_STAFF: world.counter,
    }[role]
    sign_in(client, who)
    for path in ("/console/card-runs", f"/console/card-runs/{ran.run.public_id}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == runs, (path, response.text[:300])
        assert "text/html" in response.headers["content-type"]
    for path in ("/console/descriptors", f"/console/descriptors/{ran.review.public_id}"):
        assert client.get(path, follow_redirects=False).status_code == queue, path
    if role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF):
        assert "for the bank&#39;s staff" in client.get("/console/card-runs").text


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient, ran: Ran) -> None:
    for path in ("/console/card-runs", "/console/descriptors"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        (Role.RELATIONSHIP_MANAGER, {"/console/card-runs", "/console/descriptors"}),
        (Role.AUDITOR, {"/console/card-runs"}),
        (Role.ANALYST, set()),
    ],
    ids=lambda v: v.value if isinstance(v, Role) else "",
)
def test_navigation_offers_the_card_pages_only_with_their_permission(
    client: TestClient, world: World, role: Role, shown: set[str]
) -> None:
    sign_in(
        client,
        {Role.RELATIONSHIP_MANAGER: world.rm, Role.AUDITOR: world.auditor}.get(role, world.analyst),
    )
    page = client.get("/console").text
    for href in ("/console/card-runs", "/console/descriptors"):
        assert (f'href="{href}"' in page) == (href in shown), href


def test_card_pages_stay_within_the_content_security_policy(
    client: TestClient, world: World, ran: Ran
) -> None:
    sign_in(client, world.admin)
    for path in (
        "/console/card-runs",
        f"/console/card-runs/{ran.run.public_id}",
        "/console/descriptors",
        f"/console/descriptors/{ran.review.public_id}",
    ):
        html = client.get(path).text
        # Scripts only from files on this host (the CSP refuses inline ones).
        assert not re.search(r"<script(?![^>]*\ssrc=\"/static/)", html)
        assert " style=" not in html
        assert "<style" not in html
        assert "http://" not in html.replace("http://testserver", "")


# -- runs ----------------------------------------------------------------------------------------


def test_the_runs_page_lists_runs_newest_first_with_their_counts(
    client: TestClient, world: World, ran: Ran, uow: UnitOfWork, tmp_path: Path
) -> None:
    rerun = service.run_file(
        uow, tmp_path / "week-46.csv", out_dir=tmp_path / "out", chunk_rows=10, threshold=0.99
    )
    sign_in(client, world.rm)
    page = client.get("/console/card-runs")
    assert page.status_code == 200
    ids = re.findall(r'<th scope="row"><a href="/console/card-runs/([^"]+)">', page.text)
    assert ids == [rerun.public_id, ran.run.public_id]
    rows = page.text.split("<tbody>", 1)[1].split("</tr>")
    first = text_of(rows[1])
    r = ran.run
    assert (r.rows_read, r.quarantined, r.duplicates, r.rewards, r.clawbacks) == (7, 3, 1, 1, 1)
    assert (
        f"{r.rows_read} {r.quarantined} {r.duplicates} {r.already_seen} {r.matched} "
        f"{r.unresolved} {r.rewards} {r.clawbacks} {r.posted} ✓ all"
    ) in first
    assert "week-46.csv" in first
    # The second run of the same file sees every accepted row as seen before.
    assert f"7 3 1 {r.accepted} 0 0 0 0 0 ✓ all" in text_of(rows[0])


def test_a_run_page_shows_counts_quarantine_chart_totals_and_reward_rows(
    client: TestClient, world: World, ran: Ran
) -> None:
    sign_in(client, world.admin)
    page = client.get(f"/console/card-runs/{ran.run.public_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert f"Run {ran.run.public_id} done" in text
    assert "7 Rows read" in text
    assert "3 Quarantined" in text
    assert "1 Rewards 1 Clawbacks 2 Posted to the ledger" in text
    assert "Every row read is accounted for." in text
    assert "7 rows read = 3 accepted + 3 quarantined + 1 duplicates" in text
    assert "3 accepted = 0 seen in earlier runs + 3 matched" in text
    # The quarantine reasons, as a table with a bar for each reason.
    chart = page.text.split('id="quarantine-reasons"', 1)[1].split("</table>", 1)[0]
    reasons = re.findall(r'<th scope="row">([^<]+)</th>\s*<td>(\d+)</td>', chart)
    assert reasons == [("unknown currency", "2"), ("amount_minor is negative", "1")]
    assert re.findall(r'<rect [^>]*width="([\d.]+)"', chart) == ["240.0", "120.0"]
    assert "Reasons are recorded" not in text
    # 20% of £40.00 is £8.00; a quarter refunded claws back £2.00.
    assert "GBP £8.00 £2.00 £6.00" in text
    rewards = text_of(page.text.split('id="rewards-title"', 1)[1])
    member = ran.programme.member.public_id
    assert (
        f"reward {member} Harbour Noodle Bar 20% off noodles £40.00 £8.00 £4.80 £3.20 £1.00 — "
        "posted"
    ) in rewards
    assert (
        f"clawback {member} Harbour Noodle Bar 20% off noodles £40.00 refunded £10.00 £2.00 "
        "£1.20 £0.80 £0.25 — posted"
    ) in rewards


def test_a_run_without_quarantine_or_rewards_says_so(
    client: TestClient, world: World, uow: UnitOfWork, tmp_path: Path
) -> None:
    p = cf.programme(uow, LINKED)
    stranger = cf.feed_row(p, "t-1", MONDAY, 4_000, token="tok_not_a_member")
    feed = cf.write_csv(tmp_path / "quiet.csv", [stranger])
    run = service.run_file(uow, feed, out_dir=tmp_path / "out")
    sign_in(client, world.auditor)
    text = text_of(client.get(f"/console/card-runs/{run.public_id}").text)
    assert "No row was quarantined." in text
    assert "The run rewarded nothing and clawed nothing back." in text
    assert "The run wrote no reward rows." in text


def test_a_run_whose_reasons_miss_some_quarantined_rows_says_so(
    client: TestClient, world: World, ran: Ran, uow: UnitOfWork
) -> None:
    run = uow.session.get_one(CardRun, ran.run.id)
    run.details = {"quarantine_reasons": {"unknown currency": 2}}
    uow.session.flush()
    sign_in(client, world.admin)
    text = text_of(client.get(f"/console/card-runs/{run.public_id}").text)
    assert (
        "Reasons are recorded for 2 of the 3 quarantined rows; the quarantine file holds every "
        "row with its reason."
    ) in text


def test_an_unknown_run_is_a_page_not_found(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    response = client.get("/console/card-runs/run_nope")
    assert response.status_code == 404
    assert "No card-linked run" in text_of(response.text)


# -- the descriptor review queue ------------------------------------------------------------------


def _examples(html: str) -> list[str]:
    found = re.findall(r'<a href="/console/descriptors/[^"]+"><code>([^<]+)</code>', html)
    return [text_of(e).replace("\u00a0", " ").strip() for e in found]


def test_the_queue_shows_open_reviews_first_and_filters_by_status(
    client: TestClient, world: World, ran: Ran, uow: UnitOfWork
) -> None:
    _review(uow, "BUSY CAFE", transactions=40)
    _review(uow, "OLD STALL", transactions=90, status=ReviewStatus.REJECTED)
    sign_in(client, world.rm)
    page = client.get("/console/descriptors")
    assert page.status_code == 200
    queue, rest = page.text.split("All descriptors", 1)
    noisy = " ".join(ran.review.example.split())
    assert _examples(queue) == ["BUSY CAFE", noisy]  # most transactions first
    assert _examples(rest) == ["OLD STALL", "BUSY CAFE", noisy]  # newest first
    # The descriptor keeps its spacing as the network sent it (DE 43 is fixed-width).
    assert ran.review.example.rstrip().replace(" ", "\u00a0") in queue
    row = text_of(queue.split("</tr>")[2])
    assert f"{ran.review.mcc} London 1 Harbour Noodle Bar" in row
    assert "open" in row
    rejected = client.get("/console/descriptors?status=rejected").text
    assert _examples(rejected) == ["OLD STALL"]
    assert '<option value="rejected" selected>' in rejected
    assert client.get("/console/descriptors?status=maybe").status_code == 422


def test_the_review_page_offers_the_candidate_and_active_merchants(
    client: TestClient, world: World, ran: Ran
) -> None:
    sign_in(client, world.rm)
    page = client.get(f"/console/descriptors/{ran.review.public_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Descriptor SQ *HRBR NODLE BAR" in text
    assert "Transactions 1" in text
    assert "Merchant Harbour Noodle Bar active" in text
    merchant = ran.programme.merchant.public_id
    assert f'<option value="{merchant}" selected>Harbour Noodle Bar</option>' in page.text
    assert world.holder.public_id in page.text  # another active merchant to choose
    assert world.applicant.public_id not in page.text  # under review: cannot be mapped to
    location = ran.programme.merchant.locations[0].public_id
    assert f'<option value="{location}">' in page.text


def test_confirming_maps_the_descriptor_and_returns_to_the_queue(
    client: TestClient, world: World, ran: Ran, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    path = f"/console/descriptors/{ran.review.public_id}"
    location = ran.programme.merchant.locations[0].public_id
    response = submit(
        client,
        path,
        f"{path}/confirm",
        {"merchant": ran.programme.merchant.public_id, "location": location},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/descriptors"
    queue = text_of(client.get("/console/descriptors").text)
    assert "now belongs to Harbour Noodle Bar: the next run resolves it exactly." in queue
    assert "Nothing waits for a decision." in queue
    assert _status(uow, world, ran.review.public_id) is ReviewStatus.CONFIRMED
    mapping = uow.session.scalars(select(DescriptorMapping)).one()
    assert mapping.merchant_id == ran.programme.merchant.id
    assert mapping.location_id == ran.programme.merchant.locations[0].id
    decided = text_of(client.get(path).text)
    assert "Decided" in decided
    assert "Raj Manager" in decided
    assert "Confirm: it is an alliance merchant" not in decided


def test_an_unknown_merchant_is_shown_beside_the_field_as_typed(
    client: TestClient, world: World, ran: Ran, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    path = f"/console/descriptors/{ran.review.public_id}"
    response = submit(client, path, f"{path}/confirm", {"merchant": "mer_nobody"})
    assert response.status_code == 422
    assert field_error(response.text, "confirm-merchant") == "no such merchant"
    assert '<option value="mer_nobody" selected>mer_nobody</option>' in response.text
    assert 'aria-invalid="true"' in response.text
    assert _status(uow, world, ran.review.public_id) is ReviewStatus.OPEN


def test_a_foreign_location_an_inactive_or_missing_merchant_are_field_errors(
    client: TestClient, world: World, ran: Ran, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    path = f"/console/descriptors/{ran.review.public_id}"
    elsewhere = world.holder.locations[0].public_id
    wrong = submit(
        client,
        path,
        f"{path}/confirm",
        {"merchant": ran.programme.merchant.public_id, "location": elsewhere},
    )
    assert wrong.status_code == 422
    assert field_error(wrong.text, "confirm-location") == "not a location of this merchant"
    assert f'<option value="{elsewhere}" selected>' in wrong.text
    suspended = f.make_merchant(uow, status=MerchantStatus.SUSPENDED, trading_name="Shut Shop")
    inactive = submit(client, path, f"{path}/confirm", {"merchant": suspended.public_id})
    assert inactive.status_code == 422
    assert field_error(inactive.text, "confirm-merchant") == (
        "the merchant is suspended, not an active member"
    )
    assert f'<option value="{suspended.public_id}" selected>' in inactive.text
    blank = submit(client, path, f"{path}/confirm", {"merchant": ""})
    assert blank.status_code == 422
    assert field_error(blank.text, "confirm-merchant") == (
        "Choose the alliance merchant this descriptor belongs to."
    )
    assert _status(uow, world, ran.review.public_id) is ReviewStatus.OPEN


def test_rejecting_needs_a_note_and_a_decided_review_is_explained_at_the_top(
    client: TestClient, world: World, ran: Ran, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    path = f"/console/descriptors/{ran.review.public_id}"
    empty = submit(client, path, f"{path}/reject", {"note": "  "})
    assert empty.status_code == 422
    assert field_error(empty.text, "reject-note") == "This is required."
    done = submit(client, path, f"{path}/reject", {"note": "A market stall, not ours"})
    assert done.status_code == 303
    assert "is rejected: its transactions stay unresolved." in text_of(
        client.get("/console/descriptors").text
    )
    assert _status(uow, world, ran.review.public_id) is ReviewStatus.REJECTED
    page = client.get(path)
    assert "Decision note A market stall, not ours" in text_of(page.text)
    again = client.post(
        f"{path}/confirm",
        data={"merchant": ran.programme.merchant.public_id, "csrf_token": csrf_from(page.text)},
    )
    assert again.status_code == 409
    assert "text/html" in again.headers["content-type"]
    top = again.text.split('id="page-problem"', 1)[1]
    assert "The review is already rejected." in text_of(top)


def test_decisions_need_the_forms_csrf_token_and_the_right_to_review(
    client: TestClient, world: World, ran: Ran, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    path = f"/console/descriptors/{ran.review.public_id}"
    forged = client.post(f"{path}/reject", data={"note": "forged"})
    assert forged.status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(client.get(path).text)})
    sign_in(client, world.auditor)
    page = client.get("/console/card-runs")
    refused = client.post(
        f"{path}/reject", data={"note": "not mine to decide", "csrf_token": csrf_from(page.text)}
    )
    assert refused.status_code == 403
    assert _status(uow, world, ran.review.public_id) is ReviewStatus.OPEN
