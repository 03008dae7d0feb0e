"""Merchant resolution: card transactions to alliance locations by terminal, mapping or descriptor.

Order of precedence (DESIGN.md, matching rule 2):

1. terminal: the transaction's acquirer merchant id (DE 42) and terminal id (DE 41) name a
   location; a row for that exact terminal wins over the merchant id's "any terminal" row;
2. mapping: the descriptor's key (`descriptors.descriptor_key`) was confirmed by a person;
3. fuzzy: the descriptor's name key is compared with the alliance's names, within the same
   MCC and city only, and accepted when the confidence reaches the threshold and no other
   merchant scores nearly as well. Everything else stays unresolved; descriptors that had a
   candidate go to the review frame for a person to confirm or reject.

Fuzzy work is done once per distinct (descriptor, MCC) and joined back: a feed has millions
of rows but far fewer distinct descriptors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl
from rapidfuzz import fuzz, process

from beyondbank.cards import frames
from beyondbank.cards.descriptors import (
    CITY_WIDTH,
    NAME_WIDTH,
    Normalised,
    descriptor_key,
    fold,
    name_key,
    normalise,
    shown_name,
)

TERMINAL = "terminal"
MAPPING = "mapping"
FUZZY = "fuzzy"

# Terminal keys: a null terminal_id stands for every terminal of that acquirer merchant id.
TERMINALS = pl.Schema(
    {
        "acquirer_merchant_id": pl.String(),
        "terminal_id": pl.String(),
        "location_id": pl.Int64(),
        "merchant_id": pl.Int64(),
    }
)

# Descriptors a person confirmed, by `descriptor_key`.
MAPPINGS = pl.Schema(
    {"descriptor_key": pl.String(), "merchant_id": pl.Int64(), "location_id": pl.Int64()}
)

# The alliance as the fuzzy matcher sees it: one row per merchant location.
MERCHANTS = pl.Schema(
    {
        "merchant_id": pl.Int64(),
        "location_id": pl.Int64(),
        "name": pl.String(),
        "mcc": pl.String(),
        "city": pl.String(),
        "country": pl.String(),  # ISO alpha-2
    }
)

BELOW_THRESHOLD = "below_threshold"
AMBIGUOUS = "ambiguous"

# Distinct descriptors a person should look at: the best candidate, its confidence, why it was
# not accepted, and how many of this run's transactions carry the descriptor.
REVIEW = pl.Schema(
    {
        "acceptor_name_location": pl.String(),
        "descriptor_key": pl.String(),
        "mcc": pl.String(),
        "city": pl.String(),
        "merchant_id": pl.Int64(),
        "location_id": pl.Int64(),
        "score": pl.Float64(),
        "reason": pl.String(),  # BELOW_THRESHOLD or AMBIGUOUS
        "transactions": pl.Int64(),
    }
)

Scorer = Callable[..., float]

SCORERS: dict[str, Scorer] = {
    "ratio": fuzz.ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "WRatio": fuzz.WRatio,
    "QRatio": fuzz.QRatio,
    "partial_ratio": fuzz.partial_ratio,
}

# Chosen with `python -m bench.cards.descriptors` (docs/descriptors.md): on the labelled set
# the plain Indel ratio keeps precision above 0.99 with the best recall; token_set_ratio,
# WRatio and partial_ratio forgive the extra or missing word that tells businesses apart.
DEFAULT_SCORER = "ratio"
DEFAULT_THRESHOLD = 0.92
# A second merchant within this much of the best makes a match ambiguous.
DEFAULT_MARGIN = 0.05
# Below this, a candidate is not worth a reviewer's time: on the labelled set, 0.75 keeps in
# the review queue nearly every alliance descriptor 0.6 would, with 43% fewer rows to read.
DEFAULT_REVIEW_FLOOR = 0.75

# How far the city evidence lets a name score count: the city as sent matches, matches as an
# abbreviation, is missing (the name alone must carry it, and a short name cannot), or names
# no alliance city.
CITY_EXACT = 1.0
CITY_ABBREVIATED = 0.97
CITY_MISSING = 0.95
CITY_MISSING_SHORT_NAME = 0.85
CITY_UNKNOWN = 0.75
# Score points off a cut name whose last word, cut to a stub of at most SHORT_CUT_WORD letters,
# begins with another letter than the candidate's.
CUT_WORD_PENALTY = 5.0
SHORT_CUT_WORD = 3
# A name needs this many words to be matched without a city.
DISTINCTIVE_WORDS = 3

# A distinct descriptor's answer, before it is joined back to its transactions.
_ANSWER = pl.Schema(
    {
        "_d_merchant": pl.Int64(),
        "_d_location": pl.Int64(),
        "_d_by": pl.String(),
        "_d_confidence": pl.Float64(),
    }
)

_REMEMBERED = 2_000_000  # distinct (descriptor, MCC) answers kept per resolver

# Enough candidates to find the best merchant and the best other merchant behind its locations.
_CANDIDATES = 6


@dataclass(frozen=True)
class Resolution:
    """Transactions with their merchant (frames.RESOLVED) and the descriptors to review (REVIEW)."""

    resolved: pl.DataFrame
    review: pl.DataFrame


@dataclass(frozen=True)
class Match:
    """The fuzzy matcher's answer for one descriptor."""

    merchant_id: int | None
    location_id: int | None
    confidence: float
    accepted: bool
    ambiguous: bool


_NO_MATCH = Match(None, None, 0.0, accepted=False, ambiguous=False)


def _is_abbreviation(short: str, city: str) -> bool:
    """`short` keeps the city's first letter and some of its letters in order ("MCR", "NEWC")."""
    if len(short) < 3 or short[0] != city[0]:
        return False
    letters = iter(city.replace(" ", ""))
    return all(c in letters for c in short.replace(" ", ""))


def _last_initial(key: str) -> str:
    return key[key.rfind(" ") + 1 : key.rfind(" ") + 2]


def _differing_cut_words_penalised(
    name: str, found: list[tuple[str, float, int]]
) -> list[tuple[str, float, int]]:
    """Scores of a cut name, lowered where a short cut word begins differently.

    The field cut the last word to its first letters ("DRY C…"); a candidate whose word there
    begins with another letter ("DRY O…") has another word, however alike the rest. A longer
    stub ("EPAIR") carries enough letters for the score itself to judge, typos included.
    """
    if len(name) - name.rfind(" ") - 1 > SHORT_CUT_WORD:
        return found
    initial = _last_initial(name)
    rescored = [
        (choice, score if _last_initial(choice) == initial else score - CUT_WORD_PENALTY, i)
        for choice, score, i in found
    ]
    return sorted(rescored, key=lambda f: -f[1])


@dataclass(frozen=True)
class _Candidate:
    merchant_id: int
    shown: str  # the trading name as a network prints it
    key: str
    location_ids: tuple[int, ...]


class _Block:
    """The alliance locations of one MCC in some cities, one candidate per merchant and name."""

    def __init__(self, rows: Iterable[tuple[int, int, str, str]]) -> None:
        grouped: dict[tuple[int, str, str], list[int]] = {}
        for merchant_id, location_id, shown, key in rows:
            grouped.setdefault((merchant_id, shown, key), []).append(location_id)
        self.candidates = [
            _Candidate(m, shown, key, tuple(sorted(locs)))
            for (m, shown, key), locs in sorted(grouped.items())
        ]
        self.keys = [c.key for c in self.candidates]
        self._shown: dict[int, list[str]] = {}
        self._keys: dict[int, list[str]] = {}
        self._both: dict[tuple[int, int], list[str]] = {}

    def keys_cut(self, visible: int, length: int, cut: Callable[[str, int], str]) -> list[str]:
        """Each candidate twice: as a field cut after `visible` characters of its name would
        leave it, and its key cut to `length` (a till's abbreviation may have made room)."""
        shown = self._shown.get(visible)
        if shown is None:
            shown = self._shown[visible] = [
                c.key if len(c.shown) <= visible else cut(c.shown, visible) for c in self.candidates
            ]
        keys = self._keys.get(length)
        if keys is None:
            keys = self._keys[length] = [k[:length].rstrip() for k in self.keys]
        both = self._both.get((visible, length))
        if both is None:
            both = self._both[(visible, length)] = shown + keys
        return both


@dataclass(frozen=True)
class _Reading:
    """One way to read a descriptor: its name key, the width it took, its cities."""

    name: str
    width: int
    cities: frozenset[int] | None  # None: any city of the MCC
    factor: float


class Resolver:
    """Resolves transactions against one snapshot of terminals, mappings and the alliance."""

    def __init__(
        self,
        terminals: pl.DataFrame,
        mappings: pl.DataFrame,
        merchants: pl.DataFrame,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        scorer: str = DEFAULT_SCORER,
        margin: float = DEFAULT_MARGIN,
        review_floor: float = DEFAULT_REVIEW_FLOOR,
        missing_city: float = CITY_MISSING,
        distinctive_words: int = DISTINCTIVE_WORDS,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold {threshold} is outside [0, 1]")
        self.threshold = threshold
        self.margin = margin
        self.review_floor = review_floor
        self.missing_city = missing_city
        self.distinctive_words = distinctive_words
        self._scorer = SCORERS[scorer]
        terminals = frames.conform(terminals, TERMINALS, "terminals")
        self._specific = (
            terminals.filter(pl.col("terminal_id").is_not_null())
            .unique(["acquirer_merchant_id", "terminal_id"], keep="first", maintain_order=True)
            .rename({"merchant_id": "_t_merchant", "location_id": "_t_location"})
        )
        self._any_terminal = (
            terminals.filter(pl.col("terminal_id").is_null())
            .unique("acquirer_merchant_id", keep="first", maintain_order=True)
            .drop("terminal_id")
            .rename({"merchant_id": "_a_merchant", "location_id": "_a_location"})
        )
        self._mappings = (
            frames.conform(mappings, MAPPINGS, "mappings")
            .unique("descriptor_key", keep="last", maintain_order=True)
            .rename({"merchant_id": "_m_merchant", "location_id": "_m_location"})
        )
        self._index_alliance(frames.conform(merchants, MERCHANTS, "merchants"))

    # -- the alliance, indexed for blocking -------------------------------------------------------

    def _index_alliance(self, merchants: pl.DataFrame) -> None:
        self._city_ids: dict[tuple[str, str], int] = {}  # (country, folded city) → id
        self._city_names: dict[str, list[tuple[str, int]]] = {}  # country → (folded, id)
        rows: dict[tuple[str, int], list[tuple[int, int, str, str]]] = {}
        for merchant_id, location_id, name, mcc, city, country in merchants.iter_rows():
            place = (country or "", fold(city or ""))
            if place not in self._city_ids:
                self._city_ids[place] = len(self._city_ids)
                self._city_names.setdefault(place[0], []).append((place[1], self._city_ids[place]))
            city_id = self._city_ids[place]
            shown = shown_name(name)
            rows.setdefault((mcc, city_id), []).append(
                (merchant_id, location_id, shown, name_key(shown))
            )
        self._rows = rows
        # Every spelling of a city a descriptor may carry whole: folded, and cut to its field.
        self._city_lookup: dict[str, dict[str, frozenset[int]]] = {}
        for (country, city), city_id in self._city_ids.items():
            for spelling in {city, city[:CITY_WIDTH].rstrip()}:
                for scope in {country, ""}:
                    known = self._city_lookup.setdefault(scope, {})
                    known[spelling] = known.get(spelling, frozenset()) | {city_id}
        self._abbreviations: dict[tuple[str, str], frozenset[int]] = {}
        self._city_names_anywhere = [e for names in self._city_names.values() for e in names]
        # The cities of an MCC's locations, in one country or ("") in any.
        self._cities_by_mcc: dict[tuple[str, str], frozenset[int]] = {}
        country_of = {city_id: country for (country, _), city_id in self._city_ids.items()}
        for mcc, city_id in rows:
            for scope in (country_of[city_id], ""):
                cities = self._cities_by_mcc.get((mcc, scope), frozenset())
                self._cities_by_mcc[(mcc, scope)] = cities | {city_id}
        self._blocks: dict[tuple[str, frozenset[int]], _Block] = {}
        self._cut_keys: dict[tuple[str, int], str] = {}
        self._places: dict[tuple[str, str], tuple[frozenset[int] | None, float]] = {}
        # A feed repeats its descriptors from chunk to chunk and day to day: each distinct
        # (descriptor, MCC) is matched once per resolver. Bounded, as a resolver may live long.
        self._answers: dict[tuple[str, str], Match] = {}
        self._normalised_texts: dict[str, Normalised] = {}

    def _block(self, mcc: str, cities: frozenset[int]) -> _Block:
        key = (mcc, cities)
        block = self._blocks.get(key)
        if block is None:
            rows = [r for c in sorted(cities) for r in self._rows.get((mcc, c), ())]
            block = self._blocks[key] = _Block(rows)
        return block

    def _place(self, city: str, country: str) -> tuple[frozenset[int] | None, float]:
        """The alliance cities a descriptor's city may stand for, and how sure that is.

        None means the city is missing or unrecognised: any city of the MCC may be meant.
        """
        cached = self._places.get((city, country))
        if cached is not None:
            return cached
        known = self._known_cities(country)
        answer: tuple[frozenset[int] | None, float]
        exact = self._city_lookup.get(country, {}).get(city)
        if not city:
            answer = (None, self.missing_city)
        elif exact:
            answer = (exact, CITY_EXACT)
        else:
            short = frozenset(i for name, i in known if _is_abbreviation(city, name))
            answer = (short, CITY_ABBREVIATED) if short else (None, CITY_UNKNOWN)
        self._places[(city, country)] = answer
        return answer

    def _known_cities(self, country: str) -> list[tuple[str, int]]:
        """(folded name, id) of the alliance's cities in this country, or anywhere."""
        return self._city_names.get(country, []) if country else self._city_names_anywhere

    def _city_in_name(self, name: str, country: str) -> tuple[str, frozenset[int], bool] | None:
        """A known city at the end of a name ("CAFE NERO BATH"): the name without it, the
        city, and whether it was abbreviated ("CAFE NERO BRSTL")."""
        words = name.split()
        exact = self._city_lookup.get(country, {})
        for size in (4, 3, 2, 1):
            if len(words) > size and (ids := exact.get(" ".join(words[-size:]))):
                return " ".join(words[:-size]), ids, False
        if not words:
            return None
        known = self._known_cities(country)
        # A full name runs into a city of 12 characters: "BOOKSELLPETERBOROUGH".
        last = words[-1]
        glued = [(c, i) for c, i in known if len(last) > len(c) >= 4 and last.endswith(c)]
        if glued:
            rest = [*words[:-1], last[: -len(glued[0][0])]]
            return " ".join(rest), frozenset(i for _, i in glued), False
        for size in (2, 1):
            tail = " ".join(words[-size:])
            if len(words) <= size or len(tail) < 4:
                continue
            ids = self._abbreviations.get((tail, country))
            if ids is None:
                ids = frozenset(i for city, i in known if _is_abbreviation(tail, city))
                self._abbreviations[(tail, country)] = ids
            if ids:
                return " ".join(words[:-size]), ids, True
        return None

    # -- fuzzy matching ---------------------------------------------------------------------------

    def match(self, descriptor: str, mcc: str) -> Match:
        """The fuzzy answer for one descriptor of one MCC (no terminals, no mappings)."""
        return self._match(normalise(descriptor), mcc)

    def _cut_key(self, shown: str, visible: int) -> str:
        """The key of what a field showing `visible` characters of a trading name keeps."""
        key = self._cut_keys.get((shown, visible))
        if key is None:
            key = self._cut_keys[(shown, visible)] = name_key(shown[:visible])
        return key

    def _readings(self, parts: Normalised) -> list[_Reading]:
        """The ways to read a descriptor's name and city, most likely first.

        A compacted descriptor keeps its city at the end of the name part; a double space
        inside a compacted name makes the split by padding put words of the name in the city.
        """
        cities, factor = self._place(parts.city, parts.country)
        if not parts.city and len(parts.name.split()) < self.distinctive_words:
            # One- and two-word names ("CASTLE BAR", "THE OLDE STAG") recur from town to town:
            # without a city they are a candidate for review, never an answer.
            factor = CITY_MISSING_SHORT_NAME
        as_sent = _Reading(parts.name, parts.name_width, cities, factor)
        if cities is not None:
            return [as_sent]
        if parts.city:
            joined = name_key(f"{parts.name} {parts.city}")
            width = parts.name_width + 1 + len(parts.city)
        else:
            joined, width = parts.name, parts.name_width
        found = self._city_in_name(joined, parts.country)
        if found is None:
            return [as_sent]
        name, inferred, abbreviated = found
        # The city's characters and the space before it were not part of the name.
        width -= len(joined) - len(name)
        if not abbreviated:
            return [_Reading(name, width, inferred, CITY_EXACT)]
        return [_Reading(name, width, inferred, CITY_ABBREVIATED), as_sent]

    def _match(self, parts: Normalised, mcc: str) -> Match:
        best = _NO_MATCH
        for reading in self._readings(parts):
            found = self._match_reading(reading, parts, mcc)
            if (found.accepted, found.confidence) > (best.accepted, best.confidence):
                best = found
        return best

    def _match_reading(self, reading: _Reading, parts: Normalised, mcc: str) -> Match:
        cities = reading.cities
        if cities is None:
            cities = self._cities_by_mcc.get((mcc, parts.country), frozenset())
        if not reading.name or not cities:
            return _NO_MATCH
        block = self._block(mcc, cities)
        if not block.candidates:
            return _NO_MATCH
        # A name that filled its field was probably cut: compare it with as much of each
        # trading name as the field would have shown.
        truncated = reading.width >= NAME_WIDTH - 1 and not parts.store_number
        if truncated:
            choices = block.keys_cut(
                reading.width - parts.prefix_width, len(reading.name), self._cut_key
            )
        else:
            choices = block.keys
        found = process.extract(
            reading.name,
            choices,
            scorer=self._scorer,
            limit=_CANDIDATES * (2 if truncated else 1),
            score_cutoff=self.review_floor * 100 / reading.factor,
        )
        if not found:
            return _NO_MATCH
        if truncated:
            found = _differing_cut_words_penalised(reading.name, found)
        n = len(block.candidates)
        ranked: dict[int, float] = {}
        for _, score, index in found:
            ranked.setdefault(index % n, score)
        return self._decide(block, list(ranked.items()), reading.factor)

    def _decide(self, block: _Block, ranked: list[tuple[int, float]], factor: float) -> Match:
        """The best candidate, unless another merchant comes within the margin."""
        best_index, best_score = ranked[0]
        best = block.candidates[best_index]
        near = best_score - self.margin * 100
        rivals = [block.candidates[i] for i, score in ranked[1:] if score >= near]
        ambiguous = any(c.merchant_id != best.merchant_id for c in rivals)
        locations = {
            loc
            for c in (best, *rivals)
            if c.merchant_id == best.merchant_id
            for loc in c.location_ids
        }
        # Several locations of the merchant fit equally: the merchant is known, the place is not.
        location_id = next(iter(locations)) if len(locations) == 1 else None
        confidence = round(best_score / 100 * factor, 4)
        return Match(
            merchant_id=best.merchant_id,
            location_id=location_id,
            confidence=confidence,
            accepted=confidence >= self.threshold and not ambiguous,
            ambiguous=ambiguous,
        )

    def _normalised(self, text: str) -> Normalised:
        parts = self._normalised_texts.get(text)
        if parts is None:
            if len(self._normalised_texts) >= _REMEMBERED:
                self._normalised_texts.clear()
            parts = self._normalised_texts[text] = normalise(text)
        return parts

    def _remembered(self, text: str, parts: Normalised, mcc: str) -> Match:
        found = self._answers.get((text, mcc))
        if found is None:
            if len(self._answers) >= _REMEMBERED:
                self._answers.clear()
            found = self._answers[(text, mcc)] = self._match(parts, mcc)
        return found

    # -- frames -----------------------------------------------------------------------------------

    def learn(self, transactions: pl.DataFrame) -> None:
        """Match ahead the descriptors of these rows that no terminal resolves, so that
        resolving the rows later (in another order, another chunk) only looks answers up."""
        self._resolve_distinct(self._descriptors(self._by_terminal(transactions)))

    def resolve(self, transactions: pl.DataFrame) -> Resolution:
        """The transactions with frames.RESOLUTION appended, and the descriptors to review."""
        tx = self._by_terminal(transactions)
        by_terminal = pl.col("_t_merchant").is_not_null() | pl.col("_a_merchant").is_not_null()
        specific = pl.col("_t_merchant").is_not_null()
        by_descriptor, review = self._resolve_distinct(self._descriptors(tx))
        tx = tx.join(
            by_descriptor, on=["acceptor_name_location", "mcc"], how="left", maintain_order="left"
        )
        resolved = tx.with_columns(
            pl.when(specific)
            .then("_t_merchant")
            .when(by_terminal)
            .then("_a_merchant")
            .otherwise("_d_merchant")
            .alias("merchant_id"),
            pl.when(specific)
            .then("_t_location")
            .when(by_terminal)
            .then("_a_location")
            .otherwise("_d_location")
            .alias("location_id"),
            pl.when(by_terminal).then(pl.lit(TERMINAL)).otherwise("_d_by").alias("resolved_by"),
            pl.when(by_terminal).then(pl.lit(1.0)).otherwise("_d_confidence").alias("confidence"),
        )
        return Resolution(frames.conform(resolved, frames.RESOLVED, "resolved"), review)

    def _by_terminal(self, transactions: pl.DataFrame) -> pl.DataFrame:
        """The transactions with the merchant and location their terminal stands for, if any."""
        tx = frames.conform(transactions, frames.TRANSACTIONS, "transactions")
        return tx.join(
            self._specific,
            on=["acquirer_merchant_id", "terminal_id"],
            how="left",
            maintain_order="left",
        ).join(self._any_terminal, on="acquirer_merchant_id", how="left", maintain_order="left")

    @staticmethod
    def _descriptors(tx: pl.DataFrame) -> pl.DataFrame:
        """The distinct (descriptor, MCC) of the rows no terminal resolved, with their counts."""
        by_terminal = pl.col("_t_merchant").is_not_null() | pl.col("_a_merchant").is_not_null()
        return (
            tx.filter(~by_terminal & pl.col("acceptor_name_location").is_not_null())
            .group_by("acceptor_name_location", "mcc", maintain_order=True)
            .agg(pl.len().cast(pl.Int64).alias("transactions"))
        )

    def _resolve_distinct(self, distinct: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Per distinct (descriptor, MCC): the merchant it resolves to, and the review rows."""
        texts = distinct["acceptor_name_location"].unique().to_list()
        parts = {t: self._normalised(t) for t in texts}
        keyed = distinct.with_columns(
            pl.col("acceptor_name_location")
            .replace_strict({t: p.key for t, p in parts.items()}, return_dtype=pl.String())
            .alias("descriptor_key")
        ).join(self._mappings, on="descriptor_key", how="left", maintain_order="left")

        answers: list[tuple[int | None, int | None, str | None, float | None]] = []
        review: list[dict[str, Any]] = []
        for text, mcc, count, key, m_merchant, m_location in keyed.select(
            "acceptor_name_location",
            "mcc",
            "transactions",
            "descriptor_key",
            "_m_merchant",
            "_m_location",
        ).iter_rows():
            if m_merchant is not None:
                answers.append((m_merchant, m_location, MAPPING, 1.0))
                continue
            found = self._remembered(text, parts[text], mcc)
            if found.accepted:
                answers.append((found.merchant_id, found.location_id, FUZZY, found.confidence))
                continue
            answers.append((None, None, None, None))
            if found.merchant_id is not None:
                review.append(
                    {
                        "acceptor_name_location": text,
                        "descriptor_key": key,
                        "mcc": mcc,
                        "city": parts[text].city,
                        "merchant_id": found.merchant_id,
                        "location_id": found.location_id,
                        "score": found.confidence,
                        "reason": AMBIGUOUS if found.ambiguous else BELOW_THRESHOLD,
                        "transactions": count,
                    }
                )
        by_descriptor = pl.concat(
            [
                keyed.select("acceptor_name_location", "mcc"),
                pl.DataFrame(answers, schema=_ANSWER, orient="row"),
            ],
            how="horizontal",
        )
        review_frame = pl.DataFrame(review, schema=REVIEW).sort(
            ["transactions", "score", "acceptor_name_location", "mcc"],
            descending=[True, True, False, False],
        )
        return by_descriptor, review_frame


__all__ = [
    "MAPPINGS",
    "MERCHANTS",
    "REVIEW",
    "TERMINALS",
    "Match",
    "Resolution",
    "Resolver",
    "descriptor_key",
]
