"""Model and population metrics a risk team reads: AUC, KS, Gini, PSI, bad rate by score band, fairness."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from sesame import scale

# Score bands for bad-rate tables: the tiers of the contract, the top tier split at the visa thresholds.
BANDS = list(scale.BAD_RATE_BANDS)
BAND_LABELS = [f"{low}-{high - 1}" for low, high in zip(BANDS, BANDS[1:])]


def auc(y, p_bad) -> float:
    return float(roc_auc_score(y, p_bad))


def ks(y, p_bad) -> float:
    fpr, tpr, _ = roc_curve(y, p_bad)
    return float(np.max(tpr - fpr))


def gini(y, p_bad) -> float:
    return 2 * auc(y, p_bad) - 1


def psi(expected, actual, bins: int | list = 10) -> float:
    """Population stability index of `actual` against `expected` (bins from expected's quantiles)."""
    expected = pd.Series(expected).dropna().to_numpy(dtype=float)
    actual = pd.Series(actual).dropna().to_numpy(dtype=float)
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    if isinstance(bins, int):
        edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    else:
        edges = np.asarray(bins, dtype=float)
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def bad_rate_by_band(scores, y) -> pd.DataFrame:
    band = pd.cut(pd.Series(scores), BANDS, right=False, labels=BAND_LABELS)
    table = (
        pd.DataFrame({"band": band, "bad": np.asarray(y)}).groupby("band", observed=False)["bad"].agg(["count", "sum"])
    )
    table = table.rename(columns={"count": "users", "sum": "bads"})
    table["bad_rate"] = table["bads"] / table["users"].where(table["users"] > 0)
    return table.reset_index()


def monotonic_bad_rate(table: pd.DataFrame, min_users: int = 30, z: float = 2.0) -> bool:
    """Bad rate falls as the score band rises: no higher band (with enough users to say) has a bad rate above
    a lower band's by more than `z` standard errors of the difference, so sampling noise in thin bands does
    not count as a reversal."""
    bands = table.loc[table["users"] >= min_users, ["users", "bads"]].to_numpy(dtype=float)
    for i in range(len(bands)):
        for j in range(i + 1, len(bands)):
            (n_lo, b_lo), (n_hi, b_hi) = bands[i], bands[j]
            pooled = (b_lo + b_hi) / (n_lo + n_hi)
            se = np.sqrt(pooled * (1 - pooled) * (1 / n_lo + 1 / n_hi))
            if b_hi / n_hi - b_lo / n_lo > z * se + 1e-12:
                return False
    return True


def age_band(birth_year, on_year: int) -> pd.Series:
    age = on_year - pd.Series(birth_year, dtype="float")
    return pd.cut(age, [0, 25, 35, 50, 65, 200], right=False, labels=["<25", "25-34", "35-49", "50-64", "65+"]).astype(
        str
    )


def approval_ratio(scores, groups, threshold: int) -> dict:
    """Approval rate (score >= threshold) per group and the ratio of the lowest to the highest."""
    frame = pd.DataFrame({"ok": np.asarray(scores) >= threshold, "g": np.asarray(groups)})
    frame = frame[frame["g"].notna() & (frame["g"].astype(str) != "nan")]
    rates = frame.groupby("g")["ok"].mean()
    ratio = float(rates.min() / rates.max()) if len(rates) and rates.max() > 0 else float("nan")
    return {"threshold": threshold, "rates": {str(k): float(v) for k, v in rates.items()}, "ratio": ratio}


def auc_by_group(y, p_bad, groups) -> dict:
    frame = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p_bad), "g": np.asarray(groups)})
    out = {}
    for g, part in frame.groupby("g"):
        if part["y"].nunique() == 2:
            out[str(g)] = auc(part["y"], part["p"])
    return out


# ------------------------------------------------------------------------------------------------ calibration
# Calibration is read in 50-point score bands; the top band closes at 950.
CALIBRATION_BANDS = list(scale.CALIBRATION_BANDS)


def wilson_interval(bads: int, rows: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a bad rate: unlike the normal approximation it stays inside [0, 1] and
    is honest for the few bads of a good band."""
    if rows <= 0:
        return float("nan"), float("nan")
    p = bads / rows
    centre = (p + z * z / (2 * rows)) / (1 + z * z / rows)
    half = z / (1 + z * z / rows) * np.sqrt(p * (1 - p) / rows + z * z / (4 * rows * rows))
    # the interval always holds the observed rate; at 0 or all bads rounding could leave it a hair outside
    return float(min(p, max(0.0, centre - half))), float(max(p, min(1.0, centre + half)))


def claimed_bad_rate(scores) -> np.ndarray:
    """The bad rate a score claims through the odds scaling (600 at 19:1, 50 points to double the odds)."""
    from sesame.scorecard import score_to_odds

    return 1.0 / (1.0 + np.asarray(score_to_odds(np.asarray(scores, dtype=float)), dtype=float))


def calibration_table(scores, y, bands: list[int] = CALIBRATION_BANDS) -> list[dict]:
    """Per score band holding rows: rows, bads, observed bad rate with its 95% Wilson interval, and the bad rate
    the band's scores claim (the mean of what each row's score claims)."""
    scores = np.asarray(scores, dtype=float)
    y = np.asarray(y, dtype=float)
    claimed = claimed_bad_rate(scores)
    out = []
    for i, low in enumerate(bands[:-1]):
        high = bands[i + 1] - 1 if i + 2 < len(bands) else bands[-1]
        rows = (scores >= low) & (scores <= high)
        n = int(rows.sum())
        if n == 0:
            continue
        bads = int(y[rows].sum())
        lo, hi = wilson_interval(bads, n)
        out.append(
            {
                "band_low": int(low),
                "band_high": int(high),
                "rows": n,
                "bads": bads,
                "observed_bad_rate": bads / n,
                "observed_low": lo,
                "observed_high": hi,
                "claimed_bad_rate": float(claimed[rows].mean()),
            }
        )
    return out


def calibration_summary(scores, y) -> dict:
    """Calibration in the large (observed minus claimed bad rate over the sample) and the calibration slope (the
    slope of a logistic regression of the outcome on the claimed log-odds: 1 is perfect, under 1 means the score
    spreads risk wider than it is)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, dtype=int)
    claimed = np.clip(claimed_bad_rate(scores), 1e-9, 1 - 1e-9)
    logit = np.log(claimed / (1 - claimed)).reshape(-1, 1)
    slope = float("nan")
    if len(set(y.tolist())) == 2 and np.ptp(logit) > 0:
        slope = float(LogisticRegression(C=np.inf, max_iter=1000).fit(logit, y).coef_[0, 0])
    observed, mean_claimed = float(y.mean()), float(claimed.mean())
    return {
        "rows": int(len(y)),
        "bads": int(y.sum()),
        "observed_bad_rate": observed,
        "claimed_bad_rate": mean_claimed,
        "in_the_large": observed - mean_claimed,
        "slope": slope,
    }


def calibration_verdict(
    table: list[dict], summary: dict, slope_range: tuple[float, float], min_bads: int, confidence: float = 0.95
) -> tuple[str, str]:
    """("passed" | "failed" | "not_tested", why): the slope within its range, and in every band with at least
    `min_bads` bads the claimed bad rate inside the observed rate's Wilson interval.

    The bands are judged together at `confidence`: with k bands each interval is taken at 1 - (1 - confidence) / k
    (Bonferroni). Each band alone at 95% would fail a model that claims exactly the right odds once in three
    nights of nine bands; the card still shows every band's own 95% interval."""
    from scipy.stats import norm

    judged = [b for b in table if b["bads"] >= min_bads]
    slope = summary["slope"]
    if not judged or not np.isfinite(slope):
        return "not_tested", (
            f"no band has {min_bads} bads or the slope could not be estimated "
            f"({summary['bads']} bads in {summary['rows']} rows)"
        )
    z = float(norm.ppf(1 - (1 - confidence) / (2 * len(judged))))
    intervals = [wilson_interval(b["bads"], b["rows"], z) for b in judged]
    off = [(b, i) for b, i in zip(judged, intervals) if not i[0] <= b["claimed_bad_rate"] <= i[1]]
    lo, hi = slope_range
    why = (
        f"slope {slope:.3f} (allowed {lo}-{hi}); {len(judged) - len(off)} of {len(judged)} bands with "
        f"{min_bads}+ bads claim a bad rate inside the observed interval (all {len(judged)} bands together at "
        f"{confidence:.0%}: each at {1 - (1 - confidence) / len(judged):.2%})"
    )
    if off:
        why += "; outside: " + ", ".join(
            f"{b['band_low']}-{b['band_high']} claims {b['claimed_bad_rate']:.2%}, observed {b['observed_bad_rate']:.2%} "
            f"[{i[0]:.2%}, {i[1]:.2%}]"
            for b, i in off
        )
    return ("passed" if lo <= slope <= hi and not off else "failed"), why
