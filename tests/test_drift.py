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
