"""A bad program file is rejected whole: every problem named with its path and line, and nothing
written, whether the problem is found by the checks or by a use case half-way through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Connection

from beyondbank.core.errors import Conflict
from beyondbank.program import writer
from beyondbank.program.source import Issue, from_data, parse_json, parse_yaml, read_file
from beyondbank.program.validation import ImportRejected
from tests.program.conftest import EXAMPLE, Run, row_counts

# Each problem is marked by a comment naming it, so the test finds its line.
BAD = """\
format: beyondbank-program/1
consent: {text_version: v1, granted_at: 2026-01-15T09:00:00Z}
branches:
  - code: CWF
    name: Canary Wharf
    address: 25 Cabot Square, London
    latitude: 51.5054
    longitude: -0.0235
    timezone: Europe/London
  - code: CWF                                   # DUPLICATE-BRANCH
    name: Canary Wharf again
    address: 26 Cabot Square, London
    latitude: 151.5                             # LATITUDE
    longitude: -0.0235
    timezone: Europe/London
circles:
  - code: canary-wharf
    name: Canary Wharf life circle
    kind: geographic
    branch: CWF
    requirements: [{kind: location_in_circle}, {kind: kyb_passed}]
  - code: old-town
    name: Old town
    kind: geographic
    branch: NOPE                                # UNKNOWN-BRANCH
merchants:
  - ref: dockside
    legal_name: Dockside Kitchen Ltd
    trading_name: Dockside Kitchen
    sub_industry: restaurant
    timezone: Europe/London
    kyb: passed
    locations:
      - name: Dockside Kitchen
        address_line: 3 Westferry Circus
        city: London
        country: GB
        latitude: 51.5063
        longitude: -0.0271
        terminals: [{acquirer_merchant_id: "400123456789012", terminal_id: DK000001}]
    circles: [canary-wharf]
  - ref: wharf-grill
    legal_name: Wharf Grill Ltd
    trading_name: Wharf Grill
    sub_industry: restaurant
    timezone: Europe/London
    kyb: passed
    locations:
      - name: Wharf Grill
        address_line: 1 Canada Square
        city: London
        country: GB
        latitude: 51.5049
        longitude: -0.0197
        terminals:
          - {acquirer_merchant_id: "400123456789012", terminal_id: DK000001}  # TERMINAL
    circles:
      - canary-wharf                            # SEAT-TAKEN
      - riverside                               # UNKNOWN-CIRCLE
  - ref: bad-bank
    legal_name: Bad Bank Details Ltd
    trading_name: Bad Bank Details
    sub_industry: florist
    timezone: Europe/London
    settlement_account:
      iban: GB00NWBK60161331926819              # IBAN
      account_name: Bad Bank Details Ltd
    locations:
      - {name: Shop, address_line: 2 Crossharbour, city: London, country: GB, latitude: 51.49, longitude: -0.01}
    status: under_review
members:
  - bank_ref: THB00000001
    atributes: {age: 30}                        # MISSPELT
    cards: [{card_token: tok_aaaaaaaa11}]
  - bank_ref: THB00000002
    cards:
      - {card_token: tok_aaaaaaaa11}            # CARD
benefits:
  - merchant: dockside
    title: 10% off everything
    kind: percent_off
    percent_bps: 1000                           # PRICE
    channels: [voucher]
    valid_from: 2026-01-01
    valid_to: 2027-01-01
    regular_price_minor: 2000
    public_discount_bps: 1000
  - merchant: nobody                            # UNKNOWN-MERCHANT
    title: A gift
    kind: gift
    offer_details: A tote bag
    publicly_available: false
    channels: [voucher]
    valid_from: 2026-01-01
    valid_to: 2027-01-01
  - merchant: bad-bank                          # refers to a bad entry: not reported again
    title: A rose
    kind: gift
    offer_details: A rose with every bouquet
    publicly_available: false
    channels: [voucher]
    valid_from: 2026-01-01
    valid_to: 2027-01-01
    status: draft
"""

EXPECTED = {
    "DUPLICATE-BRANCH": ("branches.1.code", "the same branch code as branches.0.code, line 4"),
    "LATITUDE": ("branches.1.latitude", "less than or equal to 90"),
    "UNKNOWN-BRANCH": ("circles.1.branch", "no branch 'NOPE' in this file or the database"),
    "TERMINAL": (
        "merchants.1.locations.0.terminals.0",
        "the same terminal as merchants.0.locations.0.terminals.0",
    ),
    "SEAT-TAKEN": (
        "merchants.1.circles.0",
        "one merchant per sub-industry per circle: the restaurant seat in 'canary-wharf' is "
        "taken by 'dockside'",
    ),
    "UNKNOWN-CIRCLE": (
        "merchants.1.circles.1",
        "no circle 'riverside' in this file or the database",
    ),
    "IBAN": ("merchants.2.settlement_account.iban", "not a valid IBAN"),
    "MISSPELT": ("members.0.atributes", "not a field here (misspelt?)"),
    "CARD": ("members.1.cards.0.card_token", "the same card token as members.0.cards.0.card_token"),
    "PRICE": ("benefits.0.percent_bps", "price integrity: Members would pay £18.00 on £20.00"),
    "UNKNOWN-MERCHANT": ("benefits.1.merchant", "no merchant 'nobody' in this file"),
}


def line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if f"# {marker}" in line)


def rejected(run: Run, document: Any) -> list[Issue]:
    with pytest.raises(ImportRejected) as caught:
        run(document)
    return caught.value.issues


def test_a_bad_file_is_rejected_whole_naming_every_problem_and_its_line(
    connection: Connection, run: Run
) -> None:
    before = row_counts(connection)

    issues = rejected(run, parse_yaml(BAD, "bad.yaml"))

    found = {(i.path, i.line) for i in issues}
    expected = {(path, line_of(BAD, marker)) for marker, (path, _) in EXPECTED.items()}
    assert found == expected
    by_path = {i.path: i.message for i in issues}
    for path, words in EXPECTED.values():
        assert words in by_path[path], path
    assert [i.line for i in issues] == sorted(i.line or 0 for i in issues)  # in file order
    assert row_counts(connection) == before


def test_json_problems_are_named_with_their_lines(connection: Connection, run: Run) -> None:
    text = json.dumps(yaml.safe_load(BAD), indent=2, default=str)
    lines = text.splitlines()

    issues = rejected(run, parse_json(text, "bad.json"))

    latitude = next(i for i in issues if i.path == "branches.1.latitude")
    assert latitude.line is not None
    assert lines[latitude.line - 1].strip() == '"latitude": 151.5,'
    card = next(i for i in issues if i.path == "members.1.cards.0.card_token")
    assert card.line is not None
    assert '"card_token": "tok_aaaaaaaa11"' in lines[card.line - 1]


def test_a_use_case_refusing_half_way_leaves_nothing_behind(
    connection: Connection, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation passed; the third member's card fails as it is written: every branch, circle,
    merchant and member written before it is gone too."""
    before = row_counts(connection)
    link_card = writer.membership.link_card

    def failing(uow: Any, actor: Any, member: Any, card: Any) -> Any:
        if card.card_token == "tok_5e2c8a1f9d3b7a42":
            raise Conflict("This card is linked to another membership.")
        return link_card(uow, actor, member, card)

    monkeypatch.setattr(writer.membership, "link_card", failing)

    issues = rejected(run, read_file(EXAMPLE))

    assert [(i.path, i.message) for i in issues] == [
        ("members.1.cards.0", "This card is linked to another membership.")
    ]
    assert issues[0].line == line_of_text(EXAMPLE.read_text(), "tok_5e2c8a1f9d3b7a42")
    assert row_counts(connection) == before


def line_of_text(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_importing_the_same_programme_twice_names_what_exists_already(run: Run) -> None:
    run(read_file(EXAMPLE))

    issues = rejected(run, read_file(EXAMPLE))

    messages = {(i.path, i.message) for i in issues}
    assert ("branches.0.code", "a branch with this code exists already") in messages
    assert ("circles.2.code", "a circle with this code exists already") in messages
    assert (
        "merchants.0.locations.0.terminals.0",
        "registered to Dockside Kitchen already",
    ) in messages
    assert ("members.0.bank_ref", "this customer is a member already") in messages
    assert ("members.0.cards.1.card_token", "linked to a membership already") in messages
    assert (
        "merchants.3.circles.1",
        "one merchant per sub-industry per circle: Little Explorers holds the kids_club seat in "
        "'young-parents' already",
    ) in messages


def _example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def _messages(run: Run, data: dict[str, Any]) -> dict[str, str]:
    return {i.path: i.message for i in rejected(run, from_data(data))}


def test_a_seat_needs_the_circles_requirements_met(run: Run) -> None:
    data = _example()
    data["merchants"][6]["locations"][0].update(latitude=51.55, longitude=-0.25)  # Harlesden

    issues = rejected(run, from_data(data))

    assert [(i.path, i.message) for i in issues] == [
        (
            "merchants.6.circles.0",
            "'canary-wharf' requires location_in_circle: no location is inside the circle's "
            "3,000 m: the nearest, 'Canary Fitness, Jubilee Place', is more than 100 km from "
            "the centre",
        )
    ]


def test_each_unmet_requirement_is_its_own_problem(run: Run) -> None:
    data = _example()
    fitness = data["merchants"][6]
    del fitness["reviews"]
    fitness["kyb"] = "pending"

    issues = [i for i in rejected(run, from_data(data)) if i.path == "merchants.6.circles.0"]

    assert [i.message for i in issues] == [
        "'canary-wharf' requires min_review_score: no review score on file; the circle's "
        "minimum is 4.0",
        "'canary-wharf' requires kyb_passed: KYB has not been completed",
    ]


def test_statuses_must_fit_seats_applications_and_benefits(run: Run) -> None:
    data = _example()
    data["merchants"][0]["status"] = "under_review"  # holds a seat; has a live benefit
    data["merchants"][5]["applications"] = [{"circle": "shoreditch", "waitlist": True}]
    data["merchants"][4]["status"] = "applied"  # has an application
    data["benefits"][3]["valid_to"] = "2026-11-21"  # yesterday, in London

    messages = _messages(run, data)

    assert messages["merchants.0.circles"].startswith(
        "a merchant that is under_review holds no seats"
    )
    assert messages["benefits.0.status"] == (
        "an active benefit needs an active merchant; 'dockside-kitchen' is under_review"
    )
    assert (
        messages["merchants.5.applications.0.waitlist"] == "a rejected merchant waits for no slot"
    )
    assert messages["merchants.4.applications"] == (
        "an applied merchant has not applied yet: make it under_review"
    )
    assert messages["benefits.3.valid_to"] == "is in the past (2026-11-22 in Europe/London)"


def test_a_waitlist_needs_a_held_slot(run: Run) -> None:
    data = _example()
    data["merchants"][2]["applications"] = [{"circle": "shoreditch", "waitlist": True}]

    messages = _messages(run, data)

    assert messages == {
        "merchants.2.applications.0.waitlist": "the restaurant seat in 'shoreditch' is free: "
        "list 'shoreditch' under `circles` to take it"
    }


def test_circle_fields_must_fit_the_kind(run: Run) -> None:
    data = _example()
    data["circles"][0]["segment_rule"] = {"attr": "age", "op": "gte", "value": 18}
    del data["circles"][1]["branch"]
    data["circles"][2]["radius_m"] = 1000
    data["circles"][2]["requirements"].append({"kind": "location_in_circle"})
    data["circles"][2]["requirements"].append({"kind": "kyb_passed"})

    messages = _messages(run, data)

    assert messages["circles.0.segment_rule"] == "only segment circles have this"
    assert messages["circles.1.center_latitude"].startswith("give the centre")
    assert messages["circles.2.radius_m"] == "only geographic circles have this"
    assert messages["circles.2.requirements.4.kind"] == "a segment circle has no area to be inside"
    assert messages["circles.2.requirements.5.label"] == (
        "repeats requirement 0; give each of one kind its own label"
    )


def test_codes_made_of_digits_need_quotes_in_yaml(run: Run) -> None:
    text = EXAMPLE.read_text().replace('terminal_id: "DK000002"', "terminal_id: 12345678")

    issues = rejected(run, parse_yaml(text, "program.yaml"))

    assert [(i.path, i.message) for i in issues] == [
        (
            "merchants.0.locations.0.terminals.1.terminal_id",
            "Input should be a valid string (YAML read 12345678: put the value in quotes)",
        )
    ]
    assert issues[0].line == line_of_text(text, "terminal_id: 12345678")


def test_the_file_must_be_a_mapping_of_sections(run: Run) -> None:
    issues = rejected(run, parse_yaml("- just\n- a list\n", "list.yaml"))
    assert issues[0].message.startswith("the file must be a mapping with the sections")

    issues = rejected(run, parse_yaml("format: beyondbank-program/2\nmerchants: {}\n", "f.yaml"))
    assert {(i.path, i.line) for i in issues} == {("format", 1), ("merchants", 2)}


def test_ids_of_the_database_are_not_how_a_file_refers(run: Run) -> None:
    data = _example()
    data["circles"][0]["branch_id"] = "brn_01J00000000000000000000000"
    data["benefits"][0]["merchant_id"] = "mer_01J00000000000000000000000"

    messages = _messages(run, data)

    assert messages == {
        "circles.0.branch_id": "the file names branches by their code: use `branch`",
        "benefits.0.merchant_id": "the file names merchants by their ref: use `merchant`",
    }


def test_an_unreadable_file_names_the_line(tmp_path: Path) -> None:
    from beyondbank.program.source import UnreadableFile

    broken = tmp_path / "broken.yaml"
    broken.write_text("branches:\n  - code: A\n    name: [unclosed\n")
    with pytest.raises(UnreadableFile) as caught:
        read_file(broken)
    assert caught.value.issues[0].line == 4
    assert caught.value.issues[0].message.startswith("not valid YAML")

    broken_json = tmp_path / "broken.json"
    broken_json.write_text('{\n  "branches": [\n    {"code": "A",}\n  ]\n}\n')
    with pytest.raises(UnreadableFile) as caught:
        read_file(broken_json)
    assert caught.value.issues[0].line == 3
    assert caught.value.issues[0].message.startswith("not valid JSON")


def test_a_key_given_twice_is_a_problem_not_silently_the_last(tmp_path: Path) -> None:
    from beyondbank.program.source import UnreadableFile

    twice = tmp_path / "twice.yaml"
    twice.write_text("branches:\n  - code: A\n    name: One\n    code: B\n")
    with pytest.raises(UnreadableFile) as caught:
        read_file(twice)
    assert [(i.path, i.line, i.message) for i in caught.value.issues] == [
        ("branches.0.code", 4, "the key 'code' is given twice in this mapping (first on line 2)")
    ]


def test_a_bad_document_consent_is_one_problem_not_one_per_member(run: Run) -> None:
    data = _example()
    data["consent"]["granted_at"] = "2026-01-15 09:00"  # no time zone

    messages = _messages(run, data)

    assert list(messages) == ["consent.granted_at"]
