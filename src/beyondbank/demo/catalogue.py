"""The demo programme's cast: the alliance's merchants by circle, the segments, the pipeline, staff.

Every business here is invented; the streets and districts are London's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Shop:
    """A merchant holding its seat in its area's life circle (and perhaps in segment circles)."""

    name: str
    sub_industry: str
    segments: tuple[str, ...] = ()
    status: str = "active"
    status_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Prospect:
    """A merchant in the admission pipeline of an area's circle."""

    name: str
    sub_industry: str
    area: str  # circle code
    status: str
    apply: bool = False  # an open application to the area's circle
    waitlist: bool = False  # ... waiting for the slot another merchant holds
    kyb: str = "passed"
    licence_verified: bool = True
    reviews: bool = True
    status_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    code: str
    name: str
    segment_name: str
    description: str
    rule: dict[str, Any]
    allowed: tuple[str, ...]  # sub-industries admitted to the segment's circle
    min_score: float
    manual_check: str | None = None


SHOPS: dict[str, tuple[Shop, ...]] = {
    "canary-wharf": (
        Shop("Dockside Kitchen", "restaurant"),
        Shop("Harbour Bakehouse", "bakery_cafe", ("young-parents",)),
        Shop("The Ferryman's Arms", "bar_pub"),
        Shop("Wharfside Hotel", "hotel"),
        Shop("Crossharbour Dry Cleaners", "laundry"),
        Shop("Canada Square Parking", "parking", ("car-owners",)),
        Shop(
            "Meridian Travel",
            "travel_agency",
            status="exited",
            status_reason="The owners retired and closed the agency",
        ),
        Shop("Isle of Dogs Fresh Market", "supermarket"),
        Shop("Cabot Tailoring", "fashion"),
        Shop("Quayside Tech", "electronics"),
        Shop("Canary Fitness", "fitness"),
        Shop("Jubilee Picturehouse", "cinema"),
    ),
    "shoreditch": (
        Shop("Curtain Road Kitchen", "restaurant"),
        Shop("Redchurch Bakery", "bakery_cafe"),
        Shop("The Hoxton Lamp", "bar_pub"),
        Shop("Old Street Lodge", "hotel"),
        Shop("Calvert Avenue Interiors", "home_furnishing"),
        Shop("Fixie & Sons Cycles", "bicycle"),
        Shop("Shoreditch Street Art Tours", "attraction"),
        Shop("Spitalfields Paper & Press", "books_stationery"),
        Shop("Arnold Circus Vintage", "fashion"),
        Shop("Bethnal Green Boot Co.", "shoes"),
        Shop("Great Eastern Barbers", "hair_salon"),
        Shop(
            "Pixel Pier Arcade",
            "arcade",
            status="suspended",
            status_reason="Complaint under review: alliance price not honoured at the counter",
        ),
    ),
    "camden": (
        Shop("Camden Lock Trattoria", "restaurant"),
        Shop("Parkway Dumpling Bar", "fast_food"),
        Shop("The Regent's Tap", "bar_pub"),
        Shop("Primrose Hill Apartments", "holiday_let"),
        Shop("Chalk Farm Home Store", "home_furnishing"),
        Shop("Camden Cars", "taxi"),
        Shop("Regent's Canal Boat Trips", "attraction"),
        Shop("Stables Yard Denim", "fashion"),
        Shop("Inverness Street Toys", "toys_hobby", ("young-parents",)),
        Shop("Camden Playhouse", "theatre"),
        Shop("Delancey Spa", "spa_beauty"),
    ),
    "clapham": (
        Shop("Abbeville Bistro", "restaurant"),
        Shop("Northcote Road Bakery", "bakery_cafe"),
        Shop("The Common Keeper", "bar_pub"),
        Shop("Clapham Laundrette & Dry Clean", "laundry"),
        Shop("Lavender Hill Hand Car Wash", "car_wash", ("car-owners",)),
        Shop("Common Ground Travel", "travel_agency"),
        Shop("Old Town Grocers", "supermarket"),
        Shop("Little Clapham Kids", "childrenswear", ("young-parents",)),
        Shop("Clapham Park Pharmacy", "pharmacy", ("silver-circle",)),
        Shop("Little Explorers", "kids_club", ("young-parents",)),
        Shop("SW4 Strength", "fitness"),
    ),
    "richmond": (
        Shop("The Riverside Brasserie", "restaurant"),
        Shop("Hill Street Patisserie", "bakery_cafe"),
        Shop("Richmond Hill House Hotel", "hotel"),
        Shop("Kew Road Furniture", "home_furnishing"),
        Shop("Richmond Park Cycles", "bicycle"),
        Shop("Thames Valley Coach Tours", "coach_tours", ("silver-circle",)),
        Shop("Quadrant & Co.", "department_store"),
        Shop("Paradise Road Flowers", "florist", ("silver-circle",)),
        Shop("Sheen Road Opticians", "optician", ("silver-circle",)),
        Shop("Petersham Golf Club", "golf"),
        Shop("Richmond Green Playhouse", "theatre", ("silver-circle",)),
    ),
    "greenwich": (
        Shop("Maritime Grill", "restaurant"),
        Shop("The Cutty Tap", "bar_pub"),
        Shop("Nelson Road Hotel", "hotel"),
        Shop("Trafalgar Road Fuel", "fuel", ("car-owners",)),
        Shop("Meridian Line Walking Tours", "attraction"),
        Shop("Royal Hill Deli", "convenience"),
        Shop("Greenwich Paws", "pet_shop"),
        Shop("Greenwich Park Cinema", "cinema"),
        Shop("Creek Road Bowl", "bowling"),
    ),
    "stratford": (
        Shop("Olympic Park Kitchen", "restaurant"),
        Shop("Broadway Wraps", "fast_food"),
        Shop("Stratford Park Hotel", "hotel"),
        Shop("E15 Autocare", "car_service", ("car-owners",)),
        Shop("Eastway Car Hire", "car_rental", ("car-owners",)),
        Shop("Lea Valley Adventure Park", "theme_park", ("young-parents",)),
        Shop("Podium Sports", "sporting_goods"),
        Shop("Angel Lane Electronics", "electronics"),
        Shop("Romford Road Supermarket", "supermarket"),
        Shop("Velodrome Fitness", "fitness"),
        Shop("Stratford Strike Bowl", "bowling"),
    ),
}

PIPELINE: tuple[Prospect, ...] = (
    Prospect("Hackney Wick Coffee Roasters", "bakery_cafe", "stratford", "applied"),
    Prospect(
        "Greenwich Market Noodles",
        "fast_food",
        "greenwich",
        "under_review",
        apply=True,
        licence_verified=False,
        kyb="pending",
    ),
    Prospect(
        "Kentish Town Books",
        "books_stationery",
        "camden",
        "under_review",
        apply=True,
        reviews=False,
    ),
    Prospect(
        "Quick Fix Phones",
        "electronics",
        "shoreditch",
        "rejected",
        apply=True,
        kyb="failed",
        status_reason="KYB failed: the beneficial owners could not be verified",
    ),
    # Waiting for a held slot: the restaurant seats of Camden and Canary Wharf.
    Prospect(
        "The Canal Kitchen", "restaurant", "camden", "under_review", apply=True, waitlist=True
    ),
    Prospect(
        "Isle Spice Kitchen",
        "restaurant",
        "canary-wharf",
        "under_review",
        apply=True,
        waitlist=True,
    ),
    # Waited for Meridian Travel's seat: offered to its manager when Meridian Travel exited.
    Prospect(
        "Docklands Holidays",
        "travel_agency",
        "canary-wharf",
        "under_review",
        apply=True,
        waitlist=True,
    ),
)

SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "young-parents",
        "Young parents",
        "parents of children under seven",
        "Families with young children, wherever they live: play, clothes, days out.",
        {
            "all": [
                {"attr": "children", "op": "gte", "value": 1},
                {"attr": "youngest_child_age", "op": "lte", "value": 6},
            ]
        },
        ("kids_club", "childrenswear", "toys_hobby", "theme_park", "zoo_aquarium", "bakery_cafe"),
        4.2,
        "Child-safety policy seen by the relationship manager",
    ),
    Segment(
        "car-owners",
        "Car owners",
        "customers with a car",
        "Fuel, parking, servicing and washing for the bank's motoring customers.",
        {"attr": "car_owner", "op": "eq", "value": True},
        ("fuel", "car_service", "car_wash", "parking", "car_rental"),
        4.0,
    ),
    Segment(
        "silver-circle",
        "Silver circle",
        "customers aged 60 and over",
        "Health, culture and day trips for the bank's older customers.",
        {"attr": "age", "op": "gte", "value": 60},
        ("pharmacy", "optician", "theatre", "coach_tours", "florist", "travel_agency"),
        4.0,
        "Step-free access confirmed by the relationship manager",
    ),
)


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str
    role: str
    merchant: str | None = None  # trading name, for merchant users
    books: tuple[str, ...] = field(default=())


EMAIL_DOMAIN = "thames-harbour.example"
STAFF: tuple[Person, ...] = (
    Person(f"olivia.bennett@{EMAIL_DOMAIN}", "Olivia Bennett", "bank_admin"),
    Person(f"james.okafor@{EMAIL_DOMAIN}", "James Okafor", "relationship_manager"),
    Person(f"priya.shah@{EMAIL_DOMAIN}", "Priya Shah", "relationship_manager"),
    Person(f"tom.gallagher@{EMAIL_DOMAIN}", "Tom Gallagher", "relationship_manager"),
    Person(f"grace.liu@{EMAIL_DOMAIN}", "Grace Liu", "auditor"),
    Person(f"daniel.murphy@{EMAIL_DOMAIN}", "Daniel Murphy", "analyst"),
)
MERCHANT_USERS: tuple[Person, ...] = (
    Person("amara@dockside-kitchen.example", "Amara Okoye", "merchant_admin", "Dockside Kitchen"),
    Person("sam@dockside-kitchen.example", "Sam Reid", "merchant_staff", "Dockside Kitchen"),
    Person("hannah@little-explorers.example", "Hannah Price", "merchant_admin", "Little Explorers"),
    Person("leo@little-explorers.example", "Leo Martin", "merchant_staff", "Little Explorers"),
    Person("nina@canary-fitness.example", "Nina Kowalski", "merchant_admin", "Canary Fitness"),
    Person("marcus@canary-fitness.example", "Marcus Bell", "merchant_staff", "Canary Fitness"),
)

FIRST_NAMES = (
    "Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Mia", "Arthur", "Freya", "Leo",
    "Grace", "Oscar", "Lily", "Muhammad", "Sofia", "Harry", "Aisha", "Jack", "Chloe", "Ethan",
    "Priya", "Kwame", "Zara", "Tomasz", "Elena", "Yusuf", "Hannah", "Ravi", "Niamh", "Chen",
)  # fmt: skip
LAST_NAMES = (
    "Clarke", "Patel", "Smith", "Jones", "Okafor", "Williams", "Brown", "Taylor", "Khan",
    "Davies", "Evans", "Wilson", "Ahmed", "Thomas", "Roberts", "Nowak", "Murphy", "Walker",
    "Wright", "Robinson", "Hughes", "Green", "Ali", "Hall", "Lewis", "Chen", "Singh", "Moore",
)  # fmt: skip

# What a benefit is on, by life domain: the words of its title and its gift.
DOMAIN_WORDS: dict[str, dict[str, str]] = {
    "dining": {
        "on": "the bill",
        "gift": "A dessert on the house with any main course",
        "trial": "A free tasting flight on your first visit",
        "event": "Members' supper club with the head chef",
    },
    "lodging": {
        "on": "your stay or order",
        "gift": "Late check-out or free delivery, as you prefer",
        "trial": "A free first service",
        "event": "Members' open evening with refreshments",
    },
    "transport": {
        "on": "your booking",
        "gift": "A free tyre-pressure check and screenwash top-up",
        "trial": "Your first booking free",
        "event": "Members' safety and maintenance morning",
    },
    "travel": {
        "on": "tickets and tours",
        "gift": "A free London guidebook with every booking",
        "trial": "A free taster tour",
        "event": "Members' after-hours tour",
    },
    "shopping": {
        "on": "your basket",
        "gift": "A reusable tote bag with any purchase",
        "trial": "Free personal shopping appointment",
        "event": "Members' late-night shopping evening",
    },
    "entertainment": {
        "on": "tickets and treatments",
        "gift": "A free drink with every ticket",
        "trial": "A free week's pass",
        "event": "Members' preview night",
    },
}
