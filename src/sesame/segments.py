"""Segmented scorecards: people with a credit file and people without one are scored by separate scorecards, as
bureaus do for thin files. The no-file scorecard (shopping, payments, identity, social) is what an alternative-data
score exists for; the credit-file one also reads the bills.

A user has a credit file at a night when at least one credit-product statement is on record by then
(spark_jobs/state.py decides it, for the night and for every observation date alike). One champion is one
`SegmentedScorecard`: a model version names the pair, and its JSON holds both scorecards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

CREDIT_FILE = "credit_file"
NO_CREDIT_FILE = "no_credit_file"
SEGMENTS = (CREDIT_FILE, NO_CREDIT_FILE)

FORMAT_NAME = "sesame.segmented_scorecard"
FORMAT_VERSION = 1


class SegmentedScorecard:
    """One fitted `sesame.scorecard.Scorecard` per segment, applied row by row to the segment each row is in."""

    def __init__(self, models: Mapping):
        unknown = set(models) - set(SEGMENTS)
        if unknown or not models:
            raise ValueError(f"segments must be among {SEGMENTS}, got {sorted(models)}")
        self.models = {s: models[s] for s in SEGMENTS if s in models}

    @property
    def segments(self) -> list[str]:
        return list(self.models)

    def inputs(self, segment: str) -> list[str]:
        """The columns the segment's scorecard reads (its development inputs, characteristics and dropped alike)."""
        return [str(c) for c in self.models[segment].feature_names_in_]

    @property
    def all_inputs(self) -> list[str]:
        return sorted({c for s in self.models for c in self.inputs(s)})

    def _rows_by_segment(self, segments) -> dict[str, np.ndarray]:
        seg = np.asarray(segments, dtype=object)
        unknown = set(seg.tolist()) - set(self.models)
        if unknown:
            raise ValueError(
                f"rows of segments {sorted(map(str, unknown))}, which this model does not score "
                f"(it scores {self.segments})"
            )
        return {s: np.flatnonzero(seg == s) for s in self.models}

    def _apply(self, method: str, X: pd.DataFrame, segments) -> pd.DataFrame:
        parts = []
        for s, rows in self._rows_by_segment(segments).items():
            if len(rows):
                part = X.iloc[rows]
                parts.append(getattr(self.models[s], method)(part[self.inputs(s)]))
        if not parts:
            return getattr(self.models[self.segments[0]], method)(X.iloc[:0][self.inputs(self.segments[0])])
        return pd.concat(parts).loc[X.index]

    def explain(self, X: pd.DataFrame, segments) -> pd.DataFrame:
        """`Scorecard.explain` of each row by its segment's scorecard, plus the `segment` column, indexed like X."""
        out = self._apply("explain", X, segments)
        out["segment"] = pd.Series(np.asarray(segments, dtype=object), index=X.index)
        return out

    def score(self, X: pd.DataFrame, segments) -> np.ndarray:
        return self.explain(X, segments)["score"].to_numpy(dtype=np.int64)

    def predict_proba(self, X: pd.DataFrame, segments) -> np.ndarray:
        out = np.zeros((len(X), 2))
        for s, rows in self._rows_by_segment(segments).items():
            if len(rows):
                out[rows] = self.models[s].predict_proba(X.iloc[rows][self.inputs(s)])
        return out

    def to_json(self) -> str:
        data = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "segments": {s: m.to_dict() for s, m in self.models.items()},
        }
        return json.dumps(data, indent=1, allow_nan=False, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SegmentedScorecard:
        from sesame.scorecard import Scorecard

        data = json.loads(text)
        if data.get("format") != FORMAT_NAME or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"not a saved segmented scorecard (format {data.get('format')!r}, "
                f"version {data.get('format_version')!r})"
            )
        return cls({s: Scorecard.from_dict(d) for s, d in data["segments"].items()})
