"""The circles drawn as a map-like plot and counted in a coverage grid: an equirectangular
projection over the bounding box of all geographic circles, and each circle's seated merchants per
life domain."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from beyondbank.alliance.models import Circle, CircleKind, Seat
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.core.geo import EARTH_RADIUS_M

WIDTH = 640.0  # the SVG's own units; the page scales it to the screen
MARGIN = 12.0
MIN_HEIGHT = 240.0
MAX_HEIGHT = 720.0
LABEL_HEIGHT = 14.0
LABEL_CHAR_WIDTH = 7.0  # a bold 12-unit character, near enough to keep labels apart
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180


@dataclass(frozen=True, slots=True)
class PlottedCircle:
    public_id: str
    name: str
    x: float
    y: float
    r: float
    radius_m: int
    latitude: float
    longitude: float
    merchants: int  # seated merchants
    label_x: float
    label_y: float  # the name's baseline: above, below or inside the circle, clear of others


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    title: str  # the merchant and its location, for a pointer's tooltip


@dataclass(frozen=True, slots=True)
class Plot:
    width: float
    height: float
    circles: list[PlottedCircle]
    dots: list[Dot]


def plot(circles: Sequence[Circle], seats: Sequence[Seat]) -> Plot | None:
    """Every geographic circle at its centre with its radius to scale, and the locations of the
    merchants seated in them as dots; None when no circle has a place on the map."""
    placed = [
        c
        for c in circles
        if c.kind == CircleKind.GEOGRAPHIC
        and c.center_latitude is not None
        and c.center_longitude is not None
        and c.radius_m
    ]
    if not placed:
        return None
    mid_lat = sum(c.center_latitude or 0.0 for c in placed) / len(placed)
    # Metres per degree of longitude at the plot's middle latitude: an equirectangular map.
    x_scale = METRES_PER_DEGREE * max(math.cos(math.radians(mid_lat)), 0.01)
    west = min((c.center_longitude or 0.0) - (c.radius_m or 0) / x_scale for c in placed)
    east = max((c.center_longitude or 0.0) + (c.radius_m or 0) / x_scale for c in placed)
    south = min((c.center_latitude or 0.0) - (c.radius_m or 0) / METRES_PER_DEGREE for c in placed)
    north = max((c.center_latitude or 0.0) + (c.radius_m or 0) / METRES_PER_DEGREE for c in placed)
    span_x = max((east - west) * x_scale, 1.0)  # metres
    span_y = max((north - south) * METRES_PER_DEGREE, 1.0)
    pixels_per_metre = min((WIDTH - 2 * MARGIN) / span_x, (MAX_HEIGHT - 2 * MARGIN) / span_y)
    height = max(MIN_HEIGHT, span_y * pixels_per_metre + 2 * MARGIN)
    # Centre the drawing in whichever direction has room to spare.
    pad_x = (WIDTH - span_x * pixels_per_metre) / 2
    pad_y = (height - span_y * pixels_per_metre) / 2

    def at(latitude: float, longitude: float) -> tuple[float, float]:
        x = pad_x + (longitude - west) * x_scale * pixels_per_metre
        y = pad_y + (north - latitude) * METRES_PER_DEGREE * pixels_per_metre
        return round(x, 1), round(y, 1)

    seated = Counter(seat.circle_id for seat in seats)
    plotted = []
    taken: list[Box] = []
    for circle in placed:
        x, y = at(circle.center_latitude or 0.0, circle.center_longitude or 0.0)
        r = round(max((circle.radius_m or 0) * pixels_per_metre, 2.0), 1)
        label_x, label_y = _label_at(circle.name, x, y, r, WIDTH, height, taken)
        plotted.append(
            PlottedCircle(
                public_id=circle.public_id,
                name=circle.name,
                x=x,
                y=y,
                r=r,
                radius_m=circle.radius_m or 0,
                latitude=circle.center_latitude or 0.0,
                longitude=circle.center_longitude or 0.0,
                merchants=seated[circle.id],
                label_x=label_x,
                label_y=label_y,
            )
        )
    dots = []
    seen: set[int] = set()
    for seat in seats:
        merchant = seat.merchant
        if merchant.id in seen:
            continue  # a merchant seated in several circles is drawn once
        seen.add(merchant.id)
        for location in merchant.locations:
            x, y = at(location.latitude, location.longitude)
            if 0 <= x <= WIDTH and 0 <= y <= height:
                dots.append(Dot(x=x, y=y, title=f"{merchant.trading_name} · {location.name}"))
    return Plot(width=WIDTH, height=round(height, 1), circles=plotted, dots=dots)


Box = tuple[float, float, float, float]  # left, top, right, bottom


def _label_at(
    name: str, x: float, y: float, r: float, width: float, height: float, taken: list[Box]
) -> tuple[float, float]:
    """Where a circle's name goes: above it, below it, or across its centre (higher or lower),
    the first place inside the plot that no other name covers; above if none is free."""
    half = len(name) * LABEL_CHAR_WIDTH / 2
    centre_x = min(max(x, half + 2), width - half - 2)
    baselines = (y - r - 4, y + r + LABEL_HEIGHT, y - 6, y + LABEL_HEIGHT + 6, y - r / 2, y + r / 2)
    for baseline in baselines:
        box = (centre_x - half, baseline - LABEL_HEIGHT + 2, centre_x + half, baseline + 3)
        inside = box[1] >= 0 and box[3] <= height
        if inside and not any(_overlap(box, other) for other in taken):
            taken.append(box)
            return round(centre_x, 1), round(baseline, 1)
    fallback = max(y - r - 4, LABEL_HEIGHT)
    taken.append((centre_x - half, fallback - LABEL_HEIGHT + 2, centre_x + half, fallback + 3))
    return round(centre_x, 1), round(fallback, 1)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass(frozen=True, slots=True)
class CoverageRow:
    circle: Circle
    counts: dict[LifeDomain, int]  # seated merchants per life domain; 0 is a gap

    @property
    def gaps(self) -> int:
        return sum(1 for n in self.counts.values() if not n)


def coverage_rows(circles: Sequence[Circle], seats: Sequence[Seat]) -> list[CoverageRow]:
    """Rows = circles, columns = the six life domains: the merchants seated in each."""
    domains = [d.code for d in taxonomy().domains]
    held: Counter[tuple[int, LifeDomain]] = Counter()
    for seat in seats:
        sub = taxonomy().sub_industry(seat.sub_industry)
        if sub is not None:
            held[(seat.circle_id, sub.domain)] += 1
    return [CoverageRow(circle=c, counts={d: held[(c.id, d)] for d in domains}) for c in circles]
