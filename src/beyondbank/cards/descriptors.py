"""Card-acceptor descriptors (ISO 8583 DE 43): the field layout, realistic noise, normalisation.

Layout (Visa's, which carries the ISO alpha-2 country the alliance stores; 40 characters):

    positions  1-25  merchant name, left-justified, space-padded, truncated
    positions 26-38  city, left-justified, space-padded, truncated
    positions 39-40  country, ISO 3166-1 alpha-2

Everything here is pure text processing: no Polars, no database. The resolver builds on
`normalise` and `descriptor_key`; the synthetic card feed builds on `acceptor_field` and
`noisy_descriptor`.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

NAME_WIDTH = 25
CITY_WIDTH = 13
COUNTRY_WIDTH = 2
FIELD_WIDTH = NAME_WIDTH + CITY_WIDTH + COUNTRY_WIDTH

# Payment facilitators and processors put their own tag before the sub-merchant's name.
AGGREGATOR_PREFIXES = ("SQ *", "PAYPAL *", "TST* ", "SP * ", "ZETTLE_*", "SUMUP *", "IZ *")

# A prefix is whatever precedes an asterisk near the start ("SQ *", "ZETTLE_*", "TST*"): every
# facilitator tag we know ends that way, and names almost never contain one so early.
_PREFIX = re.compile(r"[^*]{0,12}\*+")
_STORE_NUMBER = re.compile(r"#\s*\d*")
# A store number as it ends a name part ("#0042", " 042", a "#" the field cut short), or
# sits between the name and the city of a compacted descriptor.
_STORE_NUMBER_SHOWN = re.compile(r"#|\s\d+(\s|$)")

# ISO 3166-1 alpha-2, to tell a trailing country code from a two-letter word of the name.
_ALPHA_2 = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRIES = frozenset(_ALPHA_2.split())

# Words that carry no identity (legal forms, articles) are dropped from name keys.
STOPWORDS = frozenset({"THE", "AND", "OF", "LTD", "LIMITED", "PLC", "LLP", "INC", "CO", "COMPANY"})

# Spelled-out words and the abbreviations acquirers use for them, mapped to one canonical
# spelling that is never longer than any variant (so a key is never longer than its input).
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "ST": ("STREET", "SAINT", "STR"),
    "REST": ("RESTAURANT", "RESTAURANTS", "RSTRNT", "RESTAURAN"),
    "CTR": ("CENTRE", "CENTER", "CNTR"),
    "BROS": ("BROTHERS",),
    "INTL": ("INTERNATIONAL",),
    "PHCY": ("PHARMACY", "PHARM"),
    "MKT": ("MARKET", "MKTP"),
    "SPMKT": ("SUPERMARKET", "SPRMKT"),
    "SVC": ("SERVICES", "SERVICE", "SVCS"),
    "HSE": ("HOUSE",),
    "KTCHN": ("KITCHEN",),
    "CAFE": ("CAFFE",),
}
_CANONICAL = {variant: short for short, variants in ABBREVIATIONS.items() for variant in variants}

# The abbreviations the noise generator applies, spelled-out word → what a till prints.
_SHORTHAND = {
    "AND": "&",
    "STREET": "ST",
    "RESTAURANT": "REST",
    "CENTRE": "CTR",
    "BROTHERS": "BROS",
    "INTERNATIONAL": "INTL",
    "PHARMACY": "PHCY",
    "SUPERMARKET": "SPRMKT",
    "LIMITED": "LTD",
    "COMPANY": "CO",
    "KITCHEN": "KTCHN",
    "HOUSE": "HSE",
    "SAINT": "ST",
}


@dataclass(frozen=True)
class Normalised:
    """A descriptor reduced to what identifies a merchant.

    `name` is the name key (uppercase ASCII where possible, single-spaced, no facilitator
    prefix, store number, legal form or punctuation); `city` the city as sent (folded the same
    way, possibly abbreviated, possibly empty); `country` an alpha-2 code or empty.
    `name_width` is how many characters the name part took in the field (facilitator prefix
    included, `prefix_width` of them): a name part that fills its field may have been cut,
    unless it ends in a store number (`store_number`).
    A compacted descriptor ("SQ *CAFE NERO BATH GB") leaves the city inside the name part.
    """

    name: str
    city: str
    country: str
    name_width: int = 0
    prefix_width: int = 0
    store_number: bool = False

    @property
    def truncated(self) -> bool:
        """The name filled its field, so the merchant's full name may have been cut.

        A store number comes after the name: when there is one, the name was shown whole.
        """
        return self.name_width >= NAME_WIDTH - 1 and not self.store_number

    @property
    def key(self) -> str:
        """The key confirmed mappings are stored under: name, city and country."""
        return f"{self.name}|{self.city}|{self.country}"


# -- the field as the networks carry it ------------------------------------------------------------


def _network_char(char: str) -> str:
    """One character as a network prints it: uppercase, accents dropped where there is a base."""
    if char.isascii():
        return char.upper()
    base = unicodedata.normalize("NFKD", char)[:1]
    if base.isascii() and base.isalnum():
        return base.upper()
    upper = char.upper()
    return upper if len(upper) == 1 else char


def shown_name(text: str) -> str:
    """Text as a network prints it: uppercase, single-spaced, accents dropped."""
    return "".join(_network_char(c) for c in " ".join(text.split()))


def acceptor_field(name: str, city: str, country: str) -> str:
    """The 40-character DE 43 field: name 1-25, city 26-38, country 39-40, padded and truncated."""
    return (
        shown_name(name)[:NAME_WIDTH].ljust(NAME_WIDTH)
        + shown_name(city)[:CITY_WIDTH].ljust(CITY_WIDTH)
        + shown_name(country)[:COUNTRY_WIDTH].ljust(COUNTRY_WIDTH)
    )


# -- noise as acquirers send it --------------------------------------------------------------------


def _abbreviated(words: list[str], rng: random.Random) -> list[str]:
    """Some tills shorten common words and drop a leading article."""
    if len(words) > 1 and words[0] == "THE" and rng.random() < 0.5:
        words = words[1:]
    return [_SHORTHAND.get(w, w) if rng.random() < 0.7 else w for w in words]


def _typo(text: str, rng: random.Random) -> str:
    """A dropped or doubled character, as keyed-in merchant set-ups occasionally have."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if len(letters) < 4:
        return text
    i = rng.choice(letters[1:])
    if rng.random() < 0.5:
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]


def _short_city(city: str, rng: random.Random) -> str:
    """A city cut short or with its vowels dropped ("MANCHESTER" → "MANCH", "MNCHSTR")."""
    if len(city) <= 4:
        return city
    if rng.random() < 0.5:
        return city[: rng.randint(4, min(len(city) - 1, 8))]
    return city[0] + "".join(c for c in city[1:] if c not in "AEIOU ")


def _store_number(rng: random.Random) -> str:
    number = rng.randint(1, 9999)
    return rng.choice((f" #{number:04d}", f" {number:03d}", f"#{number}", f" {number:04d}"))


def _case_noise(text: str, rng: random.Random) -> str:
    return text.lower() if rng.random() < 0.5 else text.title()


def noisy_descriptor(name: str, city: str, country: str, rng: random.Random) -> str:
    """A DE 43 field for this merchant as acquirers really send it; at most 40 characters.

    Facilitator prefixes, store numbers, till abbreviations, an occasional typo, a city that is
    shortened or missing, a compacted layout, case and spacing noise; truncated at the widths.
    """
    words = shown_name(name).split()
    if rng.random() < 0.3:
        words = _abbreviated(words, rng)
    shown = " ".join(words)
    if rng.random() < 0.08:
        shown = _typo(shown, rng)
    if rng.random() < 0.05 and " " in shown:
        shown = shown.replace(" ", "  ", 1)
    if rng.random() < 0.25:
        shown += _store_number(rng)
    if rng.random() < 0.35:
        shown = rng.choice(AGGREGATOR_PREFIXES) + shown

    place = shown_name(city)
    draw = rng.random()
    if draw < 0.04:
        place = ""
    elif draw < 0.16:
        place = _short_city(place, rng)

    if rng.random() < 0.12:
        # Some processors compact the field instead of padding it.
        text = " ".join(p for p in (shown[:NAME_WIDTH].strip(), place, country.upper()) if p)
    else:
        text = acceptor_field(shown, place, country)
    if rng.random() < 0.04:
        text = _case_noise(text, rng)
    return text[:FIELD_WIDTH]


# -- normalisation ---------------------------------------------------------------------------------

_APOSTROPHES = frozenset("'`\u2018\u2019\u02bc.")


def _fold_once(char: str) -> str:
    """A character of a key: an uppercase letter or digit, nothing (apostrophes), or a space."""
    if char.isascii():
        if char.isalnum():
            return char.upper()
        return "" if char in _APOSTROPHES else " "
    if char in _APOSTROPHES:
        return ""
    base = unicodedata.normalize("NFKD", char)[:1]
    if base.isascii() and base.isalnum():
        return base.upper()
    if char.isalnum():
        upper = char.upper()
        return upper if len(upper) == 1 else char
    return " "


def _fold(char: str) -> str:
    """`_fold_once` to its fixed point, so folding folded text never changes it."""
    folded = _fold_once(char)
    while len(folded) == 1 and folded != char:
        char, folded = folded, _fold_once(folded)
    return folded


class _FoldTable(dict[int, str]):
    """A `str.translate` table that folds each character once and remembers the answer."""

    def __missing__(self, codepoint: int) -> str:
        folded = _fold(chr(codepoint))
        self[codepoint] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """Uppercase ASCII letters and digits where the text has them, single-spaced, no punctuation."""
    return " ".join(text.translate(_FOLD).split())


def _name_pass(text: str) -> str:
    text = text[prefix_width(text) :]
    text = _STORE_NUMBER.sub(" ", text)
    words = []
    for word in fold(text).split():
        if word.isdigit() or word in STOPWORDS:
            continue
        words.append(_CANONICAL.get(word, word))
    return " ".join(words)


def name_key(text: str) -> str:
    """A merchant name reduced to its identifying words; idempotent, never longer than `text`.

    Used alike on descriptor names and on the alliance's trading names, so both sides of a
    comparison went through the same steps. One pass reaches the fixed point: no step
    leaves behind what an earlier step would remove (property-tested).
    """
    return _name_pass(text)


def _split_location(descriptor: str) -> tuple[str, str, str]:
    """(name part, city part, country) of a raw descriptor."""
    if len(descriptor) == FIELD_WIDTH:
        country = descriptor[NAME_WIDTH + CITY_WIDTH :].strip().upper()
        # A padded field has a run of spaces somewhere, or a city that fills its part; a
        # compacted one that happens to be 40 characters long has neither.
        padded = "  " in descriptor or descriptor[-3] != " "
        if padded and (country == "" or country in COUNTRIES):
            return (
                descriptor[:NAME_WIDTH].rstrip(),
                descriptor[NAME_WIDTH : NAME_WIDTH + CITY_WIDTH],
                country,
            )
    text = descriptor.strip()
    country = ""
    last = text.rsplit(None, 1)
    if len(descriptor) == FIELD_WIDTH and len(last) == 2 and len(last[1]) == 1:
        # A compacted field cut at 40 characters, its country cut short.
        text = last[0]
    words = text.rsplit(None, 1)
    if len(words) == 2 and words[1].isascii() and words[1].upper() in COUNTRIES:
        text, country = words[0].rstrip(), words[1].upper()
    # A padded field keeps two or more spaces before the city even when it was trimmed.
    parts = re.split(r"\s{2,}", text)
    if len(parts) >= 2:
        return " ".join(parts[:-1]), parts[-1], country
    # Compacted: the city, if any, is still part of the name; the resolver, which knows the
    # alliance's cities, looks for one at its end.
    return text, "", country


def prefix_width(name: str) -> int:
    """How many leading characters of a name part are a facilitator prefix ("SQ *")."""
    if "*" not in name:
        return 0
    width = 0
    while (prefix := _PREFIX.match(name, width)) is not None:
        width = prefix.end()
    return len(name) - len(name[width:].lstrip()) if width else 0


def normalise(descriptor: str) -> Normalised:
    """The descriptor's name key, city and country; deterministic, never raises.

    Steps: split off the country and city (by position in a 40-character field, else by
    padding), drop facilitator prefixes ("SQ *"), store numbers ("#0042", " 042"), legal forms
    and articles, fold case, accents and punctuation, canonicalise till abbreviations.
    A result that fits the field, rendered with `acceptor_field`, normalises to itself.
    """
    name, city, country = _split_location(descriptor)
    width = len(name)
    return Normalised(
        name=name_key(name),
        city=fold(city),
        country=country,
        name_width=width,
        prefix_width=prefix_width(name),
        store_number=_STORE_NUMBER_SHOWN.search(name) is not None,
    )


def descriptor_key(text: str) -> str:
    """The key confirmed mappings are stored under: the normalised name, city and country."""
    return normalise(text).key


# -- a labelled set for measuring resolution ---------------------------------------------------
#
# Synthetic but shaped like a UK high street: trading names composed from common surnames,
# words and trade nouns per merchant category, alliance merchants with one to three locations,
# and many businesses that are not in the alliance, among them the hard ones: a near-identical
# name in the same category and city, the same name in another category, the same name in a
# town where the alliance merchant has no location.

CITIES = (
    "London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Liverpool", "Bristol",
    "Sheffield", "Edinburgh", "Cardiff", "Leicester", "Nottingham", "Newcastle upon Tyne",
    "Newcastle-under-Lyme", "Brighton", "Southampton", "Portsmouth", "Plymouth", "Reading",
    "Oxford", "Cambridge", "York", "Bath", "Norwich", "Exeter", "Coventry", "Derby", "Aberdeen",
    "Dundee", "Swansea", "Belfast", "Milton Keynes", "Northampton", "Luton", "Bournemouth",
    "Middlesbrough", "Sunderland", "Wolverhampton", "Stoke-on-Trent", "Kingston upon Hull",
    "Preston", "Ipswich", "Peterborough", "Canterbury", "Chester", "Lincoln", "Durham",
    "Winchester", "Salisbury", "Carlisle", "Inverness", "Stirling", "Welwyn Garden City",
    "Newport", "Newquay", "St Albans", "St Ives", "Harrogate", "Cheltenham", "Gloucester",
)  # fmt: skip

SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Thomas", "Clarke", "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper",
    "Hill", "Ward", "Hughes", "Moore", "Clark", "King", "Harrison", "Lewis", "Baker", "Lee",
    "Allen", "Morris", "Khan", "Scott", "Watson", "Davis", "Parker", "James", "Bennett",
    "Young", "Phillips", "Richardson", "Mitchell", "Bailey", "Carter", "Cook", "Singh", "Shaw",
    "Bell", "Collins", "Morgan", "Kelly", "Begum", "Miller", "Cox", "Hussain", "Marshall",
    "Simpson", "Price", "Anderson", "Adams", "Wilkinson", "Ali", "Ahmed", "Foster", "Ellis",
    "Murphy", "Chapman", "Mason", "Gray", "Richards", "Webb", "Griffiths", "Hunt", "Palmer",
    "Campbell", "Holmes", "Mills", "Barnes", "Knight", "Lloyd", "Butler", "Russell", "Barker",
    "Fisher", "Stevens", "Jenkins", "Murray", "Dixon", "Harvey", "Graham", "Pearson", "Ahmad",
    "Fletcher", "Walsh", "Kaur", "Gibson", "Howard", "Andrews", "Stewart", "Elliott",
    "Reynolds", "Saunders", "Payne", "Fox", "Ford", "Pearce", "Day", "Brooks", "West", "Lawrence",
)  # fmt: skip

FIRST_NAMES = (
    "Alfie", "Amelia", "Archie", "Ava", "Charlie", "Daisy", "Ella", "Freddie", "George",
    "Grace", "Harry", "Isla", "Jack", "Lily", "Leo", "Mia", "Noah", "Olivia", "Oscar", "Poppy",
    "Rosie", "Ruby", "Sophie", "Theo", "Tom", "Ivy", "Hugo", "Maisie", "Ned", "Priya",
)  # fmt: skip

ADJECTIVES = (
    "Golden", "Red", "Green", "Blue", "Black", "White", "Silver", "Royal", "Old", "New",
    "Little", "Grand", "Happy", "Crooked", "Jolly", "Rising", "Wild", "Secret", "Hidden",
    "Crown", "Copper", "Velvet", "Rustic", "Urban", "Coastal", "Northern", "Olde", "Merry",
    "Lazy", "Brave", "Honest", "Humble", "Clever", "Sunny", "Misty", "Ivory", "Scarlet",
    "Emerald", "Amber", "Hazel", "Noble", "Proper", "Tiny", "Big", "Quiet", "Bright",
)  # fmt: skip

NOUNS = (
    "Lion", "Swan", "Fox", "Stag", "Hart", "Bull", "Bear", "Owl", "Crow", "Raven", "Robin",
    "Wren", "Hare", "Badger", "Otter", "Falcon", "Dragon", "Unicorn", "Anchor", "Bell",
    "Crown", "Oak", "Acorn", "Willow", "Thistle", "Rose", "Lantern", "Kettle", "Teapot",
    "Spoon", "Ladle", "Barrel", "Plough", "Mill", "Bridge", "Lamb", "Feather", "Compass",
    "Harbour", "Orchard", "Meadow", "Pebble", "Lighthouse", "Windmill", "Fern", "Sparrow",
    "Magpie", "Pelican", "Whistle", "Button", "Thimble", "Ribbon", "Saffron", "Ginger", "Olive",
)  # fmt: skip

PLACES = (
    "Riverside", "Market Street", "High Street", "Castle", "Abbey", "Harbourside", "Highfield",
    "Greenway", "Kings Road", "Queens Park", "Station Road", "Church Lane", "Mill Lane",
    "Victoria", "Albert", "Westgate", "Eastgate", "Northgate", "Southside", "Park View",
    "Bridge Street", "Chapel Street", "The Square", "Canal Side", "Hillside", "Westfield",
    "Broadway", "Parkside", "Old Town", "Quayside", "Cathedral", "Priory", "Marina", "Meadowbank",
)  # fmt: skip

FOREIGN = (
    "Bella", "Napoli", "Roma", "Sorrento", "Toscana", "Amalfi", "Milano", "Venezia", "Luigi",
    "Mario", "Casa", "Trattoria", "Osteria", "Sakura", "Tokyo", "Kyoto", "Bombay", "Delhi",
    "Madras", "Punjab", "Taj", "Mumbai", "Istanbul", "Ephesus", "Athena", "Olympus", "Saigon",
    "Hanoi", "Bangkok", "Siam", "Canton", "Peking", "Shanghai", "Havana", "Lisboa", "Porto",
)  # fmt: skip

# Merchant categories of the set: MCC and the trade words their names end with.
TRADES: dict[str, tuple[str, ...]] = {
    "5812": ("Restaurant", "Kitchen", "Bistro", "Grill", "Brasserie", "Dining Rooms", "Tandoori"),
    "5813": ("Inn", "Arms", "Tavern", "Bar", "Taproom", "Alehouse", "Wine Bar"),
    "5814": ("Cafe", "Coffee House", "Fish Bar", "Chippy", "Pizza", "Burgers", "Tea Rooms"),
    "5411": ("Grocers", "Food Market", "Supermarket", "Stores", "Mini Market", "Food Hall"),
    "5462": ("Bakery", "Bakehouse", "Patisserie", "Bakers", "Bread Company"),
    "5499": ("Deli", "Delicatessen", "Cheese Shop", "Farm Shop", "Fine Foods"),
    "5441": ("Sweet Shop", "Confectioners", "Chocolatier", "Fudge Kitchen"),
    "7230": ("Barbers", "Hair Salon", "Hair Studio", "Hairdressers", "Beauty Salon"),
    "7298": ("Spa", "Day Spa", "Wellness Centre", "Beauty Rooms"),
    "5992": ("Florist", "Flowers", "Flower Shop", "Florals"),
    "5942": ("Books", "Bookshop", "Booksellers", "Book Exchange"),
    "5912": ("Pharmacy", "Chemist", "Chemists", "Dispensary"),
    "5251": ("Hardware", "DIY", "Tool Shop", "Ironmongers"),
    "5651": ("Clothing", "Outfitters", "Boutique", "Menswear", "Fashion"),
    "5661": ("Shoes", "Footwear", "Shoe Shop", "Cobblers"),
    "8043": ("Opticians", "Eyecare", "Optometrists", "Eye Centre"),
    "7216": ("Dry Cleaners", "Laundry", "Launderette", "Cleaners"),
    "7997": ("Gym", "Fitness", "Leisure Club", "Health Club", "Boxing Club"),
    "5944": ("Jewellers", "Jewellery", "Goldsmiths", "Watchmakers"),
    "5995": ("Pet Shop", "Pet Supplies", "Aquatics", "Pet Store"),
    "5945": ("Toys", "Toy Shop", "Games", "Hobby Shop", "Model Shop"),
    "5732": ("Electronics", "Phone Repairs", "Computers", "Hi-Fi"),
    "5261": ("Garden Centre", "Nursery", "Garden Supplies", "Plant Shop"),
    "5921": ("Wine Merchants", "Off Licence", "Bottle Shop", "Wines"),
    "7542": ("Car Wash", "Valeting", "Hand Car Wash"),
}


def business_name(mcc: str, rng: random.Random) -> str:
    """A plausible UK trading name for a business of this category."""
    trade = rng.choice(TRADES[mcc])
    surname = rng.choice(SURNAMES)
    template = rng.randrange(10)
    if template == 0:
        return f"{surname}'s {trade}"
    if template == 1:
        return f"{surname} & {rng.choice(SURNAMES)} {trade}"
    if template == 2:
        return f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    if template == 3:
        return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {trade}"
    if template == 4:
        return f"{rng.choice(PLACES)} {trade}"
    if template == 5:
        return f"{rng.choice(FIRST_NAMES)}'s {trade}"
    if template == 6:
        return f"The {rng.choice(NOUNS)} {trade}"
    if template == 7:
        return f"{rng.choice(FOREIGN)} {rng.choice(FOREIGN)} {trade}"
    if template == 8:
        return f"{rng.choice(PLACES)} {rng.choice(NOUNS)} {trade}"
    return f"{surname} Brothers {trade}"


def _near_name(name: str, rng: random.Random) -> str:
    """Another business's name that shares most of this one: a word swapped, added or dropped."""
    words = name.split()
    # Only real words change: "Smith & Jones" is not a different business from "Smith Jones".
    spots = [i for i, w in enumerate(words) if w not in ("&", "The")]
    draw = rng.random()
    pool = NOUNS + SURNAMES + ADJECTIVES + FOREIGN
    if draw < 0.6 or len(spots) < 3:
        words[rng.choice(spots)] = rng.choice(pool)
    elif draw < 0.8:
        words.insert(rng.choice(spots), rng.choice(pool))
    else:
        del words[rng.choice(spots[1:])]
    return " ".join(words)


# What survives of a name behind the longest facilitator prefix ("PAYPAL *"): two businesses
# of one category and town that agree on this much can send identical descriptors.
_SHORTEST_VISIBLE = NAME_WIDTH - len("PAYPAL *")


def _identity(name: str, mcc: str, city: str) -> tuple[str, str, str]:
    return name_key(shown_name(name)[:_SHORTEST_VISIBLE]), mcc, city


@dataclass(frozen=True)
class Business:
    """A place that takes cards; alliance locations carry their merchant and location ids."""

    name: str
    mcc: str
    city: str
    country: str
    merchant_id: int | None = None
    location_id: int | None = None


@dataclass(frozen=True)
class LabelledDescriptor:
    """A noisy descriptor and the truth: its alliance merchant and location, or none."""

    text: str
    mcc: str
    merchant_id: int | None
    location_id: int | None
    kind: str  # "alliance", "other", "near_name", "other_mcc", "other_city"


@dataclass(frozen=True)
class LabelledSet:
    locations: tuple[Business, ...]  # the alliance: one row per merchant location
    descriptors: tuple[LabelledDescriptor, ...]  # distinct (text, mcc)


def _alliance(
    merchants: int, rng: random.Random, taken: set[tuple[str, str, str]]
) -> list[Business]:
    locations: list[Business] = []
    cities = list(CITIES)
    mccs = sorted(TRADES)
    location_id = 0
    for merchant_id in range(1, merchants + 1):
        mcc = rng.choice(mccs)
        count = rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
        while True:
            name = business_name(mcc, rng)
            towns = rng.sample(cities, count)
            if all(_identity(name, mcc, town) not in taken for town in towns):
                break
        for town in towns:
            taken.add(_identity(name, mcc, town))
            location_id += 1
            locations.append(Business(name, mcc, town, "GB", merchant_id, location_id))
    return locations


def _outsider(
    kind: str, alliance: list[Business], rng: random.Random, taken: set[tuple[str, str, str]]
) -> Business | None:
    """A business outside the alliance of this kind, or None when the draw collides."""
    model = rng.choice(alliance)
    if kind == "near_name":
        candidate = Business(_near_name(model.name, rng), model.mcc, model.city, "GB")
    elif kind == "other_mcc":
        mcc = rng.choice([m for m in TRADES if m != model.mcc])
        candidate = Business(model.name, mcc, model.city, "GB")
    elif kind == "other_city":
        candidate = Business(model.name, model.mcc, rng.choice(CITIES), "GB")
    else:
        mcc = rng.choice(sorted(TRADES))
        candidate = Business(business_name(mcc, rng), mcc, rng.choice(CITIES), "GB")
    key = _identity(candidate.name, candidate.mcc, candidate.city)
    if key in taken:
        return None  # indistinguishable from a business we already have: not a fair example
    taken.add(key)
    return candidate


OUTSIDER_KINDS = {"other": 0.45, "near_name": 0.25, "other_mcc": 0.12, "other_city": 0.18}


def labelled_set(
    seed: int, merchants: int, descriptors: int, alliance_share: float = 0.5
) -> LabelledSet:
    """A deterministic labelled set: `merchants` alliance merchants and about `descriptors`
    distinct noisy descriptors, `alliance_share` of them from alliance locations."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not a secret
    taken: set[tuple[str, str, str]] = set()
    alliance = _alliance(merchants, rng, taken)
    outsiders: list[tuple[Business, str]] = []
    kinds, weights = list(OUTSIDER_KINDS), list(OUTSIDER_KINDS.values())
    wanted = round(descriptors * (1 - alliance_share))
    while len(outsiders) < wanted:
        kind = rng.choices(kinds, weights)[0]
        business = _outsider(kind, alliance, rng, taken)
        if business is not None:
            outsiders.append((business, kind))
    seen: set[tuple[str, str]] = set()
    labelled: list[LabelledDescriptor] = []

    def add(business: Business, kind: str) -> None:
        text = noisy_descriptor(business.name, business.city, business.country, rng)
        if (text, business.mcc) not in seen:
            seen.add((text, business.mcc))
            labelled.append(
                LabelledDescriptor(
                    text, business.mcc, business.merchant_id, business.location_id, kind
                )
            )

    for _ in range(descriptors - wanted):
        add(rng.choice(alliance), "alliance")
    for business, kind in outsiders:
        add(business, kind)
    rng.shuffle(labelled)
    return LabelledSet(tuple(alliance), tuple(labelled))
