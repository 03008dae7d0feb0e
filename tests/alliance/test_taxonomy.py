"""The shipped taxonomy: six life domains, every MCC a real ISO 18245 code, none in two places."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from beyondbank.alliance.taxonomy import TAXONOMY_FILE, LifeDomain, taxonomy
from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f


def _raw_sub_industries() -> list[dict[str, object]]:
    raw = yaml.safe_load(TAXONOMY_FILE.read_text(encoding="utf-8"))
    return [s for d in raw["domains"] for s in d["sub_industries"]]


def test_every_mcc_is_in_the_iso_18245_list(shared_data: Path) -> None:
    with (shared_data / "mcc_codes.csv").open(newline="", encoding="utf-8") as handle:
        known = {row["mcc"] for row in csv.DictReader(handle)}
    unknown = [
        (s.code, mcc) for s in taxonomy().sub_industries for mcc in s.mcc if mcc not in known
    ]
    assert unknown == []


def test_exactly_the_six_life_domains_in_order() -> None:
    assert [d.code for d in taxonomy().domains] == list(LifeDomain)
    assert len(taxonomy().domains) == 6
    for domain in taxonomy().domains:
        assert set(domain.names) == {"en", "zh_CN"}
        assert domain.sub_industries, domain.code


def test_no_mcc_belongs_to_two_sub_industries() -> None:
    # Read the file itself: the loaded index keeps only one sub-industry per code.
    counts = Counter(str(mcc) for s in _raw_sub_industries() for mcc in s["mcc"])  # type: ignore[attr-defined]
    assert [mcc for mcc, n in counts.items() if n > 1] == []


def test_sub_industry_codes_are_unique_and_named_in_both_languages() -> None:
    codes = Counter(str(s["code"]) for s in _raw_sub_industries())
    assert [code for code, n in codes.items() if n > 1] == []
    for sub in _raw_sub_industries():
        # A comma in an unquoted flow mapping silently splits a name into two keys.
        names = sub["name"]
        assert isinstance(names, dict), sub["code"]
        assert set(names) == {"en", "zh_CN"}, sub["code"]
        assert all(isinstance(v, str) and v for v in names.values()), sub["code"]
    for sub in taxonomy().sub_industries:
        assert all(len(m) == 4 and m.isdigit() for m in sub.mcc), sub.code


def test_taxonomy_endpoint_serves_domains_with_both_names(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    headers = f.auth(settings, uow, f.make_user(uow, Role.ANALYST))
    response = client.get("/api/v1/taxonomy", headers=headers)
    assert response.status_code == 200, response.text
    domains = response.json()["domains"]
    assert [d["code"] for d in domains] == [d.value for d in LifeDomain]
    dining = domains[0]
    assert dining["names"] == {"en": "Dining", "zh_CN": "吃"}
    restaurant = next(s for s in dining["sub_industries"] if s["code"] == "restaurant")
    assert restaurant["mcc"] == ["5812"]


def test_taxonomy_needs_a_signed_in_caller(client: TestClient) -> None:
    response = client.get("/api/v1/taxonomy")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
