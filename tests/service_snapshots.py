"""Small synthetic published snapshots for the score-service tests, written with the real publishing code
(no Spark): users U00000001.. with scores spread over 350-950, and visa lists derived from the scores."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa

from sesame import FACTORS, identity, snapshots
from sesame.scale import tier_of

CHECKS = [{"name": "all", "passed": True}]
# The rules the synthetic nights judge by: CH's history requirement is longer than any user's, so nobody is on
# it; its minimum score differs from the repository's rule, so a test can tell which one the service read.
RULES = {
    "LU": {"min_score": 750, "min_history_days": 180},
    "SG": {"min_score": 700, "min_history_days": 90},
    "CH": {"min_score": 820, "min_history_days": 365},
}
MIN_SCORE = {d: r["min_score"] for d, r in RULES.items()}
REASONS = ["CH01", "FC02", "BP03", "IT01", "SC02"]


def user_ids(n: int) -> list[str]:
    return [f"U{i:08d}" for i in range(1, n + 1)]


def score_of(i: int, shift: int = 0) -> int:
    return min(950, 350 + (i * 37) % 601 + shift)


def scores_table(ds: str, n: int, shift: int = 0) -> pa.Table:
    ids = user_ids(n)
    scores = [score_of(i, shift) for i in range(n)]
    return pa.table(
        {
            "ds": pa.array([dt.date.fromisoformat(ds)] * n, pa.date32()),
            "user_id": pa.array(ids, pa.string()),
            "segment": pa.array(["credit_file" if i % 4 else "no_credit_file" for i in range(n)], pa.string()),
            "score": pa.array(scores, pa.int32()),
            **{
                f"{f}_score": pa.array([round((i * (k + 3)) % 10000 / 100, 2) for i in range(n)], pa.float64())
                for k, f in enumerate(FACTORS)
            },
            **{f"{f}_points": pa.array([s // 5 for s in scores], pa.int32()) for f in FACTORS},
            "reason_codes": pa.array([REASONS[i % 5 : i % 5 + i % 4] for i in range(n)], pa.list_(pa.string())),
            "model_version": pa.array(["scorecard-test"] * n, pa.string()),
            "tier": pa.array([tier_of(s) for s in scores], pa.string()),
        }
    )


def history_days(i: int) -> int:
    return 60 + (i * 7) % 240


def failed_conditions(i: int, destination: str, shift: int = 0) -> list[str]:
    """Which conditions of the destination's rule user i fails, in the rule's order (identity fails for every
    ninth user; the synthetic nights have no court listings and one qualifying night)."""
    rule = RULES[destination]
    return [
        name
        for name, failed in (
            ("min_score", score_of(i, shift) < rule["min_score"]),
            ("identity_verified", i % 9 == 4),
            ("min_history_days", history_days(i) < rule["min_history_days"]),
        )
        if failed
    ]


def eligible(i: int, destination: str, shift: int = 0) -> bool:
    return not failed_conditions(i, destination, shift)


def rules_table(ds: str) -> pa.Table:
    names = list(RULES)
    return pa.table(
        {
            "ds": pa.array([dt.date.fromisoformat(ds)] * len(names), pa.date32()),
            "destination": pa.array(names, pa.string()),
            "rule_version": pa.array([f"{d}-2024.1" for d in names], pa.string()),
            "min_score": pa.array([RULES[d]["min_score"] for d in names], pa.int32()),
            "require_identity_verified": pa.array([True] * len(names), pa.bool_()),
            "exclude_court_listed": pa.array([True] * len(names), pa.bool_()),
            "min_history_days": pa.array([RULES[d]["min_history_days"] for d in names], pa.int32()),
            "min_qualifying_nights": pa.array([1] * len(names), pa.int32()),
            "valid_from": pa.array([dt.date(2024, 1, 1)] * len(names), pa.date32()),
            "valid_to": pa.array([None] * len(names), pa.date32()),
        }
    )


def rule_checks_table(ds: str, n: int, shift: int = 0) -> pa.Table:
    rows = [(d, i) for d in RULES for i in range(n)]
    return pa.table(
        {
            "ds": pa.array([dt.date.fromisoformat(ds)] * len(rows), pa.date32()),
            "destination": pa.array([d for d, _ in rows], pa.string()),
            "user_id": pa.array([user_ids(n)[i] for _, i in rows], pa.string()),
            "rule_version": pa.array([f"{d}-2024.1" for d, _ in rows], pa.string()),
            "score": pa.array([score_of(i, shift) for _, i in rows], pa.int32()),
            "history_days": pa.array([history_days(i) for _, i in rows], pa.int32()),
            "qualifying_nights": pa.array(
                [int(score_of(i, shift) >= RULES[d]["min_score"]) for d, i in rows], pa.int32()
            ),
            "eligible": pa.array([eligible(i, d, shift) for d, i in rows], pa.bool_()),
            "failed_conditions": pa.array([failed_conditions(i, d, shift) for d, i in rows], pa.list_(pa.string())),
        }
    )


def reason_codes_table() -> pa.Table:
    from sesame.features import FEATURES  # the feature registry, as the library reads it

    return pa.table(
        {
            c: pa.array([f.name if c == "feature" else getattr(f, c) for f in FEATURES], pa.string())
            for c in ("reason_code", "factor", "feature", "definition", "description_en", "description_zh")
        }
    )


def visa_table(ds: str, scores: pa.Table, shift: int = 0) -> pa.Table:
    """The lists: the users who pass every condition of a destination's rule (scores as scores_table made them)."""
    rows = [
        (d, u, s)
        for d in RULES
        for i, (u, s) in enumerate(zip(scores.column("user_id").to_pylist(), scores.column("score").to_pylist()))
        if eligible(i, d, shift)
    ]
    return pa.table(
        {
            "ds": pa.array([dt.date.fromisoformat(ds)] * len(rows), pa.date32()),
            "destination": pa.array([d for d, _, _ in rows], pa.string()),
            "user_id": pa.array([u for _, u, _ in rows], pa.string()),
            "score": pa.array([s for _, _, s in rows], pa.int32()),
            "rule_version": pa.array([f"{d}-2024.1" for d, _, _ in rows], pa.string()),
        }
    )


def excluded_ids(n: int) -> list[str]:
    """The users after the n scored ones: excluded that night (a thin file, then a current default)."""
    return [f"U{i:08d}" for i in (n + 1, n + 2)]


def exclusions_table(ds: str, n: int) -> pa.Table:
    ids = excluded_ids(n)
    return pa.table(
        {
            "ds": pa.array([dt.date.fromisoformat(ds)] * len(ids), pa.date32()),
            "user_id": pa.array(ids, pa.string()),
            "exclusion_code": pa.array(["THIN_FILE", "CURRENT_DEFAULT"], pa.string()),
            "description_en": pa.array(["Too little history to score", "Currently 90+ days past due"], pa.string()),
            "description_zh": pa.array(["历史记录太少", "当前逾期90天以上"], pa.string()),
        }
    )


def registered_name(i: int) -> str:
    return f"Holder {'ABCDEFGHIJ'[i % 10]}{i}"


def document_number(i: int) -> str:
    """A well-formed resident identity number for user i (born 1990-01-01 in Beijing, sequence i)."""
    first17 = f"11010119900101{i % 1000:03d}"
    return first17 + identity.check_character(first17)


def identities_table(ds: str, n: int, undocumented: tuple[int, ...] = ()) -> pa.Table:
    """Who the scored users are; the users listed in `undocumented` have no document number on record."""
    masked = [None if i in undocumented else identity.mask(document_number(i)) for i in range(n)]
    return pa.table(
        {
            "ds": pa.array([dt.date.fromisoformat(ds)] * n, pa.date32()),
            "user_id": pa.array(user_ids(n), pa.string()),
            "registered_name": pa.array([registered_name(i) for i in range(n)], pa.string()),
            "id_document_type": pa.array([None if m is None else identity.DOCUMENT_TYPE for m in masked], pa.string()),
            "id_document_masked": pa.array(masked, pa.string()),
            "identity_verified": pa.array([i % 9 != 4 for i in range(n)], pa.bool_()),
            "profile_ds": pa.array([dt.date.fromisoformat(ds)] * n, pa.date32()),
        }
    )


def publish_night(
    published: Path,
    ds: str,
    n: int = 200,
    shift: int = 0,
    run_id: str = "r1",
    flip: bool = True,
    undocumented: tuple[int, ...] = (),
) -> dict[str, str]:
    """Write the datasets the service reads for a night; publish them (NIGHT) unless told not to. Returns the
    snapshot names."""
    scores = scores_table(ds, n, shift)
    tables = {
        "sesame_scores": scores,
        "visa_eligibility": visa_table(ds, scores, shift),
        "score_exclusions": exclusions_table(ds, n),
        "visa_rules": rules_table(ds),
        "visa_rule_checks": rule_checks_table(ds, n, shift),
        "reason_code_dictionary": reason_codes_table(),
        "identities": identities_table(ds, n, undocumented),
    }
    written = {
        name: snapshots.write_snapshot(published, name, ds, run_id, table, "scorecard-test", CHECKS)
        for name, table in tables.items()
    }
    if flip:
        snapshots.publish_night(published, ds, run_id, written)
    return written


def point_night(published: Path, ds: str, names: dict[str, str], run_id: str = "r1") -> None:
    """Move NIGHT by hand to snapshots that publish_night would refuse (missing, altered): what a reader meets
    when the lake is damaged after publication."""
    path = published / "NIGHT"
    pointer = json.loads(path.read_text()) if path.exists() else {"nights": {}}
    pointer.update(
        ds=ds,
        run_id=run_id,
        published_at="2026-01-01T00:00:00+00:00",
        datasets={name: {"snapshot": rel, "row_count": None} for name, rel in names.items()},
    )
    path.write_text(json.dumps(pointer))
