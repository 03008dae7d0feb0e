"""The six life domains (吃住行游购娱), their sub-industries and MCC codes, read from taxonomy.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import yaml

TAXONOMY_FILE = Path(__file__).with_name("taxonomy.yaml")


class LifeDomain(StrEnum):
    DINING = "dining"
    LODGING = "lodging"
    TRANSPORT = "transport"
    TRAVEL = "travel"
    SHOPPING = "shopping"
    ENTERTAINMENT = "entertainment"


@dataclass(frozen=True, slots=True, eq=False)
class SubIndustry:
    code: str
    domain: LifeDomain
    names: dict[str, str]  # locale → name
    mcc: tuple[str, ...]

    def name(self, locale: str = "en") -> str:
        return self.names.get(locale) or self.names["en"]


@dataclass(frozen=True, slots=True, eq=False)
class Domain:
    code: LifeDomain
    names: dict[str, str]
    sub_industries: tuple[SubIndustry, ...]

    def name(self, locale: str = "en") -> str:
        return self.names.get(locale) or self.names["en"]


class Taxonomy:
    def __init__(self, domains: tuple[Domain, ...]) -> None:
        self.domains = domains
        self.sub_industries = tuple(s for d in domains for s in d.sub_industries)
        self._by_code = {s.code: s for s in self.sub_industries}
        self._by_mcc = {code: s for s in self.sub_industries for code in s.mcc}

    def sub_industry(self, code: str) -> SubIndustry | None:
        return self._by_code.get(code)

    def for_mcc(self, mcc: str) -> SubIndustry | None:
        return self._by_mcc.get(mcc)

    def domain(self, code: LifeDomain) -> Domain:
        return next(d for d in self.domains if d.code == code)


def load_taxonomy(path: Path = TAXONOMY_FILE) -> Taxonomy:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    domains = []
    for d in raw["domains"]:
        domain = LifeDomain(d["code"])
        subs = tuple(
            SubIndustry(code=s["code"], domain=domain, names=dict(s["name"]), mcc=tuple(s["mcc"]))
            for s in d["sub_industries"]
        )
        domains.append(Domain(code=domain, names=dict(d["name"]), sub_industries=subs))
    return Taxonomy(domains=tuple(domains))


@lru_cache
def taxonomy() -> Taxonomy:
    """The shipped taxonomy, read once: it is reference data that changes only with a release."""
    return load_taxonomy()
