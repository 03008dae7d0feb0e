"""The viewer's language: chosen from the browser's Accept-Language or the language switch,
kept across sign-in, money and dates written for that language, and complete catalogs."""

from __future__ import annotations

import enum
import importlib
import pkgutil
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import beyondbank
from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.sso import issue_demo_sso_token
from beyondbank.web import forms, i18n, translations
from beyondbank.web.templating import money, when, words
from beyondbank.web.words import WORDS
from tests import factories as f
from tests.web.pages import csrf_from, sign_in


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("zh-Hans-CN", "zh_CN"),
        ("zh", "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, zh-CN;q=0.5", "zh_CN"),  # French is not offered; Chinese comes next
        ("en;q=0.3, zh-CN;q=0.8", "zh_CN"),  # the higher quality wins, not the first named
        ("zh-TW", None),  # Traditional Chinese readers are not given Simplified
        ("de, fr", None),
        ("", None),
        ("zh-CN;q=abc, en", "en"),  # a malformed quality is ignored, not an error
    ],
)
def test_accept_language_picks_one_of_ours(header: str, language: str | None) -> None:
    assert i18n.from_accept_language(header) == language


def test_the_browsers_language_chooses_the_pages_language(client: TestClient) -> None:
    chinese = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    english = client.get("/login", headers={"Accept-Language": "en-GB"})
    assert '<html lang="zh-CN">' in chinese.text
    assert '<html lang="en">' in english.text
    sign_in_zh = i18n.catalog("zh_CN").gettext("Sign in")
    assert sign_in_zh != "Sign in"  # the catalog translates it
    assert sign_in_zh in chinese.text
    assert sign_in_zh not in english.text


def test_the_language_switch_is_kept_across_sign_in(client: TestClient, uow: UnitOfWork) -> None:
    admin = f.make_user(uow, Role.BANK_ADMIN)
    page = client.get("/login?next=/console/circles", headers={"Accept-Language": "en"})
    switched = client.post(
        "/language",
        data={
            "lang": "zh_CN",
            "next": "/login?next=/console/circles",
            "csrf_token": csrf_from(page.text),
        },
        headers={"Accept-Language": "en"},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/login?next=/console/circles"
    sign_in(client, admin)
    console = client.get("/console/circles", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in console.text
    assert i18n.catalog("zh_CN").gettext("Circles") in console.text
    # The switch offers English back, named in English.
    assert 'value="en"' in console.text
    assert ">English<" in console.text


def test_the_switch_refuses_other_sites_and_unknown_languages(client: TestClient) -> None:
    page = client.get("/login")
    response = client.post(
        "/language",
        data={"lang": "xx", "next": "https://evil.example/", "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"  # not an open redirect
    assert '<html lang="en">' in client.get("/login").text


def test_the_switch_needs_the_csrf_token(client: TestClient) -> None:
    response = client.post("/language", data={"lang": "zh_CN"}, follow_redirects=False)
    assert response.status_code == 403


def test_money_and_time_are_written_for_the_readers_language() -> None:
    moment = datetime(2026, 11, 22, 14, 5, tzinfo=UTC)
    assert money(123456, "GBP", i18n.format_locale("en")) == "£1,234.56"
    assert money(123456, "CNY", i18n.format_locale("zh_CN")) == "¥1,234.56"
    assert "2026年11月22日" in when(moment, "Asia/Shanghai", i18n.format_locale("zh_CN"))
    assert "22:05" in when(moment, "Asia/Shanghai", i18n.format_locale("zh_CN"))
    assert when(moment, "Europe/London", i18n.format_locale("en")).startswith("22 Nov 2026")


def test_code_translates_with_placeholders_in_the_viewers_language() -> None:
    message = "Welcome to the alliance. Your member number is %(n)s."
    translated = i18n.catalog("zh_CN").gettext(message)
    i18n.use_language("zh_CN")
    try:
        assert i18n.gettext(message, n="M-1") == translated % {"n": "M-1"}
    finally:
        i18n.use_language("en")
    assert i18n.gettext(message, n="M-1") == "Welcome to the alliance. Your member number is M-1."


def test_the_catalogs_are_complete() -> None:
    """Every string the pages mark is in both catalogs, translated, with its placeholders."""
    gaps = translations.check()
    assert not gaps, "\n".join(f"{g.language}: {g.msgid!r}: {g.reason}" for g in gaps[:40])


def test_placeholders_are_compared_by_name() -> None:
    assert translations.placeholders("%(n)s of %(total)d, 5%% off") == {"n", "total"}
    assert translations.placeholders("%s and %d") == {"%s", "%d"}


def _business_enums() -> dict[str, str]:
    """Every string enum value of the business areas, with the enum that defines it."""
    found: dict[str, str] = {}
    for info in pkgutil.walk_packages(beyondbank.__path__, "beyondbank."):
        if ".demo" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, enum.Enum)
                and issubclass(value, str)
                and value.__module__ == module.__name__
            ):
                found.update({str(m.value): f"{module.__name__}.{name}" for m in value})
    return found


def test_every_status_and_kind_has_words_to_translate() -> None:
    """Badges show statuses and kinds through `words`: each code has a marked English phrase
    (permission scopes and event names, never shown as words, are left out)."""
    shown = {v: where for v, where in _business_enums().items() if ":" not in v and "." not in v}
    missing = sorted(f"{v} ({where})" for v, where in shown.items() if v not in WORDS)
    assert not missing, f"add to web/words.py: {missing}"
    i18n.use_language("zh_CN")
    try:
        assert words("under_review") == i18n.catalog("zh_CN").gettext("under review")
        assert words("under_review") != "under review"
    finally:
        i18n.use_language("en")
    assert words("under_review") == "under review"
    assert words("not_a_code") == "not a code"


def test_every_kind_of_object_in_the_audit_trail_has_words() -> None:
    """The audit trail's object-type filter and rows word each kind (not `audit_visit`)."""
    recorded = {
        kind
        for path in Path(beyondbank.__file__).parent.rglob("*.py")
        for kind in re.findall(r'object_type="([a-z_]+)"', path.read_text())
    }
    assert {"application", "interaction", "audit_visit", "corrective_action"} <= recorded
    assert sorted(recorded - set(WORDS)) == []


def test_a_literal_percent_sign_is_not_a_placeholder() -> None:
    assert translations.placeholders("Pay in 0%% instalments") == set()
    assert translations.placeholders("0%% over %(n)s months") == {"n"}


def test_the_bank_apps_language_comes_with_the_sign_on(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    """The bank's app says its customer reads Chinese: the pages open in Chinese, and the
    customer can still switch to English."""
    customer = f.make_customer(uow, bank_ref="CUST-ZH")
    f.make_member(uow, customer, home=f.CANARY_WHARF)
    token = issue_demo_sso_token(
        settings, customer_ref="CUST-ZH", now=uow.clock.now(), locale="zh-CN"
    )
    assert client.get(f"/sso?token={token}", follow_redirects=False).status_code == 303
    home = client.get("/app", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in home.text
    switched = client.post(
        "/language",
        data={"lang": "en", "next": "/app", "csrf_token": csrf_from(home.text)},
        follow_redirects=False,
    )
    assert switched.headers["location"] == "/app"
    assert '<html lang="en">' in client.get("/app").text


def test_a_forms_field_errors_are_in_the_viewers_language() -> None:
    """Pydantic's own messages are English: the kinds a person meets are the catalog's."""
    error = {"type": "greater_than", "ctx": {"gt": 0.0}, "msg": "Input should be greater than 0"}
    assert forms._message(error) == "More than 0."
    i18n.use_language("zh_CN")
    try:
        chinese = forms._message(error)
    finally:
        i18n.use_language("en")
    assert chinese == i18n.catalog("zh_CN").gettext("More than %(gt)s.") % {"gt": "0"}
    assert chinese != "More than 0."
    # A kind without its own wording keeps pydantic's.
    assert forms._message({"type": "url_parsing", "msg": "Input should be a valid URL"}) == (
        "Input should be a valid URL"
    )
