"""Setting the stage through the public API, as another system or another person would: a
business applies to a circle while the bank admin is looking at the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.browser.conftest import Served

# IBANs whose check digits are right (the service validates them with schwifty).
IBANS = ("GB33BUKB20201555555555", "GB94BARC10201530093459", "GB29NWBK60161331926819")


@dataclass(frozen=True)
class Applicant:
    merchant_id: str
    application_id: str
    trading_name: str


def staff_client(served: Served, role: str = "bank_admin") -> httpx.Client:
    email = next(login.email for login in served.demo.logins if login.role == role)
    client = httpx.Client(base_url=f"{served.url}/api/v1", timeout=15)
    token = client.post("/auth/token", json={"email": email, "password": served.demo.password})
    assert token.status_code == 200, token.text
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def circle_named(client: httpx.Client, name: str) -> dict[str, Any]:
    circles = client.get("/circles", params={"limit": 100}).json()["items"]
    return next(c for c in circles if c["name"] == name)


def apply(
    client: httpx.Client, circle: dict[str, Any], *, trading_name: str, sub_industry: str, n: int
) -> Applicant:
    """A business that meets every requirement a circle sets, applying for one sub-industry."""
    created = client.post(
        "/merchants",
        json={
            "legal_name": f"{trading_name} Ltd",
            "trading_name": trading_name,
            "sub_industry": sub_industry,
            "timezone": "Europe/London",
            "founded_on": "2015-03-01",
            "licence_number": f"LIC-{n:06d}",
            "settlement_account": {"iban": IBANS[n % len(IBANS)], "account_name": trading_name},
            "locations": [
                {
                    "name": trading_name,
                    "address_line": f"{n} High Street",
                    "city": "London",
                    "country": "GB",
                    "latitude": circle["center_latitude"],
                    "longitude": circle["center_longitude"],
                }
            ],
        },
    )
    assert created.status_code == 201, created.text
    merchant_id = created.json()["id"]
    for path, body in (
        ("kyb", {"result": "passed", "note": "Companies House and sanctions checks clear"}),
        ("licence-verification", {"verified": True, "note": "Licence seen"}),
    ):
        answer = client.post(f"/merchants/{merchant_id}/{path}", json=body)
        assert answer.status_code == 200, answer.text
    reviews = {"score": "4.6", "count": 212, "source": "Google reviews"}
    assert client.put(f"/merchants/{merchant_id}/reviews", json=reviews).status_code == 200
    application = client.post(
        "/applications", json={"merchant_id": merchant_id, "circle_id": circle["id"]}
    )
    assert application.status_code == 201, application.text
    return Applicant(merchant_id, application.json()["id"], trading_name)


def every_day_benefit(served: Served, title: str) -> str:
    """A voucher for any day and hour, made by the merchant's admin and approved by the bank, so
    the counter journey works whatever day the tests run."""
    merchant = staff_client(served, "merchant_admin")
    today = datetime.now(ZoneInfo("Europe/London")).date()
    body = {
        "title": title,
        "kind": "percent_off",
        "channels": ["voucher"],
        "valid_from": today.isoformat(),
        "valid_to": (today + timedelta(days=60)).isoformat(),
        "weekdays": [1, 2, 3, 4, 5, 6, 7],
        "hour_start": 0,
        "hour_end": 24,
        "percent_bps": 1500,
        "max_reward_minor": 1500,
        "member_limit": 5,
        "limit_period": "day",
        "budget_minor": 100_000,
        "regular_price_minor": 2000,
        "public_discount_bps": 500,
    }
    created = merchant.post("/benefits", json=body)
    assert created.status_code == 201, created.text
    benefit_id = str(created.json()["id"])
    assert merchant.post(f"/benefits/{benefit_id}/submit").status_code == 200
    approved = staff_client(served).post(
        f"/benefits/{benefit_id}/approve", json={"merchant_share_bps": 8000, "commission_bps": 200}
    )
    assert approved.status_code == 200, approved.text
    return benefit_id
