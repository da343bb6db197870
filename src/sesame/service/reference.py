"""Reference data the service answers with: the reason-code dictionary and the visa rules of the night it serves
(the published reason_code_dictionary and visa_rules datasets, loaded with the night's other snapshots), and the
wording of a rule's conditions for a "not eligible" answer.

The repository's seeds are read for one thing only: which destinations an operator may grant a key for before
any night has been published.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sesame.config import REPO_ROOT

SEEDS = REPO_ROOT / "dbt" / "seeds"


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


def explain(
    condition: str, rule: VisaRule | None, score: int, history_days: int | None, qualifying_nights: int
) -> dict:
    """A failed condition as the service states it: what the rule requires, what the night found, and a sentence."""
    if rule is None:  # a night published without its rules: name the condition only
        return {
            "condition": condition,
            "required": None,
            "actual": None,
            "description_en": f"condition {condition} failed",
        }
    if condition == "min_score":
        required, actual = rule.min_score, score
        text = f"score {score} is below the minimum of {rule.min_score}"
    elif condition == "identity_verified":
        required, actual = True, False
        text = "identity is not verified"
    elif condition == "not_court_listed":
        required, actual = False, True
        text = "listed on the court's list of dishonest judgment debtors"
    elif condition == "min_history_days":
        required, actual = rule.min_history_days, history_days
        text = f"{history_days or 0} days of history; {rule.min_history_days} required"
    elif condition == "min_qualifying_nights":
        required, actual = rule.min_qualifying_nights, qualifying_nights
        text = (
            f"score reached {rule.min_score} on {qualifying_nights} of the last {rule.min_qualifying_nights} "
            f"scored nights; all {rule.min_qualifying_nights} required"
        )
    else:  # a condition added by a later minor version of the contract
        required, actual, text = None, None, f"condition {condition} failed"
    return {"condition": condition, "required": required, "actual": actual, "description_en": text}


def defined_destinations(seeds: Path = SEEDS) -> set[str]:
    """Destinations the repository's visa rules define (the rules the next night publishes)."""
    with open(seeds / "visa_rules.csv", encoding="utf-8", newline="") as fh:
        return {row["destination"] for row in csv.DictReader(fh)}
