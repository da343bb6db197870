"""The score scale, in one place: range, anchor, points to double the odds, tiers, odds and bad-rate conversions
and the band edges the reports and metrics read scores in.

Standard library only, so the score service, the DAGs and the load test import it without numpy or pandas.

Scaling: 600 points at good:bad odds of 19:1 and 50 points to double the odds (PDO), rounded and clipped to
350-950, so ``score = offset + factor * ln(odds)`` with ``factor = PDO / ln 2`` and
``offset = BASE_SCORE - factor * ln(BASE_ODDS)``; 750 stands for odds of 152:1. The scorecard applies the same
scaling to arrays (``sesame.scorecard.score_to_odds`` and ``odds_to_score``); the functions here take one number.

Tiers, as published (the dbt macro ``score_tier`` gives the same, which tests/test_scale.py holds it to)::

    poor        350-549
    fair        550-599
    good        600-649
    very_good   650-699
    excellent   700-950
"""

from __future__ import annotations

import math

__all__ = [
    "BAD_RATE_BANDS",
    "BASE_ODDS",
    "BASE_SCORE",
    "CALIBRATION_BANDS",
    "OUTER_EDGES",
    "PDO",
    "SCORE_MAX",
    "SCORE_MIN",
    "TIERS",
    "TIER_NAMES",
    "bad_rate_to_score",
    "odds_to_score",
    "scaling_factor",
    "scaling_offset",
    "score_to_bad_rate",
    "score_to_odds",
    "tier_of",
]

SCORE_MIN = 350
SCORE_MAX = 950
BASE_SCORE = 600.0  # the anchor: this score stands for good:bad odds of BASE_ODDS
BASE_ODDS = 19.0
PDO = 50.0  # points to double the odds

# (tier, lowest score, highest score), in order; together they cover SCORE_MIN..SCORE_MAX without gap or overlap.
TIERS: tuple[tuple[str, int, int], ...] = (
    ("poor", SCORE_MIN, 549),
    ("fair", 550, 599),
    ("good", 600, 649),
    ("very_good", 650, 699),
    ("excellent", 700, SCORE_MAX),
)
TIER_NAMES: tuple[str, ...] = tuple(name for name, _, _ in TIERS)

# Lower edges of the bad-rate bands of the risk tables, closed by SCORE_MAX + 1: the tiers, the top tier split at
# 750 (the highest visa threshold).
BAD_RATE_BANDS: tuple[int, ...] = (*(low for _, low, _ in TIERS), 750, SCORE_MAX + 1)
# Calibration is read in 50-point score bands (lower edges); the top band closes at SCORE_MAX.
CALIBRATION_BANDS: tuple[int, ...] = tuple(range(SCORE_MIN, SCORE_MAX + 1, 50))
# The outer edges of a histogram of scores: half a point beyond either end, so both end scores fall inside.
OUTER_EDGES: tuple[float, float] = (SCORE_MIN - 0.5, SCORE_MAX + 0.5)


def tier_of(score: float) -> str | None:
    """The tier whose band holds the score; None outside 350-950 (as the dbt macro gives null)."""
    return next((name for name, low, high in TIERS if low <= score <= high), None)


def scaling_factor(pdo: float = PDO) -> float:
    """Points per unit of ln(odds): ``pdo / ln 2``."""
    return float(pdo) / math.log(2.0)


def scaling_offset(pdo: float = PDO, base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS) -> float:
    """The score at ln(odds) = 0: ``base_score - factor * ln(base_odds)``."""
    return float(base_score) - scaling_factor(pdo) * math.log(base_odds)


def score_to_odds(score: float) -> float:
    """The good:bad odds a score stands for: 19 at 600, doubled every 50 points (``score_to_odds(750) == 152``)."""
    return BASE_ODDS * 2 ** ((score - BASE_SCORE) / PDO)


def odds_to_score(odds_good: float) -> float:
    """Good:bad odds to the (unrounded, unclipped) score that stands for them: ``odds_to_score(19) == 600``."""
    if odds_good <= 0:
        raise ValueError("odds must be positive")
    return scaling_offset() + scaling_factor() * math.log(odds_good)


def score_to_bad_rate(score: float) -> float:
    """The bad rate a score claims: ``1 / (1 + odds)``."""
    return 1.0 / (1.0 + score_to_odds(score))


def bad_rate_to_score(bad_rate: float) -> float:
    """The (unrounded, unclipped) score that claims a bad rate strictly between 0 and 1."""
    if not 0.0 < bad_rate < 1.0:
        raise ValueError("a bad rate must be strictly between 0 and 1")
    return odds_to_score((1.0 - bad_rate) / bad_rate)
