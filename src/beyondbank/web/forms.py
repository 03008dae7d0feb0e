"""Forms on pages: the posted fields, validation with the areas' own input schemas (so errors name
the same fields as the API's), and what the person typed kept with each field's error beside it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from beyondbank.core.errors import Problem
from beyondbank.web.i18n import N_, _
from beyondbank.web.session import CSRF_FIELD

M = TypeVar("M", bound=BaseModel)
REQUIRED = N_("This is required.")

# Service problems name fields by where they sat in an API request; a form has only the name.
_LOCATION_PREFIXES = ("body.", "query.", "path.")


@dataclass(frozen=True)
class Posted:
    """The fields of a posted form as typed (the CSRF token left out); a field may repeat."""

    fields: dict[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def typed(self) -> dict[str, str | list[str]]:
        """Everything typed, for re-rendering: single fields as text, repeated ones as lists."""
        return {k: v[0] if len(v) == 1 else list(v) for k, v in self.fields.items()}


async def read_posted(request: Request) -> Posted:
    form = await request.form()
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if key != CSRF_FIELD and isinstance(value, str):
            fields.setdefault(key, []).append(value)
    return Posted(fields)


PostedForm = Annotated[Posted, Depends(read_posted)]


@dataclass
class Form:
    """One form on a page: what was typed, each field's error, and a problem in words."""

    name: str  # unique on the page: element ids start with it
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    # Errors about fields this form does not show (reported in its summary instead).
    other_errors: list[str] = field(default_factory=list)

    def value(self, name: str, default: str = "") -> str:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, list):
            return str(value[-1]) if value else default
        return str(value)

    def chosen(self, name: str) -> list[str]:
        """The values ticked for a field that takes several (checkboxes)."""
        value = self.values.get(name)
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    def id(self, name: str) -> str:
        return f"{self.name}-{name.replace('.', '-').replace('_', '-')}"

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.problem or self.other_errors)

    def absorb(self, problem: Problem, shown: Iterable[str] = ()) -> None:
        """Take a service's problem: its words for the summary, its field errors beside the fields."""
        self.problem = problem.detail
        names = set(shown) | set(self.values)
        for error in problem.errors:
            name = field_name(error.field)
            if name in names:
                self.errors.setdefault(name, error.message)
            else:
                self.other_errors.append(f"{name}: {error.message}")


def field_name(path: str) -> str:
    for prefix in _LOCATION_PREFIXES:
        if path.startswith(prefix):
            return path.removeprefix(prefix)
    return path


def nested(values: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The named fields as a request body: blanks (or only spaces) left out, so defaults apply and
    a required field says it is required; dotted names nested.

    `consent.accepted` becomes `{"consent": {"accepted": ...}}`, as the API's JSON would be.
    """
    body: dict[str, Any] = {}
    for name in names:
        value = values.get(name)
        if value is None or value == [] or (isinstance(value, str) and not value.strip()):
            continue
        target = body
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return body


def validate(
    model: type[M],
    body: Mapping[str, Any],
    form: Form,
    *,
    messages: Mapping[str, str] | None = None,
) -> M | None:
    """The body checked by the area's own schema; None, with each field's error on the form, if not.

    `messages` gives a field its own wording, for any error (`"consent.accepted"`: "tick the box
    to agree" beats "required") or for one kind of error (`"code:string_pattern_mismatch"`).
    """
    try:
        return model.model_validate(dict(body))
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "form"
            own = messages or {}
            text = own.get(f"{name}:{error['type']}") or own.get(name) or _message(error)
            form.errors.setdefault(name, text)
        return None


# Pydantic's own messages are English; the kinds a person meets on a form, in their language.
# The placeholders are the error's context (`min_length`, `ge`, `expected`, ...).
_PYDANTIC_MESSAGES = {
    "string_too_short": N_("At least %(min_length)s characters."),
    "string_too_long": N_("At most %(max_length)s characters."),
    "too_long": N_("At most %(max_length)s items."),
    "too_short": N_("At least %(min_length)s items."),
    "int_parsing": N_("A whole number, in digits."),
    "int_type": N_("A whole number, in digits."),
    "int_from_float": N_("A whole number, in digits."),
    "float_parsing": N_("A number, in digits."),
    "decimal_parsing": N_("A number, in digits."),
    "decimal_type": N_("A number, in digits."),
    "decimal_max_places": N_("At most %(decimal_places)s digits after the decimal point."),
    "greater_than": N_("More than %(gt)s."),
    "greater_than_equal": N_("At least %(ge)s."),
    "less_than": N_("Less than %(lt)s."),
    "less_than_equal": N_("At most %(le)s."),
    "date_parsing": N_("A date, as YYYY-MM-DD."),
    "date_from_datetime_parsing": N_("A date, as YYYY-MM-DD."),
    "date_type": N_("A date, as YYYY-MM-DD."),
    "datetime_parsing": N_("A date and time, as YYYY-MM-DD HH:MM."),
    "datetime_from_date_parsing": N_("A date and time, as YYYY-MM-DD HH:MM."),
    "bool_parsing": N_("Yes or no."),
    "enum": N_("One of: %(expected)s."),
    "literal_error": N_("One of: %(expected)s."),
    "string_pattern_mismatch": N_("Not in the form expected here."),
    "value_error": N_("%(error)s"),
}


def _plain(value: object) -> str:
    """A limit as a person writes it: 90, not 90.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _message(error: Any) -> str:
    kind = error.get("type")
    typed = error.get("input")
    if kind == "missing" or (kind == "string_too_short" and not str(typed or "").strip()):
        return _(REQUIRED)
    wording = _PYDANTIC_MESSAGES.get(str(kind))
    if wording is not None:
        context = {k: _plain(v) for k, v in (error.get("ctx") or {}).items()}
        try:
            return _(wording) % context
        except (KeyError, ValueError, TypeError):
            pass  # a context without the placeholder: pydantic's own words below
    return str(error.get("msg", _("Not valid."))).removeprefix("Value error, ")
