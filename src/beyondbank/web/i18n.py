"""Translatable strings in Python code: `_()` marks them exactly as templates do.

Pages call `_()` today with null translations (the English text); the en and zh_CN catalogs
of issue 6 replace `gettext` here and in the Jinja environment together.
"""

from __future__ import annotations


def gettext(message: str, **params: object) -> str:
    """The message in the viewer's language, with `%(name)s` placeholders filled in."""
    return message % params if params else message


_ = gettext


def gettext_noop(message: str) -> str:
    """Marks a string for the catalogs where it is defined; it is translated where it is shown."""
    return message


N_ = gettext_noop
