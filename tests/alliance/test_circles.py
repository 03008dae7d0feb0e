"""Branches and circles: creation of both kinds, bad input refused whole, filters, containment,
the detail's seats and coverage, updates, archiving and admission requirements."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from beyondbank.alliance import admission
from beyondbank.alliance.models import (
    AdmissionRequirement,
    ApplicationStatus,
    Branch,
    Circle,
    CircleKind,
    CircleStatus,
    MerchantStatus,
    RequirementKind,
)
from beyondbank.core.authz import Principal, Role
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from tests import factories as f

API = "/api/v1"
PARENTS_RULE = {"all": [{"attr": "children", "op": "gte", "value": 1}]}
# About 1.1 km and 5.5 km north of Canary Wharf.
NEAR = (51.5154, -0.0235)
FAR = (51.5554, -0.0235)


def _count(uow: UnitOfWork, model: Any) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def _headers(settings: Settings, uow: UnitOfWork, user: User) -> dict[str, str]:
    return f.auth(settings, uow, user)


def _geo_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "canary-wharf",
        "name": "Canary Wharf life circle",
        "kind": "geographic",
        "center_latitude": f.CANARY_WHARF[0],
        "center_longitude": f.CANARY_WHARF[1],
    }
    body.update(over)
    return body


# -- branches ----------------------------------------------------------------------------


def test_bank_admin_creates_and_staff_list_branches(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    body = {
        "code": "CW01",
        "name": "Canary Wharf",
        "address": "1 Canada Square, London E14 5AB",
        "latitude": 51.5049,
        "longitude": -0.0197,
        "timezone": "Europe/London",
    }
    created = client.post(f"{API}/branches", json=body, headers=_headers(settings, uow, admin_user))
    assert created.status_code == 201, created.text
    assert created.json()["id"].startswith("brn_")
    again = client.post(f"{API}/branches", json=body, headers=_headers(settings, uow, admin_user))
    assert again.status_code == 409

    analyst = f.make_user(uow, Role.ANALYST)
    listed = client.get(f"{API}/branches", headers=_headers(settings, uow, analyst))
    assert [b["code"] for b in listed.json()["items"]] == ["CW01"]
    refused = client.post(
        f"{API}/branches", json={**body, "code": "X"}, headers=_headers(settings, uow, analyst)
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latitude": 91}, "body.latitude"),
        ({"longitude": -180.5}, "body.longitude"),
        ({"timezone": "Europe/Gotham"}, "body.timezone"),
        ({"code": ""}, "body.code"),
    ],
)
def test_bad_branch_is_a_422_naming_the_field_and_writes_nothing(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    admin_user: User,
    change: dict[str, Any],
    field: str,
) -> None:
    body = {
        "code": "CW01",
        "name": "Canary Wharf",
        "address": "1 Canada Square",
        "latitude": 51.5,
        "longitude": -0.02,
        "timezone": "Europe/London",
        **change,
    }
    before = _count(uow, Branch)
    response = client.post(
        f"{API}/branches", json=body, headers=_headers(settings, uow, admin_user)
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert _count(uow, Branch) == before


# -- creating circles --------------------------------------------------------------------


def test_geographic_circle_defaults_to_3_km_and_the_branch_centre(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    branch = f.make_branch(uow, at=(51.5072, -0.1276))
    response = client.post(
        f"{API}/circles",
        json={
            "code": "trafalgar",
            "name": "Trafalgar",
            "kind": "geographic",
            "branch_id": branch.public_id,
        },
        headers=_headers(settings, uow, admin_user),
    )
    assert response.status_code == 201, response.text
    circle = response.json()
    assert circle["id"].startswith("cir_")
    assert circle["radius_m"] == 3000
    assert (circle["center_latitude"], circle["center_longitude"]) == (51.5072, -0.1276)
    assert circle["branch_id"] == branch.public_id
    assert circle["status"] == "active"
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == circle["id"])
    ).one()
    assert event.action == "circle.created"
    assert event.actor_id == admin_user.public_id


def test_segment_circle_keeps_its_rule(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    response = client.post(
        f"{API}/circles",
        json={
            "code": "parents",
            "name": "Parents' circle",
            "kind": "segment",
            "segment_name": "parents",
            "segment_rule": PARENTS_RULE,
        },
        headers=_headers(settings, uow, admin_user),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["segment_rule"] == PARENTS_RULE
    assert body["radius_m"] is None
    assert body["center_latitude"] is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (_geo_body(center_latitude=95), ["body.center_latitude"]),
        (_geo_body(center_longitude=200), ["body.center_longitude"]),
        (_geo_body(radius_m=-100), ["body.radius_m"]),
        (_geo_body(radius_m=0), ["body.radius_m"]),
        (
            _geo_body(center_latitude=None, center_longitude=None),
            ["body.center_latitude", "body.center_longitude"],
        ),
        (_geo_body(center_longitude=None), ["body.center_longitude"]),
        (_geo_body(segment_rule=PARENTS_RULE), ["body.segment_rule"]),
        (_geo_body(branch_id="brn_nope"), ["body.branch_id"]),
        (
            {"code": "p", "name": "P", "kind": "segment", "segment_name": "parents"},
            ["body.segment_rule"],
        ),
        (
            {
                "code": "p",
                "name": "P",
                "kind": "segment",
                "segment_name": "parents",
                "segment_rule": {"all": [{"attr": "children", "op": "bogus", "value": 1}]},
            },
            ["body.segment_rule"],
        ),
        (
            {
                "code": "p",
                "name": "P",
                "kind": "segment",
                "segment_name": "parents",
                "segment_rule": PARENTS_RULE,
                "radius_m": 500,
            },
            ["body.radius_m"],
        ),
        ({**_geo_body(), "kind": "orbital"}, ["body.kind"]),
    ],
)
def test_bad_circle_is_a_422_naming_each_field_and_writes_nothing(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    admin_user: User,
    body: dict[str, Any],
    fields: list[str],
) -> None:
    before = (_count(uow, Circle), _count(uow, AuditEvent))
    response = client.post(f"{API}/circles", json=body, headers=_headers(settings, uow, admin_user))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/invalid-input"
    assert sorted(e["field"] for e in problem["errors"]) == sorted(fields)
    assert (_count(uow, Circle), _count(uow, AuditEvent)) == before


def test_malformed_segment_rule_error_says_which_part(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    response = client.post(
        f"{API}/circles",
        json={
            "code": "cars",
            "name": "Car owners",
            "kind": "segment",
            "segment_name": "car owners",
            "segment_rule": {
                "any": [{"attr": "car_owner", "op": "eq"}, {"attr": "Fleet", "op": "exists"}]
            },
        },
        headers=_headers(settings, uow, admin_user),
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "body.segment_rule"
    assert "any.0" in error["message"]
    assert "any.1.attr" in error["message"]


def test_duplicate_circle_code_is_a_conflict(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    headers = _headers(settings, uow, admin_user)
    assert client.post(f"{API}/circles", json=_geo_body(), headers=headers).status_code == 201
    again = client.post(f"{API}/circles", json=_geo_body(name="Other"), headers=headers)
    assert again.status_code == 409
    assert "canary-wharf" in again.json()["detail"]


def test_only_bank_admins_create_circles(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    response = client.post(
        f"{API}/circles", json=_geo_body(), headers=_headers(settings, uow, rm_user)
    )
    assert response.status_code == 403


# -- reading circles ---------------------------------------------------------------------


def test_list_filters_by_kind_branch_and_point(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    branch = f.make_branch(uow)
    near = f.make_circle(uow, radius_m=2000, branch_id=branch.id)
    f.make_circle(uow, center=FAR, radius_m=1000)
    segment = f.make_circle(uow, kind=CircleKind.SEGMENT, segment_rule=PARENTS_RULE)
    headers = _headers(settings, uow, admin_user)

    def ids(query: str) -> list[str]:
        response = client.get(f"{API}/circles?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert ids("kind=segment") == [segment.public_id]
    assert ids(f"branch={branch.public_id}") == [near.public_id]
    assert ids(f"contains_lat={NEAR[0]}&contains_lon={NEAR[1]}") == [near.public_id]
    missing = client.get(f"{API}/circles?contains_lat=51.5", headers=headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "query.contains_lon"
    out_of_range = client.get(f"{API}/circles?contains_lat=99&contains_lon=0", headers=headers)
    assert out_of_range.json()["errors"][0]["field"] == "query.contains_lat"


def test_list_pages_with_a_cursor(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    made = [f.make_circle(uow).public_id for _ in range(5)]
    headers = _headers(settings, uow, admin_user)
    first = client.get(f"{API}/circles?limit=2", headers=headers).json()
    second = client.get(
        f"{API}/circles?limit=2&cursor={first['next_cursor']}", headers=headers
    ).json()
    third = client.get(
        f"{API}/circles?limit=2&cursor={second['next_cursor']}", headers=headers
    ).json()
    seen = [c["id"] for page in (first, second, third) for c in page["items"]]
    assert seen == made
    assert third["next_cursor"] is None


def test_circles_containing_a_point_nearest_first(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    wide = f.make_circle(uow, radius_m=10_000)
    close = f.make_circle(uow, center=NEAR, radius_m=500)
    f.make_circle(uow, center=FAR, radius_m=1000)
    archived = f.make_circle(uow, center=NEAR, radius_m=500)
    archived.status = CircleStatus.ARCHIVED
    uow.session.flush()
    response = client.get(
        f"{API}/circles/containing?lat={NEAR[0]}&lon={NEAR[1]}",
        headers=_headers(settings, uow, admin_user),
    )
    assert response.status_code == 200, response.text
    found = response.json()
    assert [c["id"] for c in found] == [close.public_id, wide.public_id]
    assert found[0]["distance_m"] == 0
    assert 1000 < found[1]["distance_m"] < 1200


def test_circle_detail_shows_seats_and_coverage_per_life_domain(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    circle = f.make_circle(uow)
    restaurant = f.make_merchant(uow, sub_industry="restaurant")
    cinema = f.make_merchant(uow, sub_industry="cinema")
    for merchant in (restaurant, cinema):
        f.make_seat(uow, circle, merchant)
    response = client.get(
        f"{API}/circles/{circle.public_id}", headers=_headers(settings, uow, admin_user)
    )
    assert response.status_code == 200, response.text
    detail = response.json()
    seats = {s["sub_industry"]: s for s in detail["seats"]}
    assert seats["restaurant"]["merchant_id"] == restaurant.public_id
    assert seats["cinema"]["domain"] == "entertainment"
    coverage = {c["domain"]: c for c in detail["coverage"]}
    assert list(coverage) == [
        "dining",
        "lodging",
        "transport",
        "travel",
        "shopping",
        "entertainment",
    ]
    assert coverage["dining"]["held"] == ["restaurant"]
    assert "restaurant" not in coverage["dining"]["free"]
    assert "fast_food" in coverage["dining"]["free"]
    assert coverage["lodging"]["held"] == []
    assert coverage["entertainment"]["names"]["zh_CN"] == "娱"


def test_unknown_circle_is_a_404(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    response = client.get(f"{API}/circles/cir_nope", headers=_headers(settings, uow, admin_user))
    assert response.status_code == 404


# -- updating and archiving --------------------------------------------------------------


def test_update_changes_radius_and_re_anchoring_moves_the_centre(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    circle = f.make_circle(uow)
    branch = f.make_branch(uow, at=(51.5, -0.12))
    headers = _headers(settings, uow, admin_user)
    response = client.patch(
        f"{API}/circles/{circle.public_id}",
        json={"radius_m": 5000, "branch_id": branch.public_id, "description": "Moved west"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["radius_m"] == 5000
    assert (body["center_latitude"], body["center_longitude"]) == (51.5, -0.12)
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "circle.updated")
    ).one()
    assert event.before == {
        "radius_m": 3000,
        "branch_id": None,
        "center_latitude": f.CANARY_WHARF[0],
        "center_longitude": f.CANARY_WHARF[1],
        "description": None,
    }
    assert event.after["radius_m"] == 5000


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"radius_m": -1}, "body.radius_m"),
        ({"name": None}, "body.name"),
        ({"center_latitude": 51.0}, "body.center_longitude"),
        ({"segment_rule": PARENTS_RULE}, "body.segment_rule"),
    ],
)
def test_bad_update_is_a_422_and_changes_nothing(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    admin_user: User,
    patch: dict[str, Any],
    field: str,
) -> None:
    circle = f.make_circle(uow)
    response = client.patch(
        f"{API}/circles/{circle.public_id}", json=patch, headers=_headers(settings, uow, admin_user)
    )
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    uow.session.refresh(circle)
    assert circle.radius_m == 3000
    assert circle.center_latitude == f.CANARY_WHARF[0]


def test_archiving_releases_seats_and_withdraws_open_applications(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User, admin: Principal
) -> None:
    circle = f.make_circle(uow)
    holder = f.make_merchant(uow)
    seat = f.make_seat(uow, circle, holder)
    applicant = f.make_merchant(uow, sub_industry="cinema", status=MerchantStatus.UNDER_REVIEW)
    application = admission.submit(uow, admin, applicant, circle)
    headers = _headers(settings, uow, admin_user)
    response = client.post(
        f"{API}/circles/{circle.public_id}/archive",
        json={"reason": "branch closing"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "archived"
    assert response.json()["seats"] == []
    uow.session.refresh(seat)
    uow.session.refresh(application)
    assert seat.released_at is not None
    assert "branch closing" in (seat.release_reason or "")
    assert application.status == ApplicationStatus.WITHDRAWN

    again = client.post(
        f"{API}/circles/{circle.public_id}/archive", json={"reason": "twice"}, headers=headers
    )
    assert again.status_code == 409
    assert again.json()["current_status"] == "archived"
    edit = client.patch(f"{API}/circles/{circle.public_id}", json={"name": "X"}, headers=headers)
    assert edit.status_code == 409
    assert "archived" in edit.json()["detail"]


# -- admission requirements ---------------------------------------------------------------


def test_requirements_are_replaced_as_a_whole(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    circle = f.make_circle(uow)
    headers = _headers(settings, uow, admin_user)
    url = f"{API}/circles/{circle.public_id}/requirements"
    first = client.put(
        url,
        json={
            "requirements": [
                {"kind": "min_review_score", "params": {"min": 4.0}},
                {"kind": "kyb_passed"},
                {"kind": "manual_check", "label": "Visited the premises"},
            ]
        },
        headers=headers,
    )
    assert first.status_code == 200, first.text
    assert [r["kind"] for r in first.json()] == ["min_review_score", "kyb_passed", "manual_check"]
    second = client.put(
        url,
        json={"requirements": [{"kind": "min_review_score", "params": {"min": 4.5}}]},
        headers=headers,
    )
    assert second.json() == [{"kind": "min_review_score", "label": "", "params": {"min": 4.5}}]
    assert client.get(url, headers=headers).json() == second.json()
    assert _count(uow, AdmissionRequirement) == 1


@pytest.mark.parametrize(
    ("requirement", "field"),
    [
        ({"kind": "min_review_score", "params": {"min": 7}}, "body.requirements.1.params"),
        ({"kind": "min_review_score", "params": {}}, "body.requirements.1.params"),
        ({"kind": "min_years_trading", "params": {"years": -2}}, "body.requirements.1.params"),
        (
            {"kind": "sub_industry_allowed", "params": {"codes": ["spaceport"]}},
            "body.requirements.1.params",
        ),
        ({"kind": "sub_industry_allowed", "params": {}}, "body.requirements.1.params"),
        ({"kind": "kyb_passed", "params": {"unexpected": 1}}, "body.requirements.1.params"),
        ({"kind": "manual_check"}, "body.requirements.1.label"),
        ({"kind": "licence_verified"}, "body.requirements.1.label"),
        ({"kind": "teleport"}, "body.requirements.1.kind"),
    ],
)
def test_bad_requirement_is_a_422_naming_it_and_keeps_the_old_ones(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    admin_user: User,
    requirement: dict[str, Any],
    field: str,
) -> None:
    circle = f.make_circle(uow)
    f.make_requirement(uow, circle, RequirementKind.LICENCE_VERIFIED)
    response = client.put(
        f"{API}/circles/{circle.public_id}/requirements",
        json={"requirements": [{"kind": "licence_verified"}, requirement]},
        headers=_headers(settings, uow, admin_user),
    )
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert _count(uow, AdmissionRequirement) == 1


def test_a_segment_circle_cannot_require_a_location_inside_it(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    circle = f.make_circle(uow, kind=CircleKind.SEGMENT, segment_rule=PARENTS_RULE)
    response = client.put(
        f"{API}/circles/{circle.public_id}/requirements",
        json={"requirements": [{"kind": "location_in_circle"}]},
        headers=_headers(settings, uow, admin_user),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.requirements.0.kind"
