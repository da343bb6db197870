"""Nightly drift: population stability of the score and of every characteristic against the champion's
development sample. PSI of 0.10 or more warns; 0.25 or more fails the night unless an operator accepts it
(`sesame night --accept-drift`, or SESAME_ACCEPT_DRIFT=1).

The development distributions are stored in the model card at training time (`development_profile`), as the
share of the development sample in each score decile and at each point value of each characteristic, so the
night compares like with like without the training data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sesame.scale import OUTER_EDGES

WARN_PSI = 0.10
FAIL_PSI = 0.25


def _psi_shares(expected: dict, actual: dict) -> float:
    keys = sorted(set(expected) | set(actual))  # a fixed order: the sum's last digits must not follow the hash seed
    e = np.clip(np.array([expected.get(k, 0.0) for k in keys]), 1e-4, None)
    a = np.clip(np.array([actual.get(k, 0.0) for k in keys]), 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _score_shares(scores, edges) -> dict:
    counts = np.histogram(np.asarray(scores, dtype=float), np.asarray(edges, dtype=float))[0]
    return {str(i): float(c) / max(len(scores), 1) for i, c in enumerate(counts)}


def _point_shares(points: pd.Series) -> dict:
    return {str(int(k)): float(v) for k, v in points.value_counts(normalize=True).items()}


def development_profile(model, X: pd.DataFrame) -> dict:
    """What the card keeps of the development sample for drift checks."""
    scores = model.score(X)
    edges = np.unique(np.quantile(scores, np.linspace(0, 1, 11)))
    edges[0], edges[-1] = OUTER_EDGES
    points = model.points(X)
    return {
        "score_edges": edges.tolist(),
        "score_shares": _score_shares(scores, edges),
        "points_shares": {c: _point_shares(points[c]) for c in points.columns},
    }


def drift_checks(model, profile: dict, X: pd.DataFrame, accept: bool = False, population: str = "") -> list[dict]:
    """One check per measured distribution: passed unless PSI >= FAIL_PSI and not accepted; warning at WARN_PSI.
    `population` (a segment) prefixes the names when one night measures several scorecards."""
    measured = {"score": _psi_shares(profile["score_shares"], _score_shares(model.score(X), profile["score_edges"]))}
    points = model.points(X)
    for column, shares in profile["points_shares"].items():
        if column in points:
            measured[column] = _psi_shares(shares, _point_shares(points[column]))
    checks = []
    for name, value in measured.items():
        name = f"{population}:{name}" if population else name
        failing = value >= FAIL_PSI
        checks.append(
            {
                "name": f"drift.psi:{name}",
                "rule": "drift.psi",
                "psi": round(value, 4),
                "passed": bool(not failing or accept),
                "warning": bool(value >= WARN_PSI),
                "detail": f"PSI of {name} against the development sample: {value:.3f} (warn {WARN_PSI}, fail {FAIL_PSI})"
                + ("; accepted by the operator" if failing and accept else "")
                + ("; run with --accept-drift after review, or retrain" if failing and not accept else ""),
            }
        )
    return checks
