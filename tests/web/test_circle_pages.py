"""Circle pages: the coverage grid, creating a circle through the form (errors beside the fields,
what was typed kept, nothing written), and setting admission requirements."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from beyondbank.alliance import circles as circle_cases
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import CircleKind, RequirementKind
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.web.conftest import World, waitlisted
from tests.web.pages import csrf_from, field_error, sign_in, submit, text_of


def _circle_count(uow: UnitOfWork) -> int:
    rows, _ = circle_cases.list_circles(uow, circle_cases.CircleFilter(), cursor=None, limit=200)
    return len(rows)


def test_coverage_grid_shows_every_sub_industry_held_or_free(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    waitlisted(uow, world, f.make_merchant(uow, trading_name="Second Diner"))
    sign_in(client, world.analyst)
    page = client.get(f"/console/circles/{world.circle.public_id}")
    assert page.status_code == 200
    cells = re.findall(r'<li class="slot (held|free)">(.*?)</li>', page.text, re.S)
    assert len(cells) == 50  # every sub-industry of the six life domains
    held = [text_of(body) for state, body in cells if state == "held"]
    assert held == ["Restaurants ✓ Held by Dockside Diner"]
    free = [text_of(body) for state, body in cells if state == "free"]
    assert "Fast food and takeaway ○ Free" in free
    # Each domain says how much of it is covered, in words as well as colour.
    text = text_of(page.text)
    assert "Dining 吃 1 of 5 held" in text
    assert "Shopping 购 0 of" in text
    assert "1 of 50 sub-industry slots are held" in text
    # Analysts read circles but not the pipeline: no waitlist names for them.
    assert "Second Diner" not in text


def test_circle_page_lists_seats_waitlists_and_requirements(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    waitlisted(uow, world, f.make_merchant(uow, trading_name="Second Diner"))
    sign_in(client, world.rm)
    text = text_of(client.get(f"/console/circles/{world.circle.public_id}").text)
    assert "Restaurants Dining Dockside Diner active" in text
    assert "Waitlists per slot Restaurants Second Diner waiting" in text
    assert "1 waiting" in text
    assert "Review score of at least 4.0" in text
    assert "The sub-industry's slot is free" in text


def test_bank_admin_creates_a_circle_through_the_form(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    response = submit(
        client,
        "/console/circles/new",
        "/console/circles",
        {
            "code": "greenwich",
            "name": "Greenwich",
            "kind": "geographic",
            "center_latitude": "51.4826",
            "center_longitude": "-0.0077",
            "radius_m": "2500",
            "description": "Around the market",
        },
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    assert "Circle Greenwich created" in page.text
    circle = alliance.get_circle(uow, response.headers["location"].rsplit("/", 1)[1])
    assert (circle.code, circle.radius_m, circle.kind) == ("greenwich", 2500, CircleKind.GEOGRAPHIC)
    assert circle.center_latitude == 51.4826


def test_a_circle_anchored_on_a_branch_takes_its_centre(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    branch = f.make_branch(uow, at=(51.5155, -0.0922))
    sign_in(client, world.admin)
    form = client.get("/console/circles/new").text
    assert f'<option value="{branch.public_id}">' in form
    response = submit(
        client,
        "/console/circles/new",
        "/console/circles",
        {"code": "bank", "name": "Bank", "kind": "geographic", "branch_id": branch.public_id},
    )
    assert response.status_code == 303
    circle = alliance.get_circle(uow, response.headers["location"].rsplit("/", 1)[1])
    assert (circle.center_latitude, circle.radius_m) == (51.5155, 3000)


def test_invalid_circle_input_is_shown_beside_each_field_and_nothing_is_written(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    before = _circle_count(uow)
    response = submit(
        client,
        "/console/circles/new",
        "/console/circles",
        {
            "code": "no spaces allowed",
            "name": "Riverside <b>",
            "kind": "geographic",
            "center_latitude": "95",
            "center_longitude": "-0.01",
            "radius_m": "-5",
        },
    )
    assert response.status_code == 422
    html = response.text
    assert field_error(html, "circle-code") == (
        "Use letters, digits, dots, dashes and underscores only, starting with a letter or digit."
    )
    assert field_error(html, "circle-center-latitude") == "At most 90."
    assert field_error(html, "circle-radius-m") == "More than 0."
    assert field_error(html, "circle-name") is None
    # The field is marked invalid and points at its error for screen readers.
    assert re.search(
        r'id="circle-code" name="code" type="text" value="no spaces allowed" required '
        r'aria-describedby="circle-code-hint circle-code-error" aria-invalid="true"',
        html,
    )
    # What was typed is kept (escaped), the kind choice too.
    assert 'value="Riverside &lt;b&gt;"' in html
    assert 'value="95"' in html
    assert 'value="-5"' in html
    assert 'value="geographic" id="circle-kind" checked' in html
    assert _circle_count(uow) == before


def test_the_services_field_errors_land_beside_the_fields(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    """A geographic circle needs a centre or a branch: the service says so, per field."""
    sign_in(client, world.admin)
    before = _circle_count(uow)
    response = submit(
        client,
        "/console/circles/new",
        "/console/circles",
        {"code": "nowhere", "name": "Nowhere", "kind": "geographic", "segment_name": "parents"},
    )
    assert response.status_code == 422
    html = response.text
    message = "required unless the circle is anchored on a branch"
    assert field_error(html, "circle-center-latitude") == message
    assert field_error(html, "circle-center-longitude") == message
    assert field_error(html, "circle-segment-name") == "only segment circles have this"
    assert "The circle&#39;s fields do not fit its kind." in html
    assert _circle_count(uow) == before


def test_a_segment_rule_that_is_not_json_is_named(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    response = submit(
        client,
        "/console/circles/new",
        "/console/circles",
        {
            "code": "parents",
            "name": "Parents",
            "kind": "segment",
            "segment_name": "parents",
            "segment_rule": "{all: children}",
        },
    )
    assert response.status_code == 422
    assert (field_error(response.text, "circle-segment-rule") or "").startswith("Not valid JSON")
    assert "{all: children}</textarea>" in response.text


def test_a_segment_circle_with_its_rule(client: TestClient, world: World, uow: UnitOfWork) -> None:
    sign_in(client, world.admin)
    response = submit(
        client,
        "/console/circles/new",
        "/console/circles",
        {
            "code": "parents",
            "name": "Parents",
            "kind": "segment",
            "segment_name": "parents",
            "segment_rule": '{"all": [{"attr": "children", "op": "gte", "value": 1}]}',
        },
    )
    assert response.status_code == 303, response.text
    circle = alliance.get_circle(uow, response.headers["location"].rsplit("/", 1)[1])
    assert circle.segment_rule == {"all": [{"attr": "children", "op": "gte", "value": 1}]}


def test_a_taken_code_is_a_conflict_explained_on_the_form(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    before = _circle_count(uow)
    response = submit(
        client,
        "/console/circles/new",
        "/console/circles",
        {
            "code": "canary-wharf",
            "name": "Again",
            "kind": "geographic",
            "center_latitude": "51.5",
            "center_longitude": "0",
        },
    )
    assert response.status_code == 409
    assert "A circle with the code &#39;canary-wharf&#39; exists already." in response.text
    assert 'value="Again"' in response.text
    assert _circle_count(uow) == before


def test_only_bank_admins_create_circles(client: TestClient, world: World) -> None:
    sign_in(client, world.rm)
    page = client.get("/console/circles")
    assert "Create a circle" not in page.text
    refused = client.post(
        "/console/circles",
        data={"code": "x", "name": "X", "kind": "segment", "csrf_token": csrf_from(page.text)},
    )
    assert refused.status_code == 403


def test_setting_admission_requirements(client: TestClient, world: World, uow: UnitOfWork) -> None:
    sign_in(client, world.admin)
    path = f"/console/circles/{world.circle.public_id}"
    form = client.get(path).text
    # The form starts from what the circle sets now.
    assert 'name="min_review_score" value="true" checked' in form
    assert 'name="min_review_score.min" type="text" value="4.0"' in form
    response = submit(
        client,
        path,
        f"{path}/requirements",
        {
            "slot_free": "true",
            "kyb_passed": "true",
            "min_review_count": "true",
            "min_review_count.min": "25",
            "sub_industry_allowed": "true",
            "sub_industry_allowed.domains": ["dining", "shopping"],
            "manual_check.0": "Premises visited",
        },
    )
    assert response.status_code == 303, response.text
    uow.session.expire_all()
    circle = alliance.get_circle(uow, world.circle.public_id)
    got = {(r.kind, r.label): r.params for r in circle.requirements}
    assert got == {
        (RequirementKind.SLOT_FREE, ""): {},
        (RequirementKind.KYB_PASSED, ""): {},
        (RequirementKind.MIN_REVIEW_COUNT, ""): {"min": 25.0},
        (RequirementKind.SUB_INDUSTRY_ALLOWED, ""): {
            "domains": ["dining", "shopping"],
            "codes": [],
        },
        (RequirementKind.MANUAL_CHECK, "Premises visited"): {},
    }
    text = text_of(client.get(path).text)
    assert "Admission requirements of Canary Wharf saved." in text
    assert "Confirmed by the relationship manager: Premises visited" in text


def test_a_bad_requirement_parameter_is_shown_beside_it(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    path = f"/console/circles/{world.circle.public_id}"
    response = submit(
        client,
        path,
        f"{path}/requirements",
        {"min_review_score": "true", "min_review_score.min": "7", "sub_industry_allowed": "true"},
    )
    assert response.status_code == 422
    assert "less than or equal to 5" in (
        field_error(response.text, "requirements-min-review-score-min") or ""
    )
    assert "name the allowed `domains`" in (
        field_error(response.text, "requirements-sub-industry-allowed-domains") or ""
    )
    assert 'value="7"' in response.text
    uow.session.expire_all()
    kinds = {r.kind for r in alliance.get_circle(uow, world.circle.public_id).requirements}
    assert RequirementKind.LOCATION_IN_CIRCLE in kinds  # unchanged
