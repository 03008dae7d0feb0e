"""Card-acceptor descriptors (ISO 8583 DE 43): the field's layout, realistic noise, and normalisation.

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
from collections.abc import Callable
from dataclasses import dataclass

NAME_WIDTH = 25
CITY_WIDTH = 13
COUNTRY_WIDTH = 2
FIELD_WIDTH = NAME_WIDTH + CITY_WIDTH + COUNTRY_WIDTH

# Payment facilitators and processors put their own tag before the sub-merchant's name.
AGGREGATOR_PREFIXES = ("SQ *", "PAYPAL *", "TST* ", "SP * ", "ZETTLE_*", "SUMUP *", "IZ *")

# A prefix is whatever precedes an asterisk near the start ("SQ *", "ZETTLE_*", "TST*"): every
# facilitator tag we know ends that way, and names almost never contain one so early.
_PREFIX = re.compile(r"^[^*]{0,12}\*+")
_STORE_NUMBER = re.compile(r"#\s*\d*")

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
    `truncated` says the name filled its field, so the merchant's full name may have been cut.
    """

    name: str
    city: str
    country: str
    truncated: bool = False


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


def _network_text(text: str) -> str:
    return "".join(_network_char(c) for c in " ".join(text.split()))


def acceptor_field(name: str, city: str, country: str) -> str:
    """The 40-character DE 43 field: name 1-25, city 26-38, country 39-40, padded and truncated."""
    return (
        _network_text(name)[:NAME_WIDTH].ljust(NAME_WIDTH)
        + _network_text(city)[:CITY_WIDTH].ljust(CITY_WIDTH)
        + _network_text(country)[:COUNTRY_WIDTH].ljust(COUNTRY_WIDTH)
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
    words = _network_text(name).split()
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

    place = _network_text(city)
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
    while (prefix := _PREFIX.match(text)) is not None:
        text = text[prefix.end() :]
    text = _STORE_NUMBER.sub(" ", text)
    words = []
    for word in fold(text).split():
        if word.isdigit() or word in STOPWORDS:
            continue
        words.append(_CANONICAL.get(word, word))
    return " ".join(words)


def _fixed_point(step: Callable[[str], str], text: str) -> str:
    for _ in range(8):
        after = step(text)
        if after == text:
            return after
        text = after
    return text


def name_key(text: str) -> str:
    """A merchant name reduced to its identifying words; idempotent, never longer than `text`.

    Used alike on descriptor names and on the alliance's trading names, so both sides of a
    comparison went through the same steps.
    """
    return _fixed_point(_name_pass, text)


def _split_location(descriptor: str) -> tuple[str, str, str, bool]:
    """(name part, city part, country, name filled its field) of a raw descriptor."""
    if len(descriptor) == FIELD_WIDTH:
        name = descriptor[:NAME_WIDTH]
        city = descriptor[NAME_WIDTH : NAME_WIDTH + CITY_WIDTH]
        country = descriptor[NAME_WIDTH + CITY_WIDTH :].strip().upper()
        if country == "" or (country.isascii() and country.isalpha() and len(country) == 2):
            return name, city, country, not name[-1].isspace()
    text = descriptor.rstrip()
    country = ""
    words = text.rsplit(None, 1)
    if len(words) == 2 and words[1].isascii() and words[1].upper() in COUNTRIES:
        text, country = words[0].rstrip(), words[1].upper()
    # A padded field keeps two or more spaces before the city even when it was trimmed.
    parts = re.split(r"\s{2,}", text.strip())
    if len(parts) >= 2:
        return " ".join(parts[:-1]), parts[-1], country, False
    # Without padding we cannot tell the city from the name; the resolver looks for a
    # known city at the end of the name. Long names are likely to have been cut.
    return text, "", country, len(text.strip()) >= NAME_WIDTH - 3


def _capped_name(text: str) -> str:
    return name_key(text)[:NAME_WIDTH].rstrip()


def normalise(descriptor: str) -> Normalised:
    """The descriptor's name key, city and country; deterministic, never raises.

    Steps: split off the country and city (by position in a 40-character field, else by
    padding), drop facilitator prefixes ("SQ *"), store numbers ("#0042", " 042"), legal forms
    and articles, fold case, accents and punctuation, canonicalise till abbreviations.
    Rendering the result with `acceptor_field` and normalising again gives the same result.
    """
    name, city, country, truncated = _split_location(descriptor)
    return Normalised(
        name=_fixed_point(_capped_name, name),
        city=fold(city)[:CITY_WIDTH].rstrip(),
        country=country,
        truncated=truncated,
    )


def descriptor_key(text: str) -> str:
    """The key confirmed mappings are stored under: the normalised name, city and country."""
    parts = normalise(text)
    return f"{parts.name}|{parts.city}|{parts.country}"
