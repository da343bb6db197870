"""Row-accounting gate, the volume check against trailing nights, and the night's record of verdicts."""

from __future__ import annotations

import datetime as dt
import os
import statistics

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sesame import quality
from sesame.config import Settings


def _accounting(cfg: Settings, ds: str, rows: list[dict]) -> None:
    folder = cfg.lake / "accounting" / f"ds={ds}"
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "part-0.parquet")


def test_quarantine_share_and_balance(tmp_path):
    cfg = Settings(home=tmp_path, max_quarantine_share=0.01)
    _accounting(
        cfg,
        "2026-11-20",
        [
            {
                "source": "orders",
                "file": "lake/raw/orders/ds=2026-11-20/orders.jsonl",
                "delivered": 1000,
                "accepted": 980,
                "quarantined": 15,
                "duplicates": 5,
                "added_columns": "",
            },
            {
                "source": "payments",
                "file": "lake/raw/payments/ds=2026-11-20/payments.csv",
                "delivered": 1000,
                "accepted": 995,
                "quarantined": 5,
                "duplicates": 0,
                "added_columns": "channel",
            },
        ],
    )
    checks = {c["name"]: c for c in quality.accounting_checks(cfg, "2026-11-20")}
    assert checks["accounting.balance:orders"]["passed"] and checks["accounting.balance:payments"]["passed"]
    failing = checks["quarantine.share:orders"]
    assert not failing["passed"]
    assert "source orders" in failing["detail"] and "orders.jsonl" in failing["detail"]
    assert "quarantine.max_share" in failing["detail"] and "SESAME_MAX_QUARANTINE_SHARE" in failing["detail"]
    assert checks["quarantine.share:payments"]["passed"]
    assert checks["schema.additive_drift:payments"]["warning"]


def test_the_night_accounts_for_the_days_it_caught_up_and_the_deliveries_held(tmp_path):
    """Tonight's checks cover the earlier days its ingestion took (a late day, re-ingested days after it), count held
    records in the balance, and name every delivery held, including one still held from an earlier night."""
    from sesame import holds

    cfg = Settings(home=tmp_path)
    row = {
        "file": "f",
        "accepted": 90,
        "quarantined": 5,
        "duplicates": 5,
        "added_columns": "",
        "held": 0,
        "hold_reason": "",
    }
    _accounting(cfg, "2026-11-18", [{**row, "source": "orders", "delivered": 100, "ingested_on": "2026-11-18"}])
    _accounting(
        cfg,
        "2026-11-19",
        [  # came late: tonight ingested it, its payments held
            {**row, "source": "orders", "delivered": 100, "ingested_on": "2026-11-20"},
            {
                **row,
                "source": "payments",
                "delivered": 40,
                "accepted": 0,
                "quarantined": 0,
                "duplicates": 0,
                "held": 40,
                "hold_reason": "held by ops: cut short",
                "ingested_on": "2026-11-20",
            },
        ],
    )
    _accounting(cfg, "2026-11-20", [{**row, "source": "orders", "delivered": 101, "ingested_on": "2026-11-20"}])
    holds.hold(cfg, "2026-11-17", "bills", "wrong schema, upstream fixing it", by="ops")
    checks = {c["name"]: c for c in quality.accounting_checks(cfg, "2026-11-20")}
    assert not checks["accounting.balance:orders"]["passed"]  # tonight's 101 != 90 + 5 + 5
    assert checks["accounting.balance:orders:2026-11-19"]["passed"]
    assert checks["accounting.balance:payments:2026-11-19"]["passed"]  # 40 = 0 + 0 + 0 + 40 held
    assert "accounting.balance:orders:2026-11-18" not in checks  # ingested by its own night
    held = checks["delivery.held:payments:2026-11-19"]
    assert held["passed"] and held["warning"] and "cut short" in held["detail"]
    still = checks["delivery.held:bills:2026-11-17"]
    assert still["warning"] and "still held" in still["detail"] and "upstream fixing it" in still["detail"]


def test_verdicts_are_recorded_per_stage_and_read_back(tmp_path):
    cfg = Settings(home=tmp_path)
    quality.record_checks(cfg, "2026-11-20", "input", [{"name": "a", "passed": True}])
    quality.record_checks(cfg, "2026-11-20", "audit", [{"name": "b", "passed": True}])
    assert [c["name"] for c in quality.read_checks(cfg, "2026-11-20")] == ["a", "b"]
    with pytest.raises(quality.GateFailed, match="rule x"):
        quality._finish(cfg, "2026-11-20", "output", [{"name": "c", "passed": False, "detail": "rule x failed"}])
    assert [c["name"] for c in quality.read_checks(cfg, "2026-11-20")] == ["a", "c", "b"]


TONIGHT = "2026-11-20"


def _nights(cfg: Settings, counts: dict[str, list[int]]) -> list[str]:
    """Accounting for consecutive nights ending TONIGHT, `counts[source]` the delivered records night by night."""
    n = len(next(iter(counts.values())))
    days = [(dt.date.fromisoformat(TONIGHT) - dt.timedelta(days=n - 1 - i)).isoformat() for i in range(n)]
    for i, ds in enumerate(days):
        _accounting(
            cfg,
            ds,
            [
                {
                    "source": s,
                    "file": f"lake/raw/{s}/ds={ds}/{s}.csv",
                    "delivered": c[i],
                    "accepted": c[i],
                    "quarantined": 0,
                    "duplicates": 0,
                    "added_columns": "",
                }
                for s, c in counts.items()
            ],
        )
    return days


def _volume(tmp_path, counts, **settings) -> dict[str, dict]:
    cfg = Settings(
        home=tmp_path,
        volume_warn_ratio=0.7,
        volume_fail_ratio=0.4,
        volume_min_records=50,
        volume_skip_sources="",
        **settings,
    )
    _nights(cfg, counts)
    return {c["name"].split(":", 1)[1]: c for c in quality.volume_checks(cfg, TONIGHT)}


def test_volume_below_the_trailing_median_warns_or_fails(tmp_path):
    usual = [1000, 1100, 900, 1050, 950]
    checks = _volume(
        tmp_path,
        {"payments": usual + [600], "orders": usual + [300], "users": usual + [980]},
        volume_trailing_nights=14,
    )
    median = statistics.median(usual)
    warned, failed, fine = checks["payments"], checks["orders"], checks["users"]
    assert warned["tested"] and warned["passed"] and warned["warning"]
    assert not failed["passed"] and failed["tested"]
    assert fine["passed"] and fine["tested"] and not fine["warning"]
    assert warned["trailing_median"] == failed["trailing_median"] == median
    for source, check in checks.items():
        assert check["rule"] == "volume.trailing" and f"source {source}" in check["detail"]
        assert f"lake/raw/{source}/ds={TONIGHT}/{source}.csv" in check["detail"]
    assert "300 records" in failed["detail"] and f"{median:,g}" in failed["detail"]
    assert "SESAME_VOLUME_FAIL_RATIO" in failed["detail"] and "re-deliver" in failed["detail"]
    assert "SESAME_VOLUME_WARN_RATIO" in warned["detail"]


def test_volume_compares_with_the_last_trailing_nights_only(tmp_path):
    # long ago the source was ten times larger; the last three nights are the usual ones
    checks = _volume(tmp_path, {"payments": [9000, 9000, 9000, 9000, 500, 520, 480, 450]}, volume_trailing_nights=3)
    check = checks["payments"]
    assert check["trailing_nights"] == 3 and check["trailing_median"] == statistics.median([500, 520, 480])
    assert check["passed"] and not check["warning"]


def test_volume_check_says_when_it_could_not_test(tmp_path):
    few = _volume(tmp_path / "few", {"payments": [1000, 1000, 300]})
    assert few["payments"]["passed"] and not few["payments"]["tested"]
    assert "not tested" in few["payments"]["detail"] and "2 earlier nights" in few["payments"]["detail"]

    small = _volume(tmp_path / "small", {"blacklist": [20, 30, 25, 0]})
    assert small["blacklist"]["passed"] and not small["blacklist"]["tested"]
    assert "not tested" in small["blacklist"]["detail"] and "SESAME_VOLUME_MIN_RECORDS" in small["blacklist"]["detail"]

    cfg = Settings(home=tmp_path / "skip", volume_skip_sources="bills, blacklist")
    _nights(cfg, {"bills": [1000, 1000, 1000, 100], "orders": [1000, 1000, 1000, 100]})
    checks = {c["name"]: c for c in quality.volume_checks(cfg, TONIGHT)}
    assert checks["volume.trailing:bills"]["passed"] and not checks["volume.trailing:bills"]["tested"]
    assert "SESAME_VOLUME_SKIP_SOURCES" in checks["volume.trailing:bills"]["detail"]
    assert not checks["volume.trailing:orders"]["passed"]


def test_a_held_delivery_is_neither_tested_nor_part_of_the_trailing_nights(tmp_path):
    cfg = Settings(home=tmp_path, volume_warn_ratio=0.7, volume_fail_ratio=0.4, volume_min_records=50)
    days = _nights(cfg, {"payments": [1000, 1000, 1000, 0, 1000, 0]})
    for held in (days[3], days[5]):  # set aside by an operator: nothing read, nothing of a day's volume
        folder = cfg.lake / "accounting" / f"ds={held}"
        acc = pd.read_parquet(folder).assign(hold_reason="held by ops: cut file")
        acc.to_parquet(folder / "part-0.parquet")
    (check,) = quality.volume_checks(cfg, TONIGHT)
    assert check["passed"] and not check["tested"] and "held" in check["detail"]
    _accounting(
        cfg,
        "2026-11-21",
        [
            {
                "source": "payments",
                "file": "f",
                "delivered": 1000,
                "accepted": 1000,
                "quarantined": 0,
                "duplicates": 0,
                "added_columns": "",
                "hold_reason": "",
            }
        ],
    )
    (check,) = quality.volume_checks(cfg, "2026-11-21")
    assert check["tested"] and check["trailing_nights"] == 4 and check["trailing_median"] == 1000


def test_input_gate_fails_on_a_night_with_too_few_records(tmp_path, monkeypatch):
    monkeypatch.setattr(quality, "run_suites", lambda cfg, frames, run_name: [])
    cfg = Settings(home=tmp_path)
    _nights(cfg, {"payments": [1000, 1000, 1000, 1000, 200]})
    with pytest.raises(quality.GateFailed, match="rule volume.trailing"):
        quality.input_gate(cfg, TONIGHT)
    recorded = {c["name"]: c for c in quality.read_checks(cfg, TONIGHT)}
    assert not recorded["volume.trailing:payments"]["passed"]


def test_a_suite_is_given_the_columns_it_reads():
    """GX fingerprints every frame it validates, pickling it whole when a column holds lists: the reason codes no
    expectation reads stay out, unless an expectation reads the table's own columns or filters rows."""
    frame = pd.DataFrame({"user_id": ["U1"], "score": [700], "reason_codes": [["R1", "R2"]], "tier": ["A"]})
    checks = [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "score", "min_value": 350}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["user_id", "score"]}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "missing"}},
    ]
    assert list(quality.checked_columns(frame, {"expectations": checks}).columns) == ["score", "user_id"]
    row_count = [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}]
    assert len(quality.checked_columns(frame, {"expectations": row_count})) == 1
    whole = [{"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["user_id"]}}]
    assert quality.checked_columns(frame, {"expectations": checks + whole}) is frame
    conditional = [{**checks[0], "kwargs": {**checks[0]["kwargs"], "row_condition": 'tier=="A"'}}]
    assert quality.checked_columns(frame, {"expectations": conditional}) is frame
    # an Arrow table (the audit's) keeps the same columns, and only they are converted for GX
    table = pa.Table.from_pandas(frame, preserve_index=False)
    picked = quality.as_pandas(quality.checked_columns(table, {"expectations": checks}))
    pd.testing.assert_frame_equal(picked, frame[["score", "user_id"]])
    assert quality.checked_columns(table, {"expectations": checks + whole}) is table


def test_narrow_numbers_reach_gx_as_int64_and_float64_with_their_values():
    """GX's pandas range check runs vectorized only on int64 and float64 columns; int32 scores went through Python
    one value at a time. Widening keeps every value (uint64 cannot widen and stays as it is)."""
    frame = pd.DataFrame(
        {
            "score": np.array([350, 950, 2**31 - 1], dtype="int32"),
            "tier_rank": np.array([0, 1, 255], dtype="uint8"),
            "share": np.array([0.1, 0.5, 1e-30], dtype="float32"),
            "big": np.array([2**63, 1, 0], dtype="uint64"),
            "user_id": ["U1", "U2", "U3"],
            "eligible": [True, False, True],
        }
    )
    wide = quality.widened(frame)
    assert dict(wide.dtypes.astype(str)) == {
        "score": "int64",
        "tier_rank": "int64",
        "share": "float64",
        "big": "uint64",
        "user_id": "object",
        "eligible": "bool",
    }
    for column in frame.columns:
        assert wide[column].tolist() == frame[column].tolist(), column
    already_wide = wide[["score", "user_id"]]
    assert quality.widened(already_wide) is already_wide


def _gate_frames(bad: bool) -> dict[str, tuple[pd.DataFrame, str]]:
    """Two suites' frames, each with a record that breaks one expectation when `bad`."""
    edges = pd.DataFrame(
        {
            "src_user_id": ["u1", "u2", "u3"],
            "dst_user_id": ["u2", "u3", "u1"],
            "relation": ["friend", "family", "stranger" if bad else "colleague"],
            "created_date": ["2026-11-20"] * 3,
            "event_lag_days": [3, 3, 3],
        }
    )
    rules = pd.DataFrame(
        {
            "destination": ["LU", "lux" if bad else "DE"],
            "min_score": [750, 700],
            "min_history_days": [180, 180],
            "min_qualifying_nights": [7, 7],
        }
    )
    return {"validated.social_edges": (edges, "edges.csv"), "output.visa_rules": (rules, "visa rules")}


def test_suites_side_by_side_give_the_checks_they_give_one_after_another(tmp_path, monkeypatch):
    """Forked processes validate the suites of a large night; lowered threshold, the same here on a small one."""
    monkeypatch.setattr(quality, "SIDE_BY_SIDE_MIN_WORK", 0)
    validate = quality._suite_checks
    monkeypatch.setattr(  # each check says which process made it (inherited by the forked processes)
        quality, "_suite_checks", lambda *a: [{**c, "pid": os.getpid()} for c in validate(*a)]
    )
    frames = _gate_frames(bad=True)
    alone = quality.run_suites(Settings(home=tmp_path / "a", quality_processes=1), frames, "input-2026-11-23")
    forked = quality.run_suites(Settings(home=tmp_path / "b", quality_processes=2), frames, "input-2026-11-23")
    assert {c["pid"] for c in alone} == {os.getpid()}
    assert os.getpid() not in {c["pid"] for c in forked}
    assert [{**c, "pid": 0} for c in forked] == [{**c, "pid": 0} for c in alone]
    assert {c["name"] for c in forked if not c["passed"]} == {
        "validated.social_edges:expect_column_values_to_be_in_set:relation",
        "output.visa_rules:expect_column_values_to_match_regex:destination",
    }


def test_arrow_tables_get_the_checks_their_pandas_frames_get(tmp_path):
    """The audit hands the gate its Arrow tables; each suite's verdicts are those of the same rows in pandas."""
    frames = _gate_frames(bad=True)
    tables = {
        name: (pa.Table.from_pandas(frame, preserve_index=False), where) for name, (frame, where) in frames.items()
    }
    from_pandas = quality.run_suites(Settings(home=tmp_path / "a"), frames, "output-2026-11-23")
    from_arrow = quality.run_suites(Settings(home=tmp_path / "b"), tables, "output-2026-11-23")
    assert from_arrow == from_pandas and not all(c["passed"] for c in from_arrow)


def test_data_docs_keep_the_last_runs_of_each_suite(tmp_path):
    cfg = Settings(home=tmp_path, retention_nights=2)
    for night in ("2026-11-21", "2026-11-22", "2026-11-23"):
        quality.run_suites(cfg, _gate_frames(bad=night == "2026-11-23"), f"input-{night}")
    site = cfg.data_docs_index.parent
    pages = sorted(p.relative_to(site / "validations").parts[:3] for p in (site / "validations").rglob("*.html"))
    assert pages == [
        (suite, name, f"input-{night}")
        for suite, name in (("output", "visa_rules"), ("validated", "social_edges"))
        for night in ("2026-11-22", "2026-11-23")
    ]
    kept = quality._context(cfg).validation_results_store.list_keys()
    assert sorted(key.run_id.run_name for key in kept) == ["input-2026-11-22"] * 2 + ["input-2026-11-23"] * 2
    index = cfg.data_docs_index.read_text(encoding="utf-8")
    assert "input-2026-11-23" in index and "input-2026-11-21" not in index
    assert (site / "expectations" / "validated" / "social_edges.html").exists()
