"""Reference data the service needs beside the snapshots: the reason-code dictionary and the visa rules.

Both come from the dbt seeds, the same files the warehouse builds marts.reason_code_dictionary and the visa
marts from, so the service and the analysts read one definition.
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sesame.config import REPO_ROOT

SEEDS = REPO_ROOT / "dbt" / "seeds"
FACTORS = ("credit_history", "behavior_preference", "fulfillment_capacity", "identity_traits", "social_connections")


@dataclass(frozen=True)
class ReasonCode:
    code: str
    factor: str
    description_en: str
    description_zh: str


@dataclass(frozen=True)
class VisaRule:
    destination: str
    rule_version: str
    min_score: int
    require_identity_verified: bool
    exclude_court_listed: bool
    min_history_days: int
    min_qualifying_nights: int
    valid_from: dt.date
    valid_to: dt.date | None

    def in_force(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@lru_cache(maxsize=None)
def reason_codes(seeds: Path = SEEDS) -> dict[str, ReasonCode]:
    with open(seeds / "feature_registry.csv", encoding="utf-8", newline="") as fh:
        return {row["reason_code"]: ReasonCode(row["reason_code"], row["factor"], row["description_en"],
                                               row["description_zh"]) for row in csv.DictReader(fh)}


@lru_cache(maxsize=None)
def visa_rules(seeds: Path = SEEDS) -> tuple[VisaRule, ...]:
    def _bool(value: str) -> bool:
        return value.strip().lower() in ("true", "1", "yes")

    with open(seeds / "visa_rules.csv", encoding="utf-8", newline="") as fh:
        return tuple(VisaRule(
            destination=row["destination"], rule_version=row["rule_version"], min_score=int(row["min_score"]),
            require_identity_verified=_bool(row["require_identity_verified"]),
            exclude_court_listed=_bool(row["exclude_court_listed"]),
            min_history_days=int(row["min_history_days"]), min_qualifying_nights=int(row["min_qualifying_nights"]),
            valid_from=dt.date.fromisoformat(row["valid_from"]),
            valid_to=dt.date.fromisoformat(row["valid_to"]) if row["valid_to"] else None,
        ) for row in csv.DictReader(fh))


def rules_in_force(day: dt.date) -> dict[str, VisaRule]:
    """Destination -> the rule version that applied on `day` (what the night of `day` judged by)."""
    return {r.destination: r for r in visa_rules() if r.in_force(day)}


def known_destinations() -> set[str]:
    return {r.destination for r in visa_rules()}
