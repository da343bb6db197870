"""Model and population metrics a risk team reads: AUC, KS, Gini, PSI, bad rate by score band, fairness."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

# Score bands for bad-rate tables: the tiers of the contract, the top tier split at the visa thresholds.
BANDS = [350, 550, 600, 650, 700, 750, 951]
BAND_LABELS = ["350-549", "550-599", "600-649", "650-699", "700-749", "750-950"]


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
    table = pd.DataFrame({"band": band, "bad": np.asarray(y)}).groupby("band", observed=False)["bad"].agg(["count", "sum"])
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
    return pd.cut(age, [0, 25, 35, 50, 65, 200], right=False, labels=["<25", "25-34", "35-49", "50-64", "65+"]).astype(str)


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
