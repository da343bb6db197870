"""Batch scoring in Spark gives exactly what the Scorecard gives in process, reason codes included."""
from __future__ import annotations

import numpy as np
import pandas as pd

from sesame import FACTORS
from sesame.scorecard import Scorecard
from spark_jobs.score import score_frame, split_scorable


def _data(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    X = pd.DataFrame({
        "ch_max_dpd_365": np.where(rng.random(n) < 0.2, np.maximum(0, 60 - 40 * latent), 0).round(),
        "bp_cancel_rate_90": np.clip(0.2 - 0.05 * latent + rng.normal(0, 0.05, n), 0, 1),
        "fc_inflow_30": np.exp(8 + 0.5 * latent + rng.normal(0, 0.3, n)),
        "it_phone_tenure_months": np.clip(40 + 15 * latent + rng.normal(0, 10, n), 0, None).round(),
        "sc_degree": rng.poisson(np.exp(2 + 0.3 * latent)).astype(float),
    })
    X.loc[rng.random(n) < 0.05, "fc_inflow_30"] = np.nan
    y = (rng.random(n) < 1 / (1 + np.exp(3 + 1.5 * latent))).astype(int)
    return X, y


FACTOR_MAP = {"ch_max_dpd_365": "credit_history", "bp_cancel_rate_90": "behavior_preference",
              "fc_inflow_30": "fulfillment_capacity", "it_phone_tenure_months": "identity_traits",
              "sc_degree": "social_connections"}


def test_spark_scores_equal_in_process(spark):
    X, y = _data()
    model = Scorecard(factors=FACTOR_MAP, on_reversed="drop").fit(X, y)
    inputs = list(X.columns)
    frame = X.assign(user_id=[f"U{i:05d}" for i in range(len(X))])
    sdf = spark.createDataFrame(frame).repartition(4)
    out = score_frame(sdf, model.to_json(), "test-v1", inputs).toPandas().set_index("user_id").loc[frame["user_id"]]
    expected = model.explain(X)
    assert (out["score"].to_numpy() == model.score(X)).all()
    for f in FACTORS:
        assert np.allclose(out[f"{f}_score"].to_numpy(), expected[f"{f}_score"].to_numpy())
        assert (out[f"{f}_points"].to_numpy() == expected[f"{f}_points"].to_numpy()).all()
    assert [list(r) for r in out["reason_codes"]] == [list(r) for r in expected["reason_codes"]]
    assert (out["model_version"] == "test-v1").all()
    # a single row scores the same in process
    one = X.iloc[[17]]
    assert model.score(one)[0] == out["score"].iloc[17]


def test_thin_files_are_excluded_not_scored(spark):
    sdf = spark.createDataFrame(pd.DataFrame({"user_id": ["A", "B", "C"], "history_days": [3, 14, 400]}))
    scorable, excluded = split_scorable(sdf, 14)
    assert sorted(r["user_id"] for r in scorable.collect()) == ["B", "C"]
    assert [(r["user_id"], r["exclusion_code"]) for r in excluded.collect()] == [("A", "THIN_FILE")]
