"""The white label: the bank's colours as a stylesheet and its logo, both served from this host."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Response

from beyondbank.core.settings import Settings
from beyondbank.deps import SettingsDep

router = APIRouter(prefix="/brand", include_in_schema=False)

LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}


def theme_css(settings: Settings) -> str:
    """Custom properties that app.css reads; loaded after it, so the bank's values win."""
    return (
        ":root {"
        f" --brand: {settings.brand_colour};"
        f" --brand-ink: {settings.brand_ink_colour};"
        f" --accent: {settings.accent_colour};"
        " }\n"
    )


def initials_logo(settings: Settings) -> str:
    """A square mark with the bank's initials, for a bank that configured no logo file."""
    words = [w for w in settings.bank_name.replace("&", " ").split() if w[:1].isalpha()]
    initials = escape("".join(w[0].upper() for w in words[:2]) or "B")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img">'
        f"<title>{escape(settings.bank_name)}</title>"
        f'<rect width="64" height="64" rx="12" fill="{settings.brand_ink_colour}"/>'
        f'<text x="32" y="41" font-family="system-ui, sans-serif" font-size="26" '
        f'font-weight="700" text-anchor="middle" fill="{settings.brand_colour}">{initials}</text>'
        "</svg>"
    )


@router.get("/theme.css")
def theme(settings: SettingsDep) -> Response:
    return Response(
        theme_css(settings),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/logo")
def logo(settings: SettingsDep) -> Response:
    path = settings.brand_logo_file
    if path is not None and path.suffix.lower() in LOGO_TYPES and path.is_file():
        return Response(
            path.read_bytes(),
            media_type=LOGO_TYPES[path.suffix.lower()],
            headers={"Cache-Control": "public, max-age=300"},
        )
    return Response(
        initials_logo(settings),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=300"},
    )
