"""Batch scoring in Spark gives exactly what the segmented scorecard gives in process, reason codes included, and
users already in default or with a thin file are excluded, not scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sesame import FACTORS
from sesame.scorecard import Scorecard
from sesame.segments import CREDIT_FILE, NO_CREDIT_FILE, SegmentedScorecard
from spark_jobs.score import score_frame, split_scorable

pytestmark = pytest.mark.integration  # Spark: left out of make test-fast


def _data(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    X = pd.DataFrame(
        {
            "ch_max_dpd_365": np.where(rng.random(n) < 0.2, np.maximum(0, 60 - 40 * latent), 0).round(),
            "bp_cancel_rate_90": np.clip(0.2 - 0.05 * latent + rng.normal(0, 0.05, n), 0, 1),
            "fc_inflow_30": np.exp(8 + 0.5 * latent + rng.normal(0, 0.3, n)),
            "it_phone_tenure_months": np.clip(40 + 15 * latent + rng.normal(0, 10, n), 0, None).round(),
            "sc_degree": rng.poisson(np.exp(2 + 0.3 * latent)).astype(float),
        }
    )
    X.loc[rng.random(n) < 0.05, "fc_inflow_30"] = np.nan
    y = (rng.random(n) < 1 / (1 + np.exp(3 + 1.5 * latent))).astype(int)
    return X, y


FACTOR_MAP = {
    "ch_max_dpd_365": "credit_history",
    "bp_cancel_rate_90": "behavior_preference",
    "fc_inflow_30": "fulfillment_capacity",
    "it_phone_tenure_months": "identity_traits",
    "sc_degree": "social_connections",
}


def test_spark_scores_equal_in_process(spark):
    X, y = _data()
    no_file_inputs = [c for c in X.columns if c != "ch_max_dpd_365"]
    model = SegmentedScorecard(
        {
            CREDIT_FILE: Scorecard(factors=FACTOR_MAP).fit(X, y),
            NO_CREDIT_FILE: Scorecard(factors={c: FACTOR_MAP[c] for c in no_file_inputs}).fit(X[no_file_inputs], y),
        }
    )
    segments = np.where(np.arange(len(X)) % 3 == 0, NO_CREDIT_FILE, CREDIT_FILE)
    inputs = list(X.columns)
    frame = X.assign(user_id=[f"U{i:05d}" for i in range(len(X))], segment=segments)
    sdf = spark.createDataFrame(frame).repartition(4)
    out = score_frame(sdf, model.to_json(), "test-v1", inputs).toPandas().set_index("user_id").loc[frame["user_id"]]
    expected = model.explain(X, segments)
    assert (out["score"].to_numpy() == model.score(X, segments)).all()
    assert (out["segment"].to_numpy() == segments).all()
    for f in FACTORS:
        got, want = out[f"{f}_score"], expected[f"{f}_score"]
        assert (got.isna().to_numpy() == want.isna().to_numpy()).all()
        assert np.allclose(got[want.notna().to_numpy()].astype(float), want[want.notna()].astype(float))
        assert (out[f"{f}_points"].to_numpy() == expected[f"{f}_points"].to_numpy()).all()
    # the no-file scorecard has no credit-history characteristic: no sub-score, never a made-up one
    assert out.loc[segments == NO_CREDIT_FILE, "credit_history_score"].isna().all()
    assert out.loc[segments == CREDIT_FILE, "credit_history_score"].notna().all()
    assert [list(r) for r in out["reason_codes"]] == [list(r) for r in expected["reason_codes"]]
    assert (out["model_version"] == "test-v1").all()
    # a single row scores the same in process, by its own segment's scorecard
    one = X.iloc[[18]]
    assert model.models[NO_CREDIT_FILE].score(one[no_file_inputs])[0] == out["score"].iloc[18]


def test_defaults_and_thin_files_are_excluded_not_scored(spark):
    sdf = spark.createDataFrame(
        pd.DataFrame(
            {
                "user_id": ["A", "B", "C", "D", "E"],
                "history_days": [3, 14, 400, 400, 5],
                "current_dpd": [0, 89, 90, None, 120],
            }
        )
    )
    scorable, excluded = split_scorable(sdf, 14, 90)
    assert sorted(r["user_id"] for r in scorable.collect()) == ["B", "D"]
    assert sorted((r["user_id"], r["exclusion_code"]) for r in excluded.collect()) == [
        ("A", "THIN_FILE"),
        ("C", "CURRENT_DEFAULT"),
        ("E", "CURRENT_DEFAULT"),
    ]
