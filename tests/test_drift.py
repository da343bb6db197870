"""Nightly drift checks: a stable population passes, a shifted one warns or fails unless accepted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sesame.drift import FAIL_PSI, development_profile, drift_checks
from sesame.scorecard import Scorecard


def _sample(n, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    X = pd.DataFrame({"ch_x": latent + shift + rng.normal(0, 0.5, n), "bp_y": rng.normal(size=n) - 0.5 * latent})
    y = (rng.random(n) < 1 / (1 + np.exp(2.5 + 1.5 * latent))).astype(int)
    return X, y


def _model():
    X, y = _sample(4000)
    model = Scorecard(factors={"ch_x": "credit_history", "bp_y": "behavior_preference"}, on_reversed="drop").fit(X, y)
    return model, development_profile(model, X)


def test_same_population_is_stable():
    model, profile = _model()
    X, _ = _sample(3000, seed=1)
    checks = drift_checks(model, profile, X)
    assert {c["name"] for c in checks} == {"drift.psi:score", "drift.psi:ch_x", "drift.psi:bp_y"}
    assert all(c["passed"] and not c["warning"] for c in checks)


def test_shifted_population_fails_unless_accepted():
    model, profile = _model()
    X, _ = _sample(3000, shift=1.5, seed=2)
    checks = {c["name"]: c for c in drift_checks(model, profile, X)}
    assert checks["drift.psi:ch_x"]["psi"] >= FAIL_PSI and not checks["drift.psi:ch_x"]["passed"]
    assert not checks["drift.psi:score"]["passed"]
    assert checks["drift.psi:bp_y"]["passed"]  # the untouched characteristic stays stable
    accepted = {c["name"]: c for c in drift_checks(model, profile, X, accept=True)}
    assert accepted["drift.psi:ch_x"]["passed"] and accepted["drift.psi:ch_x"]["warning"]
    assert "accepted" in accepted["drift.psi:ch_x"]["detail"]


def test_the_night_drift_reads_spark_and_dbt_characteristics_of_the_scored_users(tmp_path):
    """Each user of Spark's feature table with dbt's characteristics beside them (missing when dbt has none for
    the user; a user only dbt has is not there), and with `users`, only those users."""
    import pyarrow as pa

    from sesame.config import Settings
    from sesame.features import DBT_FEATURES, night_feature_table, night_features

    cfg = Settings(home=tmp_path)
    ds = "2026-11-23"
    spark_zone, dbt_zone = (cfg.zone("features", t, ds=ds) for t in ("user_features", "dbt_user_features"))
    for zone in (spark_zone, dbt_zone):
        zone.mkdir(parents=True)
    pd.DataFrame({"user_id": ["U3", "U1", "U2"], "sc_degree": [3.0, 1.0, 2.0]}).to_parquet(spark_zone / "p.parquet")
    dbt = pd.DataFrame({"user_id": ["U1", "U3", "U9"]})
    for i, name in enumerate(DBT_FEATURES):
        dbt[name] = [10.0 * i + 1, 10.0 * i + 3, -1.0]
    dbt.to_parquet(dbt_zone / "p.parquet")

    every = night_features(cfg, ds)
    assert list(every["user_id"]) == ["U1", "U2", "U3"] and list(every["sc_degree"]) == [1.0, 2.0, 3.0]
    assert list(every.columns) == ["user_id", "sc_degree", *DBT_FEATURES]
    for i, name in enumerate(DBT_FEATURES):
        assert (
            every[name].iloc[0] == 10.0 * i + 1
            and np.isnan(every[name].iloc[1])
            and every[name].iloc[2] == 10.0 * i + 3
        )
    scored = night_feature_table(cfg, ds, users=pa.array(["U3", "U2", "U7"])).to_pandas()
    assert sorted(scored["user_id"]) == ["U2", "U3"]
