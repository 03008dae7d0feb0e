"""The program file's entries: the areas' own input schemas, with references by the file's codes.

Each entry extends the schema the API validates the same thing with (`BranchIn`, `CircleIn`,
`MerchantIn`, `BankEnrolIn`, `BenefitIn`), so a field means and checks exactly what it does in
the API. What the file adds is what the API expresses by database ids or by later calls:
references by code (`branch`, `circles`, `merchant`, `target_circles`), a merchant's reviews,
verification and status, a member's cards, a benefit's status.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import EmailStr, Field, field_validator, model_validator

from beyondbank.alliance.models import KybStatus, MerchantStatus
from beyondbank.alliance.schemas import (
    BankConsentIn,
    BankEnrolIn,
    BranchIn,
    CardIn,
    CircleIn,
    Code,
    Input,
    MerchantIn,
    Reason,
    RequirementIn,
    ReviewsIn,
)
from beyondbank.benefits.models import BenefitStatus
from beyondbank.benefits.schemas import BenefitIn

FORMAT: Final = "beyondbank-program/1"
SECTIONS = ("branches", "circles", "merchants", "members", "benefits")


class ProgramHeader(Input):
    """The document's own fields, besides its sections."""

    format: Literal["beyondbank-program/1"] = FORMAT
    description: str | None = Field(default=None, max_length=4000)
    consent: BankConsentIn | None = Field(
        default=None, description="The consent of every member that does not give its own"
    )


class BranchEntry(BranchIn):
    """A branch, exactly as `POST /branches` takes it; circles refer to it by `code`."""


class CircleEntry(CircleIn):
    branch: Code | None = Field(
        default=None, description="The anchor branch's code, in this file or the database"
    )
    requirements: list[RequirementIn] = Field(default_factory=list, max_length=50)

    @field_validator("branch_id")
    @classmethod
    def _by_code(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("the file names branches by their code: use `branch`")
        return value


class ApplicationEntry(Input):
    """An open application to a circle: under review, or waiting for the slot another holds."""

    circle: Code
    waitlist: bool = Field(
        default=False,
        description="The slot is held by another merchant: join its waitlist "
        "(every other requirement must be met)",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"circle": value} if isinstance(value, str) else value


class MerchantEntry(MerchantIn):
    ref: Code = Field(description="The file's name for the merchant; benefits refer to it")
    status: MerchantStatus = MerchantStatus.ACTIVE
    status_reason: Reason | None = None
    reviews: ReviewsIn | None = None
    licence_verified: bool = Field(
        default=False, description="The bank has verified `licence_number`"
    )
    kyb: KybStatus = KybStatus.PENDING
    manager: EmailStr | None = Field(
        default=None, description="The relationship manager's email (an existing user)"
    )
    circles: list[Code] = Field(
        default_factory=list, max_length=500, description="Circles where it holds its seat"
    )
    applications: list[ApplicationEntry] = Field(default_factory=list, max_length=500)


class MemberEntry(BankEnrolIn):
    """A member, exactly as `POST /members` enrols one, with the card tokens to link."""

    cards: list[CardIn] = Field(default_factory=list, max_length=20)


class BenefitEntry(BenefitIn):
    ref: Code | None = Field(default=None, description="Optional name, for messages")
    merchant: Code = Field(description="The merchant's `ref` in this file")
    target_circles: list[Code] = Field(
        default_factory=list, max_length=100, description="Circle codes; empty = every member"
    )
    status: BenefitStatus = BenefitStatus.ACTIVE
    status_reason: str | None = Field(default=None, min_length=3, max_length=2000)

    @field_validator("merchant_id")
    @classmethod
    def _merchant_by_ref(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("the file names merchants by their ref: use `merchant`")
        return value

    @field_validator("target_circle_ids")
    @classmethod
    def _circles_by_code(cls, value: list[str]) -> list[str]:
        if value:
            raise ValueError("the file names circles by their code: use `target_circles`")
        return value


ENTRY_MODELS: dict[str, type[Input] | type[BenefitIn]] = {
    "branches": BranchEntry,
    "circles": CircleEntry,
    "merchants": MerchantEntry,
    "members": MemberEntry,
    "benefits": BenefitEntry,
}
