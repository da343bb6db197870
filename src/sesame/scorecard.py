"""The Sesame credit scorecard: binning, weight of evidence, logistic regression and a points table.

A scorecard is built the way credit-risk teams build one:

1. every characteristic (input column) is cut into bins by optimal binning under a shape
   constraint (optbinning): numeric columns into intervals whose bad rate is monotonic or, where the
   data call for it, single-peaked (see ``monotonic_trend``), text columns into groups of categories
   ordered by bad rate; missing values get a bin of their own and text columns get a fallback bin
   for categories never seen in development (both neutral, WoE 0, when empty in development);
2. each bin gets its weight of evidence, ``WoE = ln(share of goods in the bin / share of bads in the
   bin)`` (optbinning's convention: a higher WoE means a *lower* risk);
3. a logistic regression (scikit-learn) predicts "bad" from the WoE-coded characteristics;
4. the regression is turned into integer POINTS per bin, so that a score is a plain sum of table
   look-ups. The fitted model *is* that table: scoring never touches optbinning, and ``save`` writes
   the table as plain JSON that ``load`` reads back into a model that scores identically.

Scaling: 600 points at good:bad odds of 19:1 and 50 points to double the odds (PDO), so
``score = offset + factor * ln(odds_good)`` with ``factor = 50 / ln 2`` and
``offset = 600 - factor * ln 19``. With the regression predicting bad,
``ln(odds_good) = -(intercept + sum_i coef_i * woe_i)``, hence the points of bin ``j`` of
characteristic ``i`` (out of ``n``) are::

    points_ij = -factor * coef_i * woe_ij + (offset - factor * intercept) / n

rounded to an integer; the intercept and offset are spread evenly over the characteristics. A score
is the sum of the integer points of the bins a row falls in, clipped to [350, 950].

Every characteristic belongs to exactly one of the five factors (``sesame.FACTORS``). A factor's
points are the sum of its characteristics' points, so the five factor points add up to the
unclipped score. The factor sub-score (0-100) rescales a factor's points between the lowest and the
highest points that factor can take; a factor without any characteristic gets 50 (neutral) and 0
points.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from sesame import FACTORS, __version__
from sesame.schemas import PROTECTED_COLUMNS

__all__ = [
    "BASE_ODDS",
    "BASE_SCORE",
    "DEFAULT_FACTOR_CAPS",
    "MAX_REASON_CODES",
    "MAX_SCORE",
    "MIN_SCORE",
    "PDO",
    "Scorecard",
    "check_protected",
    "is_protected",
    "odds_to_score",
    "reversed_characteristics",
    "scaling_factor",
    "scaling_offset",
    "score_to_odds",
]

PDO = 50.0
BASE_SCORE = 600.0
BASE_ODDS = 19.0
MIN_SCORE = 350
MAX_SCORE = 950
MAX_REASON_CODES = 4
DEFAULT_FACTOR_CAPS: dict[str, float] = {"social_connections": 60.0}

_TRENDS = ("auto", "auto_asc_desc", "ascending", "descending", "peak", "valley")

FORMAT_NAME = "sesame.scorecard"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------------
# Scaling helpers
# --------------------------------------------------------------------------------------------------

def scaling_factor(pdo: float = PDO) -> float:
    """Points per unit of ln(odds): ``pdo / ln 2``."""
    return float(pdo) / math.log(2.0)


def scaling_offset(pdo: float = PDO, base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS) -> float:
    """The score at ln(odds) = 0: ``base_score - factor * ln(base_odds)``."""
    return float(base_score) - scaling_factor(pdo) * math.log(base_odds)


def odds_to_score(odds_good, pdo: float = PDO, base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS):
    """Good:bad odds to an (unrounded, unclipped) score. ``odds_to_score(19) == 600``.

    Accepts a number or an array; returns the same shape.
    """
    odds = np.asarray(odds_good, dtype=float)
    if np.any(odds <= 0):
        raise ValueError("odds must be positive")
    out = scaling_offset(pdo, base_score, base_odds) + scaling_factor(pdo) * np.log(odds)
    return float(out) if out.ndim == 0 else out


def score_to_odds(score, pdo: float = PDO, base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS):
    """A score to the good:bad odds it stands for. ``score_to_odds(750) == 152`` (19 doubled 3 times).

    Accepts a number or an array; returns the same shape.
    """
    s = np.asarray(score, dtype=float)
    out = np.exp((s - scaling_offset(pdo, base_score, base_odds)) / scaling_factor(pdo))
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------------------
# Guards
# --------------------------------------------------------------------------------------------------

# Name tokens that mark a protected attribute (compared after splitting the column name on anything
# that is not a letter, and on camelCase boundaries). "birth" covers birth_year, birth date,
# date_of_birth and the like.
_PROTECTED_TOKENS = frozenset({
    "gender", "sex", "age", "ethnicity", "ethnic", "race", "religion", "religious", "marital",
    "birth", "birthyear", "birthdate", "birthday", "dob",
})


def _name_tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    return [t for t in re.split(r"[^a-z]+", spaced.lower()) if t]


# "age" of a person is protected; the age of an account, a credit file or a debt is not.
_AGE_OF_A_THING = frozenset({"account", "credit", "file", "history", "loan", "bill", "card", "debt", "phone",
                             "address", "relationship", "tenure", "product", "record", "balance", "oldest"})


def is_protected(name: str) -> bool:
    """Whether a column name denotes a protected attribute (never a model input).

    True for the names in ``sesame.schemas.PROTECTED_COLUMNS`` and for any name whose tokens (split on
    non-letters and camelCase, case-insensitive) include gender, sex, age, ethnicity, race, religion,
    marital, birth, birthdate, birthday, birthyear or dob. So
    ``"personal.status.and.sex"`` and ``"age.in.years"`` are protected, ``"page_views"`` is not, and
    neither is the age of a thing (``"credit_age_days"``, ``"account_age_days"``).
    """
    lowered = str(name).lower()
    if lowered in {c.lower() for c in PROTECTED_COLUMNS}:
        return True
    tokens = _name_tokens(name)
    for i, t in enumerate(tokens):
        if t == "age" and i > 0 and tokens[i - 1] in _AGE_OF_A_THING:
            continue
        if t in _PROTECTED_TOKENS:
            return True
    return False


def check_protected(columns) -> None:
    """Raise ValueError naming the first protected attribute among ``columns``."""
    for col in columns:
        if is_protected(col):
            raise ValueError(
                f"column {col!r} is a protected attribute and may not be a scorecard input; "
                "remove it from X and from factors")


def reversed_characteristics(table: pd.DataFrame) -> list[str]:
    """Characteristics whose points run against the direction of risk.

    ``table`` has one row per bin with columns ``characteristic``, ``woe`` and ``points`` (as
    returned by :meth:`Scorecard.to_frame`). WoE is ln(%good / %bad), so a higher WoE means a lower
    risk and must never earn fewer points: a characteristic is reversed when the least-squares slope
    of its points on its WoE is negative. Returned in table order.
    """
    out = []
    for name, group in table.groupby("characteristic", sort=False):
        woe = group["woe"].to_numpy(dtype=float)
        pts = group["points"].to_numpy(dtype=float)
        if len(woe) < 2 or np.ptp(woe) == 0:
            continue
        slope = np.sum((woe - woe.mean()) * (pts - pts.mean()))
        if slope < 0:
            out.append(name)
    return out


# --------------------------------------------------------------------------------------------------
# Column preparation and bin look-ups (shared by fit and scoring)
# --------------------------------------------------------------------------------------------------

def _is_numerical(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _as_numbers(s: pd.Series, name: str) -> np.ndarray:
    """A float array; missing and infinite values become NaN. Non-numeric text raises."""
    numbers = pd.to_numeric(s, errors="coerce")
    bad = numbers.isna().to_numpy() & ~s.isna().to_numpy()
    if bad.any():
        example = s[bad].iloc[0]
        raise ValueError(f"column {name!r} is numerical but holds the non-numeric value {example!r}")
    out = numbers.astype(float).to_numpy(dtype=float, copy=True)
    out[~np.isfinite(out)] = np.nan
    return out


def _as_text(s: pd.Series) -> np.ndarray:
    """An object array of str; missing values stay NaN."""
    missing = s.isna().to_numpy()
    out = np.empty(len(s), dtype=object)
    out[:] = [str(v) for v in s.to_numpy(dtype=object)]
    out[missing] = np.nan
    return out


def _prepare(s: pd.Series, dtype: str, name: str) -> np.ndarray:
    return _as_numbers(s, name) if dtype == "numerical" else _as_text(s)


class _Compiled:
    """Array form of one characteristic's bins, for fast look-ups."""

    def __init__(self, char: dict):
        self.dtype = char["dtype"]
        bins = char["bins"]
        self.n_bins = len(bins)
        self.missing_index = next(i for i, b in enumerate(bins) if b["kind"] == "missing")
        if self.dtype == "numerical":
            self.splits = np.asarray(char["splits"], dtype=float)
        else:
            self.unseen_index = next(i for i, b in enumerate(bins) if b["kind"] == "unseen")
            self.lookup = {c: i for i, b in enumerate(bins) if b["kind"] == "categories" for c in b["categories"]}
        self.woe = np.array([b.get("woe", 0.0) for b in bins], dtype=float)
        self.points_exact = np.array([b.get("points_exact", 0.0) for b in bins], dtype=float)
        self.points = np.array([b.get("points", 0) for b in bins], dtype=np.int64)

    def indices(self, values: np.ndarray) -> np.ndarray:
        if self.dtype == "numerical":
            idx = np.digitize(values, self.splits, right=False) if len(self.splits) else np.zeros(len(values), int)
            idx = np.asarray(idx, dtype=np.int64)
            idx[np.isnan(values)] = self.missing_index
            return idx
        s = pd.Series(values, dtype=object)
        idx = s.map(self.lookup).fillna(self.unseen_index).to_numpy(dtype=np.int64)
        idx[s.isna().to_numpy()] = self.missing_index
        return idx


def _interval_label(lower, upper) -> str:
    lo = "-inf" if lower is None else f"{lower:.12g}"
    hi = "inf" if upper is None else f"{upper:.12g}"
    return f"[{lo}, {hi})"


def _empty_bins(dtype: str, splits) -> list[dict]:
    """Bins (without statistics) from split points or category groups."""
    bins: list[dict] = []
    if dtype == "numerical":
        edges = [None, *[float(s) for s in splits], None]
        for lo, hi in zip(edges[:-1], edges[1:]):
            bins.append({"bin": _interval_label(lo, hi), "kind": "interval", "lower": lo, "upper": hi})
    else:
        for group in splits:
            cats = [str(c) for c in group]
            bins.append({"bin": ", ".join(cats), "kind": "categories", "categories": cats})
        bins.append({"bin": "(unseen)", "kind": "unseen"})
    bins.append({"bin": "(missing)", "kind": "missing"})
    return bins


def _bin_statistics(bins: list[dict], idx: np.ndarray, y: np.ndarray) -> float:
    """Fill count, bads, goods, WoE and IV of each bin in place; return the total IV.

    WoE = ln((goods_j / goods) / (bads_j / bads)). A bin with no development records (an empty
    missing or unseen bin) gets WoE 0, the population average. A populated bin with no goods or no
    bads gets 0.5 added to both of its counts so that its WoE stays finite.
    """
    n_bins = len(bins)
    bads = np.bincount(idx, weights=y, minlength=n_bins)
    counts = np.bincount(idx, minlength=n_bins).astype(float)
    goods = counts - bads
    total_bads, total_goods = bads.sum(), goods.sum()
    iv_total = 0.0
    for j, b in enumerate(bins):
        b["count"] = int(counts[j])
        b["bads"] = int(bads[j])
        b["goods"] = int(goods[j])
        if counts[j] == 0:
            woe, iv = 0.0, 0.0
        else:
            g, d = goods[j], bads[j]
            if g == 0 or d == 0:
                g, d = g + 0.5, d + 0.5
            share_g, share_b = g / total_goods, d / total_bads
            woe = math.log(share_g / share_b)
            iv = (share_g - share_b) * woe
        b["woe"] = float(woe)
        b["iv"] = float(iv)
        iv_total += iv
    return float(iv_total)


def _is_unimodal(woe) -> bool:
    """At most one change of direction along the WoE of consecutive interval bins."""
    steps = np.sign(np.diff(np.asarray(woe, dtype=float)))
    steps = steps[steps != 0]
    return int(np.sum(steps[1:] != steps[:-1])) <= 1


def _round_points(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (deterministic, independent of numpy's banker's rounding)."""
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# The scorecard
# --------------------------------------------------------------------------------------------------

class Scorecard(ClassifierMixin, BaseEstimator):
    """An optimal-binning / WoE / logistic-regression credit scorecard on the 350-950 scale.

    Parameters
    ----------
    factors : dict
        Every input column mapped to one of the five factors (``sesame.FACTORS``). ``fit`` refuses a
        column of X that has no factor, a factor name that is not one of the five, a mapped column
        missing from X, and protected attributes (see :func:`is_protected`).
    reason_codes : dict, optional
        Column -> reason code (e.g. ``{"credit_history": "CH01"}``). A column without one is reported
        under its name upper-cased.
    factor_caps : dict, optional
        Factor -> the largest spread (highest minus lowest possible points) that factor may have.
        ``None`` means the default ``{"social_connections": 60}``; pass ``{}`` for no cap at all, or
        a factor mapped to ``None`` to leave it uncapped. When a factor's spread exceeds its cap, the
        points of its characteristics are shrunk proportionally around their development-population
        mean before rounding (the factor's average points are kept), and further if rounding still
        leaves the integer spread above the cap. ``predict_proba`` follows the capped points.
    on_reversed : {"raise", "drop"}
        What to do when a characteristic's regression coefficient runs against the direction of risk
        (its points would fall where its WoE says risk falls). ``"raise"`` (default) refuses the
        model; ``"drop"`` removes the most reversed characteristic and refits, repeatedly, recording
        each in ``dropped_``.
    monotonic_trend : str
        Shape of the bad rate across the bins of a numeric characteristic. ``"auto"`` (default) lets
        optbinning detect it among ascending, descending, peak and valley (one turn at most, e.g.
        small and large amounts both riskier than middling ones); should the result turn more than
        once, the characteristic is re-binned with ``"auto_asc_desc"``. ``"auto_asc_desc"`` allows
        strictly monotonic bins only; ``"ascending"``, ``"descending"``, ``"peak"``, ``"valley"``
        force that shape. Text characteristics are grouped by bad rate, which is monotonic by
        construction.
    min_bin_size : float
        Smallest share of development records in a bin (optbinning ``min_bin_size``).
    max_n_bins : int or None
        Most bins per characteristic, not counting the missing and unseen bins.
    min_iv : float
        Characteristics whose binned information value is below this (in particular those for which
        binning finds no split at all, IV 0) are dropped before the regression and recorded in
        ``dropped_``. 0.02 is the customary "not predictive" threshold.
    C : float
        Inverse L2 regularisation strength of the logistic regression.
    random_state : int or None
        Passed to the logistic regression. Binning and the lbfgs solver are deterministic.

    Attributes
    ----------
    characteristics_ : list of dict
        The points table: per characteristic its factor, reason code, dtype, coefficient, IV,
        average development points and bins (interval bounds / category groups / missing / unseen,
        counts, WoE, exact and integer points).
    intercept_, coef_ : the logistic regression (``coef_`` aligned with ``characteristics_``).
    scaling_ : dict of pdo, base_score, base_odds, min_score, max_score, factor, offset.
    factor_info_ : dict factor -> cap, scale applied, min and max possible points, characteristics.
    average_points_ : dict characteristic -> mean integer points in development (reason codes).
    dropped_ : dict column -> why it is not in the model.
    """

    def __init__(self, factors=None, reason_codes=None, factor_caps=None, on_reversed="raise",
                 monotonic_trend="auto", min_bin_size=0.05, max_n_bins=None, min_iv=0.02, C=1.0,
                 random_state=0):
        self.factors = factors
        self.reason_codes = reason_codes
        self.factor_caps = factor_caps
        self.on_reversed = on_reversed
        self.monotonic_trend = monotonic_trend
        self.min_bin_size = min_bin_size
        self.max_n_bins = max_n_bins
        self.min_iv = min_iv
        self.C = C
        self.random_state = random_state

    # ---------------------------------------------------------------------------------- validation

    def _checked_factors(self, columns) -> dict[str, str]:
        if not isinstance(self.factors, Mapping) or not self.factors:
            raise ValueError("factors must be a non-empty dict mapping every input column to a factor")
        check_protected(list(columns))
        check_protected(list(self.factors))
        for col, factor in self.factors.items():
            if factor not in FACTORS:
                raise ValueError(f"column {col!r} is mapped to unknown factor {factor!r}; "
                                 f"factors are {', '.join(FACTORS)}")
        for col in columns:
            if col not in self.factors:
                raise ValueError(f"column {col!r} has no factor; map it in factors to one of {', '.join(FACTORS)}")
        for col in self.factors:
            if col not in columns:
                raise ValueError(f"column {col!r} is mapped to a factor but missing from X")
        return {str(c): str(self.factors[c]) for c in columns}

    def _checked_reason_codes(self, factors: dict[str, str]) -> dict[str, str]:
        given = self.reason_codes or {}
        if not isinstance(given, Mapping):
            raise ValueError("reason_codes must be a dict mapping columns to codes")
        for col, code in given.items():
            if col not in factors:
                raise ValueError(f"reason code given for column {col!r}, which is not a mapped input column")
            if not isinstance(code, str) or not code:
                raise ValueError(f"reason code for column {col!r} must be a non-empty string")
        return {c: str(given.get(c, str(c).upper())) for c in factors}

    def _checked_caps(self) -> dict[str, float | None]:
        caps = DEFAULT_FACTOR_CAPS if self.factor_caps is None else self.factor_caps
        if not isinstance(caps, Mapping):
            raise ValueError("factor_caps must be a dict mapping factors to a points spread")
        out: dict[str, float | None] = {f: None for f in FACTORS}
        for factor, cap in caps.items():
            if factor not in FACTORS:
                raise ValueError(f"factor_caps names unknown factor {factor!r}; factors are {', '.join(FACTORS)}")
            if cap is not None:
                if isinstance(cap, bool) or not isinstance(cap, Real) or not cap > 0 or not math.isfinite(cap):
                    raise ValueError(f"cap for factor {factor!r} must be a positive number, got {cap!r}")
                cap = float(cap)
            out[factor] = cap
        return out

    def _check_params(self) -> None:
        if self.on_reversed not in ("raise", "drop"):
            raise ValueError(f"on_reversed must be 'raise' or 'drop', got {self.on_reversed!r}")
        if self.monotonic_trend not in _TRENDS:
            raise ValueError(f"monotonic_trend must be one of {', '.join(_TRENDS)}, got {self.monotonic_trend!r}")
        if not (isinstance(self.min_bin_size, Real) and 0 < self.min_bin_size <= 0.5):
            raise ValueError(f"min_bin_size must be in (0, 0.5], got {self.min_bin_size!r}")
        if self.max_n_bins is not None and not (isinstance(self.max_n_bins, int) and self.max_n_bins >= 2):
            raise ValueError(f"max_n_bins must be an int >= 2 or None, got {self.max_n_bins!r}")
        if not (isinstance(self.min_iv, Real) and self.min_iv >= 0):
            raise ValueError(f"min_iv must be a number >= 0, got {self.min_iv!r}")
        if not (isinstance(self.C, Real) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")

    @staticmethod
    def _checked_frame(X) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        odd = [c for c in X.columns if not isinstance(c, str)]
        if odd:
            raise ValueError(f"column names must be strings, got {odd[0]!r}")
        if X.columns.duplicated().any():
            dup = X.columns[X.columns.duplicated()][0]
            raise ValueError(f"column {dup!r} appears more than once in X")
        return X

    @staticmethod
    def _checked_target(y, n: int) -> np.ndarray:
        arr = np.asarray(y)
        if arr.ndim != 1 or len(arr) != n:
            raise ValueError(f"y must be one-dimensional with {n} values")
        if pd.isna(arr).any():
            raise ValueError("y holds missing values")
        values = set(np.unique(arr).tolist())
        if not values <= {0, 1, True, False}:
            raise ValueError(f"y must be 1 (bad) or 0 (good), got values {sorted(map(str, values))}")
        out = arr.astype(np.int64)
        if len(set(out.tolist())) < 2:
            raise ValueError("y must contain both bads (1) and goods (0)")
        return out

    # ----------------------------------------------------------------------------------------- fit

    def _optimal_splits(self, name: str, values: np.ndarray, dtype: str, y: np.ndarray, trend: str):
        """optbinning's split points (numerical) or category groups (categorical); None on failure."""
        from optbinning import OptimalBinning  # fit-time only: scoring uses the points table

        present = ~pd.isna(values)
        if not present.any() or len(set(y[present].tolist())) < 2:
            return None

        optb = OptimalBinning(
            name=str(name), dtype=dtype, solver="cp", monotonic_trend=trend,
            min_prebin_size=float(self.min_bin_size), min_bin_size=float(self.min_bin_size),
            max_n_bins=self.max_n_bins,
        )
        optb.fit(values, y)
        if optb.status not in ("OPTIMAL", "FEASIBLE"):
            return None
        if dtype == "numerical":
            return [float(s) for s in np.asarray(optb.splits, dtype=float)]
        return [[str(c) for c in group] for group in optb.splits]

    def _bin_characteristic(self, name: str, values: np.ndarray, dtype: str, y: np.ndarray):
        if dtype == "numerical":
            trend = self.monotonic_trend
            splits = self._optimal_splits(name, values, dtype, y, trend)
            if trend == "auto":
                if splits is not None:
                    trial = {"name": str(name), "dtype": dtype, "splits": splits, "bins": _empty_bins(dtype, splits)}
                    _bin_statistics(trial["bins"], _Compiled(trial).indices(values), y)
                    woe = [b["woe"] for b in trial["bins"] if b["kind"] == "interval"]
                if splits is None or not _is_unimodal(woe):
                    splits = self._optimal_splits(name, values, dtype, y, "auto_asc_desc")
            splits = splits or []
        else:
            # Categories are ordered by bad rate before binning, so a monotonic trend always holds.
            splits = self._optimal_splits(name, values, dtype, y, "auto_asc_desc")
            if not splits:
                seen = sorted({v for v in values if isinstance(v, str)})
                splits = [seen] if seen else []
        char = {"name": str(name), "dtype": dtype, "splits": splits if dtype == "numerical" else None,
                "bins": _empty_bins(dtype, splits)}
        idx = _Compiled(char).indices(values)
        char["iv"] = _bin_statistics(char["bins"], idx, y)
        return char, idx

    def fit(self, X, y):
        """Bin, WoE-code and regress; build the points table. ``y``: 1 = bad, 0 = good."""
        self._check_params()
        X = self._checked_frame(X)
        y = self._checked_target(y, len(X))
        factors = self._checked_factors(list(X.columns))
        codes = self._checked_reason_codes(factors)
        caps = self._checked_caps()

        dropped: dict[str, str] = {}
        chars: dict[str, dict] = {}
        woe_columns: dict[str, np.ndarray] = {}
        for col in X.columns:
            dtype = "numerical" if _is_numerical(X[col]) else "categorical"
            values = _prepare(X[col], dtype, col)
            char, idx = self._bin_characteristic(col, values, dtype, y)
            populated = sum(1 for b in char["bins"] if b["count"] > 0)
            if populated < 2 or char["iv"] < self.min_iv:
                why = "binning found no split" if populated < 2 else "binning found too little separation"
                dropped[str(col)] = f"{why}: information value {char['iv']:.4f} below min_iv {self.min_iv:g}"
                continue
            char["factor"] = factors[col]
            char["reason_code"] = codes[col]
            chars[str(col)] = char
            woe_columns[str(col)] = np.array([b["woe"] for b in char["bins"]])[idx]

        while True:
            if not chars:
                raise ValueError("no characteristic is left to build a scorecard from; dropped: "
                                 + "; ".join(f"{k}: {v}" for k, v in dropped.items()))
            names = list(chars)
            W = np.column_stack([woe_columns[n] for n in names])
            lr = LogisticRegression(C=float(self.C), solver="lbfgs", max_iter=5000, tol=1e-10,
                                    random_state=self.random_state)
            lr.fit(W, y)
            coef = lr.coef_[0]
            # WoE = ln(%good/%bad) rises as risk falls, so with y = 1 for bad a coefficient must be <= 0.
            reversed_ = [(n, float(b)) for n, b in zip(names, coef) if b > 0]
            if not reversed_:
                break
            if self.on_reversed == "raise":
                listed = ", ".join(f"{n!r} (coefficient {b:+.4f})" for n, b in reversed_)
                raise ValueError(
                    f"characteristic {listed} runs against the direction of risk: its points would rise where "
                    "its weight of evidence says risk rises (usually a strongly correlated partner); remove it "
                    "or pass on_reversed='drop'")
            worst, b = max(reversed_, key=lambda t: t[1])
            dropped[worst] = f"reversed: coefficient {b:+.4f} runs against the direction of risk"
            del chars[worst]

        self.scaling_ = {
            "pdo": PDO, "base_score": BASE_SCORE, "base_odds": BASE_ODDS,
            "min_score": MIN_SCORE, "max_score": MAX_SCORE,
            "factor": scaling_factor(PDO), "offset": scaling_offset(PDO, BASE_SCORE, BASE_ODDS),
        }
        self.intercept_ = np.array([float(lr.intercept_[0])])
        self.coef_ = np.array([[float(b) for b in coef]])
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.dropped_ = dropped

        factor, offset = self.scaling_["factor"], self.scaling_["offset"]
        n = len(names)
        share = (offset - factor * self.intercept_[0]) / n
        exact: dict[str, np.ndarray] = {}
        for name, b in zip(names, coef):
            char = chars[name]
            char["coefficient"] = float(b)
            exact[name] = np.array([-factor * float(b) * bn["woe"] + share for bn in char["bins"]])

        # Factor caps: shrink around the development mean until the integer spread fits.
        factor_info = {}
        for f in FACTORS:
            members = [nm for nm in names if chars[nm]["factor"] == f]
            cap = caps[f]
            scale = 1.0
            if cap is not None and members:
                counts = {nm: np.array([bn["count"] for bn in chars[nm]["bins"]], dtype=float) for nm in members}
                means = {nm: float(np.average(exact[nm], weights=counts[nm])) for nm in members}
                spread = sum(float(np.ptp(exact[nm])) for nm in members)
                int_spread = sum(int(np.ptp(_round_points(exact[nm]))) for nm in members)
                if spread > cap or int_spread > cap:
                    scale = min(1.0, cap / spread)
                    for _ in range(2000):
                        shrunk = {nm: means[nm] + scale * (exact[nm] - means[nm]) for nm in members}
                        if sum(int(np.ptp(_round_points(shrunk[nm]))) for nm in members) <= cap:
                            break
                        scale *= 0.99
                    exact.update(shrunk)
            factor_info[f] = {"cap": cap, "scale": float(scale), "characteristics": members}

        for name in names:
            char = chars[name]
            char["factor_scale"] = factor_info[char["factor"]]["scale"]
            pts = _round_points(exact[name])
            for bn, e, p in zip(char["bins"], exact[name], pts):
                bn["points_exact"] = float(e)
                bn["points"] = int(p)
            counts = np.array([bn["count"] for bn in char["bins"]], dtype=float)
            char["average_points"] = float(np.sum(counts * pts) / counts.sum())

        for f, info in factor_info.items():
            members = info["characteristics"]
            info["min_points"] = int(sum(min(bn["points"] for bn in chars[nm]["bins"]) for nm in members))
            info["max_points"] = int(sum(max(bn["points"] for bn in chars[nm]["bins"]) for nm in members))

        self.characteristics_ = [self._ordered_characteristic(chars[nm]) for nm in names]
        self.factor_info_ = factor_info
        self.average_points_ = {c["name"]: c["average_points"] for c in self.characteristics_}
        self._compiled = None
        return self

    @staticmethod
    def _ordered_characteristic(char: dict) -> dict:
        keys = ("name", "factor", "reason_code", "dtype", "coefficient", "factor_scale", "iv",
                "average_points", "splits", "bins")
        return {k: char.get(k) for k in keys}

    # ------------------------------------------------------------------------------------- scoring

    def _check_fitted(self) -> None:
        if not hasattr(self, "characteristics_"):
            raise ValueError("this Scorecard is not fitted yet; call fit or Scorecard.load first")

    def _compile(self) -> list[_Compiled]:
        if getattr(self, "_compiled", None) is None:
            self._compiled = [_Compiled(c) for c in self.characteristics_]
        return self._compiled

    def _bin_indices(self, X) -> list[np.ndarray]:
        self._check_fitted()
        X = self._checked_frame(X)
        missing = [c["name"] for c in self.characteristics_ if c["name"] not in X.columns]
        if missing:
            raise ValueError(f"column {missing[0]!r} is a scorecard characteristic but missing from X")
        out = []
        for char, comp in zip(self.characteristics_, self._compile()):
            values = _prepare(X[char["name"]], char["dtype"], char["name"])
            out.append(comp.indices(values))
        return out

    def _points_matrix(self, X) -> np.ndarray:
        idx = self._bin_indices(X)
        comps = self._compile()
        if not idx:
            return np.zeros((len(X), 0), dtype=np.int64)
        return np.column_stack([comp.points[i] for comp, i in zip(comps, idx)]).astype(np.int64)

    def points(self, X) -> pd.DataFrame:
        """Integer points per characteristic (columns in table order), indexed like X."""
        mat = self._points_matrix(X)
        return pd.DataFrame(mat, index=X.index, columns=[c["name"] for c in self.characteristics_])

    def decision_function(self, X) -> np.ndarray:
        """ln(odds of bad) from the table's unrounded points (the logistic regression's logit)."""
        idx = self._bin_indices(X)
        total = np.zeros(len(X), dtype=float)
        for comp, i in zip(self._compile(), idx):
            total = total + comp.points_exact[i]
        return -(total - self.scaling_["offset"]) / self.scaling_["factor"]

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2): probability of good, probability of bad."""
        p_bad = expit(self.decision_function(X))
        return np.column_stack([1.0 - p_bad, p_bad])

    def predict(self, X) -> np.ndarray:
        """1 (bad) where the probability of bad is at least one half, else 0."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def raw_score(self, X) -> np.ndarray:
        """The unclipped integer score: the sum of the integer points."""
        return self._points_matrix(X).sum(axis=1).astype(np.int64)

    def score(self, X) -> np.ndarray:
        """Integer scores in [350, 950]; a higher score means a lower risk."""
        raw = self.raw_score(X)
        return np.clip(raw, int(self.scaling_["min_score"]), int(self.scaling_["max_score"])).astype(np.int64)

    def explain(self, X) -> pd.DataFrame:
        """Per row: factor sub-scores (0-100), factor points, the score and up to 4 reason codes.

        Columns: ``<factor>_score`` for the five factors, ``<factor>_points`` for the five factors,
        ``score`` and ``reason_codes``. A sub-score is ``100 * (points - min) / (max - min)`` rounded,
        with min / max the lowest / highest points the factor can take; a factor without
        characteristics scores 50 with 0 points. Reason codes name the characteristics whose points
        fall furthest below their development-population average (``average_points_``), only those
        strictly below it, most important first (ties in table order).
        """
        mat = self._points_matrix(X)
        names = [c["name"] for c in self.characteristics_]
        col_of = {nm: k for k, nm in enumerate(names)}
        out = {}
        factor_points = {}
        for f in FACTORS:
            info = self.factor_info_[f]
            cols = [col_of[nm] for nm in info["characteristics"]]
            pts = mat[:, cols].sum(axis=1) if cols else np.zeros(len(X), dtype=np.int64)
            factor_points[f] = pts.astype(np.int64)
            lo, hi = info["min_points"], info["max_points"]
            if not cols or hi <= lo:
                sub = np.full(len(X), 50, dtype=np.int64)
            else:
                sub = _round_points(100.0 * (pts - lo) / (hi - lo))
                sub = np.clip(sub, 0, 100).astype(np.int64)
            out[f"{f}_score"] = sub
        for f in FACTORS:
            out[f"{f}_points"] = factor_points[f]
        raw = mat.sum(axis=1)
        out["score"] = np.clip(raw, int(self.scaling_["min_score"]), int(self.scaling_["max_score"])).astype(np.int64)

        averages = np.array([self.average_points_[nm] for nm in names], dtype=float)
        codes = np.array([c["reason_code"] for c in self.characteristics_], dtype=object)
        shortfall = averages[None, :] - mat
        order = np.argsort(-shortfall, axis=1, kind="stable")
        reasons = []
        for r in range(len(X)):
            picked = [k for k in order[r, :MAX_REASON_CODES] if shortfall[r, k] > 0]
            reasons.append([str(codes[k]) for k in picked])
        out["reason_codes"] = reasons
        return pd.DataFrame(out, index=X.index)

    # ---------------------------------------------------------------------------------- the table

    def to_frame(self) -> pd.DataFrame:
        """The points table, one row per bin: what risk teams review and sign off."""
        self._check_fitted()
        rows = []
        for c in self.characteristics_:
            total = sum(b["count"] for b in c["bins"])
            for b in c["bins"]:
                if b["kind"] == "interval":
                    definition = b["bin"]
                elif b["kind"] == "categories":
                    definition = " | ".join(b["categories"])
                else:
                    definition = b["bin"]
                rows.append({
                    "characteristic": c["name"], "factor": c["factor"], "reason_code": c["reason_code"],
                    "bin": definition, "kind": b["kind"],
                    "lower": b.get("lower"), "upper": b.get("upper"),
                    "count": b["count"], "share": b["count"] / total if total else 0.0,
                    "bads": b["bads"], "goods": b["goods"],
                    "bad_rate": b["bads"] / b["count"] if b["count"] else np.nan,
                    "woe": b["woe"], "iv": b["iv"], "coefficient": c["coefficient"],
                    "factor_scale": c["factor_scale"], "points": b["points"],
                })
        return pd.DataFrame(rows)

    scorecard_table = to_frame

    # -------------------------------------------------------------------------------- persistence

    def to_dict(self) -> dict:
        """The whole fitted model as plain JSON-ready data."""
        self._check_fitted()
        return _jsonable({
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "sesame_version": __version__,
            "params": self.get_params(deep=False),
            "scaling": self.scaling_,
            "intercept": float(self.intercept_[0]),
            "feature_names_in": list(self.feature_names_in_),
            "factors": self.factor_info_,
            "characteristics": self.characteristics_,
            "dropped": self.dropped_,
        })

    @classmethod
    def from_dict(cls, data: Mapping) -> Scorecard:
        if data.get("format") != FORMAT_NAME:
            raise ValueError(f"not a saved Sesame scorecard (format {data.get('format')!r})")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported scorecard format version {data.get('format_version')!r}")
        model = cls(**data["params"])
        model.scaling_ = dict(data["scaling"])
        model.intercept_ = np.array([float(data["intercept"])])
        model.characteristics_ = [dict(c) for c in data["characteristics"]]
        model.coef_ = np.array([[float(c["coefficient"]) for c in model.characteristics_]])
        model.classes_ = np.array([0, 1])
        model.feature_names_in_ = np.array(data["feature_names_in"], dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        model.factor_info_ = {f: dict(data["factors"][f]) for f in FACTORS}
        model.average_points_ = {c["name"]: float(c["average_points"]) for c in model.characteristics_}
        model.dropped_ = dict(data["dropped"])
        model._compiled = None
        return model

    def to_json(self) -> str:
        """The model as JSON text: what `save` writes and what Spark executors load."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Scorecard:
        return cls.from_dict(json.loads(text))

    def save(self, path) -> None:
        """Write the model as JSON (UTF-8)."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path) -> Scorecard:
        """Read a model written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    return obj
