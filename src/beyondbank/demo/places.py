"""The demo bank's London: branches with their real coordinates, and the streets around them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Area:
    """A branch, the 3 km life circle around it, and what addresses near it look like."""

    branch_code: str
    circle_code: str
    name: str
    address: str
    latitude: float
    longitude: float
    streets: tuple[str, ...]
    postcodes: tuple[str, ...]  # outward codes of the districts around the branch
    council: str  # the licensing authority's initials, for licence numbers
    manager: str  # the relationship manager whose book the area's merchants are in


AREAS: tuple[Area, ...] = (
    Area(
        "CWF",
        "canary-wharf",
        "Canary Wharf",
        "25 Cabot Square, London E14 4QA",
        51.5054,
        -0.0235,
        (
            "Cabot Square",
            "Canada Square",
            "Westferry Circus",
            "Bank Street",
            "Marsh Wall",
            "East Ferry Road",
            "Manchester Road",
            "Westferry Road",
            "Harbour Exchange Square",
        ),
        ("E14",),
        "LBTH",
        "james.okafor",
    ),
    Area(
        "SDH",
        "shoreditch",
        "Shoreditch",
        "120 Great Eastern Street, London EC2A 3JP",
        51.5265,
        -0.0780,
        (
            "Great Eastern Street",
            "Curtain Road",
            "Rivington Street",
            "Old Street",
            "Redchurch Street",
            "Shoreditch High Street",
            "Hoxton Square",
            "Calvert Avenue",
        ),
        ("EC2A", "E1", "E2", "N1"),
        "LBH",
        "priya.shah",
    ),
    Area(
        "CMD",
        "camden",
        "Camden",
        "178 Camden High Street, London NW1 8QL",
        51.5390,
        -0.1426,
        (
            "Camden High Street",
            "Parkway",
            "Chalk Farm Road",
            "Kentish Town Road",
            "Camden Road",
            "Delancey Street",
            "Inverness Street",
            "Jamestown Road",
        ),
        ("NW1", "NW5"),
        "LBC",
        "priya.shah",
    ),
    Area(
        "CLP",
        "clapham",
        "Clapham",
        "10 The Pavement, London SW4 0HY",
        51.4620,
        -0.1380,
        (
            "Clapham High Street",
            "Abbeville Road",
            "Northcote Road",
            "Lavender Hill",
            "Clapham Park Road",
            "Old Town",
            "Venn Street",
            "Clapham Manor Street",
        ),
        ("SW4", "SW11"),
        "LBL",
        "tom.gallagher",
    ),
    Area(
        "RMD",
        "richmond",
        "Richmond",
        "12 George Street, Richmond TW9 1JY",
        51.4613,
        -0.3037,
        (
            "George Street",
            "Hill Street",
            "King Street",
            "Kew Road",
            "Sheen Road",
            "The Quadrant",
            "Paradise Road",
            "Red Lion Street",
        ),
        ("TW9", "TW10"),
        "LBRUT",
        "tom.gallagher",
    ),
    Area(
        "GRN",
        "greenwich",
        "Greenwich",
        "1 Greenwich Church Street, London SE10 9BL",
        51.4826,
        -0.0077,
        (
            "Greenwich Church Street",
            "King William Walk",
            "Trafalgar Road",
            "Nelson Road",
            "Creek Road",
            "Royal Hill",
            "Greenwich High Road",
            "Crooms Hill",
        ),
        ("SE10",),
        "RBG",
        "james.okafor",
    ),
    Area(
        "STR",
        "stratford",
        "Stratford",
        "2 The Broadway, London E15 4QS",
        51.5416,
        -0.0033,
        (
            "The Broadway",
            "Romford Road",
            "High Street",
            "Great Eastern Road",
            "Angel Lane",
            "Water Lane",
            "Carpenters Road",
            "Warton Road",
        ),
        ("E15", "E20"),
        "LBN",
        "james.okafor",
    ),
)

# Where members work: the City and Canary Wharf employ most of the bank's commuters.
OFFICES: tuple[tuple[float, float], ...] = (
    (51.5054, -0.0235),  # Canary Wharf
    (51.5155, -0.0922),  # the City (Bank)
    (51.5265, -0.0780),  # Shoreditch
    (51.5072, -0.1276),  # Westminster
    (51.5416, -0.0033),  # Stratford
)
