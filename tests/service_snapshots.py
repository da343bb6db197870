"""Small synthetic published snapshots for the score-service tests, written with the real publishing code
(no Spark): users U00000001.. with scores spread over 350-950, and visa lists derived from the scores."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa

from sesame import snapshots

FACTORS = ("credit_history", "behavior_preference", "fulfillment_capacity", "identity_traits", "social_connections")
CHECKS = [{"name": "all", "passed": True}]
MIN_SCORE = {"LU": 750, "SG": 700}
REASONS = ["CH01", "FC02", "BP03", "IT01", "SC02"]


def user_ids(n: int) -> list[str]:
    return [f"U{i:08d}" for i in range(1, n + 1)]


def score_of(i: int, shift: int = 0) -> int:
    return min(950, 350 + (i * 37) % 601 + shift)


def tier_of(score: int) -> str:
    return ("poor" if score < 550 else "fair" if score < 600 else "good" if score < 650
            else "very_good" if score < 700 else "excellent")


def scores_table(ds: str, n: int, shift: int = 0) -> pa.Table:
    ids = user_ids(n)
    scores = [score_of(i, shift) for i in range(n)]
    return pa.table({
        "ds": pa.array([dt.date.fromisoformat(ds)] * n, pa.date32()),
        "user_id": pa.array(ids, pa.string()),
        "segment": pa.array(["credit_file" if i % 4 else "no_credit_file" for i in range(n)], pa.string()),
        "score": pa.array(scores, pa.int32()),
        **{f"{f}_score": pa.array([round((i * (k + 3)) % 10000 / 100, 2) for i in range(n)], pa.float64())
           for k, f in enumerate(FACTORS)},
        **{f"{f}_points": pa.array([s // 5 for s in scores], pa.int32()) for f in FACTORS},
        "reason_codes": pa.array([REASONS[i % 5: i % 5 + i % 4] for i in range(n)], pa.list_(pa.string())),
        "model_version": pa.array(["scorecard-test"] * n, pa.string()),
        "tier": pa.array([tier_of(s) for s in scores], pa.string()),
    })


def visa_table(ds: str, scores: pa.Table) -> pa.Table:
    rows = [(d, u, s) for d, floor in MIN_SCORE.items()
            for u, s in zip(scores.column("user_id").to_pylist(), scores.column("score").to_pylist()) if s >= floor]
    return pa.table({
        "ds": pa.array([dt.date.fromisoformat(ds)] * len(rows), pa.date32()),
        "destination": pa.array([d for d, _, _ in rows], pa.string()),
        "user_id": pa.array([u for _, u, _ in rows], pa.string()),
        "score": pa.array([s for _, _, s in rows], pa.int32()),
        "rule_version": pa.array([f"{d}-2024.1" for d, _, _ in rows], pa.string()),
    })


def excluded_ids(n: int) -> list[str]:
    """The users after the n scored ones: excluded that night (a thin file, then a current default)."""
    return [f"U{i:08d}" for i in (n + 1, n + 2)]


def exclusions_table(ds: str, n: int) -> pa.Table:
    ids = excluded_ids(n)
    return pa.table({
        "ds": pa.array([dt.date.fromisoformat(ds)] * len(ids), pa.date32()),
        "user_id": pa.array(ids, pa.string()),
        "exclusion_code": pa.array(["THIN_FILE", "CURRENT_DEFAULT"], pa.string()),
        "description_en": pa.array(["Too little history to score", "Currently 90+ days past due"], pa.string()),
        "description_zh": pa.array(["历史记录太少", "当前逾期90天以上"], pa.string()),
    })


def publish_night(published: Path, ds: str, n: int = 200, shift: int = 0, run_id: str = "r1",
                  flip: bool = True) -> dict[str, str]:
    """Write both datasets for a night; publish them (NIGHT) unless told not to. Returns the snapshot names."""
    scores = scores_table(ds, n, shift)
    written = {
        "sesame_scores": snapshots.write_snapshot(published, "sesame_scores", ds, run_id, scores, "scorecard-test",
                                                  CHECKS),
        "visa_eligibility": snapshots.write_snapshot(published, "visa_eligibility", ds, run_id,
                                                     visa_table(ds, scores), "scorecard-test", CHECKS),
        "score_exclusions": snapshots.write_snapshot(published, "score_exclusions", ds, run_id,
                                                     exclusions_table(ds, n), "scorecard-test", CHECKS),
    }
    if flip:
        snapshots.publish_night(published, ds, run_id, written)
    return written


def point_night(published: Path, ds: str, names: dict[str, str], run_id: str = "r1") -> None:
    """Move NIGHT by hand to snapshots that publish_night would refuse (missing, altered): what a reader meets
    when the lake is damaged after publication."""
    path = published / "NIGHT"
    pointer = json.loads(path.read_text()) if path.exists() else {"nights": {}}
    pointer.update(ds=ds, run_id=run_id, published_at="2026-01-01T00:00:00+00:00",
                   datasets={name: {"snapshot": rel, "row_count": None} for name, rel in names.items()})
    path.write_text(json.dumps(pointer))
