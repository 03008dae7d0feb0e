"""For tests of messages in the caller's language: speak a language for a block, and read a
message's Simplified Chinese from the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from beyondbank.core.i18n import catalog, use_language


@contextmanager
def speaking(language: str) -> Iterator[None]:
    use_language(language)
    try:
        yield
    finally:
        use_language("en")


def chinese(msgid: str, **params: object) -> str:
    text = catalog("zh_CN").gettext(msgid)
    assert text != msgid, f"no Chinese for {msgid!r} in the catalog yet"
    return text % params if params else text
