"""Standard Webhooks signatures: the specification's published vector, and verify() for receivers."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beyondbank.commerce.webhooks import signing

# The vector every Standard Webhooks reference library tests against (standard-webhooks
# repository, libraries/*/tests): a receiver's library accepts what reproduces it.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specifications_example_signs_to_its_published_signature() -> None:
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_specifications_example_verifies_and_gives_its_id() -> None:
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    assert signing.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP + 10) == SPEC_ID


def test_header_names_are_matched_whatever_their_case() -> None:
    headers = {
        "Webhook-Id": SPEC_ID,
        "WEBHOOK-TIMESTAMP": str(SPEC_TIMESTAMP),
        "Webhook-Signature": SPEC_SIGNATURE,
    }
    assert signing.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP) == SPEC_ID


def test_any_one_of_several_signatures_is_enough() -> None:
    headers = signing.headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    headers["webhook-signature"] = f"v1,bm9wZQ== v1a,c29tZXRoaW5n {headers['webhook-signature']}"
    assert signing.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP) == SPEC_ID


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b: (h, b + b" "), "no matching signature"),
        (lambda h, b: ({**h, "webhook-id": "msg_other"}, b), "no matching signature"),
        (lambda h, b: ({**h, "webhook-timestamp": str(SPEC_TIMESTAMP + 1)}, b), "no matching"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "missing header"),
        (lambda h, b: ({**h, "webhook-timestamp": "yesterday"}, b), "unix seconds"),
        (lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b), "no"),
    ],
)
def test_a_changed_message_is_refused(change, reason: str) -> None:  # type: ignore[no-untyped-def]
    headers = signing.headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    changed_headers, body = change(headers, SPEC_BODY)
    with pytest.raises(signing.WebhookVerificationError, match=reason):
        signing.verify(SPEC_SECRET, changed_headers, body, now=SPEC_TIMESTAMP)


def test_a_message_signed_with_another_secret_is_refused() -> None:
    other = signing.generate_secret()
    headers = signing.headers(other, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize("skew", [-301, 301, 86_400])
def test_a_stale_or_future_timestamp_is_refused_as_a_possible_replay(skew: int) -> None:
    headers = signing.headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    with pytest.raises(signing.WebhookVerificationError, match="tolerance"):
        signing.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP + skew)


def test_a_generated_secret_is_whsec_and_32_random_bytes_of_base64() -> None:
    secrets = {signing.generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_a_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        signing.sign("whsec_not base64!", SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)


@given(
    key=st.binary(min_size=24, max_size=64),
    msg_id=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1),
    timestamp=st.integers(min_value=0, max_value=2**40),
    body=st.binary(max_size=2_000),
)
def test_whatever_is_signed_verifies_and_nothing_else_does(
    key: bytes, msg_id: str, timestamp: int, body: bytes
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = signing.headers(secret, msg_id, timestamp, body)
    assert signing.verify(secret, headers, body, now=timestamp) == msg_id
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(secret, headers, body + b"x", now=timestamp)
