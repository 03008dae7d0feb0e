"""Setting the stage through the public API, as another system or another person would: a
business applies to a circle while the bank admin is looking at the console."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
