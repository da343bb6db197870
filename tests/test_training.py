"""The performance definition (who is in the sample, what counts as bad, one observation per user), observation
dates, the out-of-time split, calibration and fairness gates, and the registry's promote/rollback."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from sesame import metrics
from sesame.config import Settings
from sesame.registry import NoChampion, Registry
from sesame.training import eligible, fairness, fit, gates, observation_dates, one_per_user, split_out_of_time


def _days(start, n):
    d = dt.date.fromisoformat(start)
    return [(d + dt.timedelta(days=i)).isoformat() for i in range(n)]


def test_observation_dates_have_full_windows_and_ended_performance():
    cfg = Settings(performance_days=90, maturity_days=90, obs_step_days=7)
    delivered = _days("2026-01-01", 200)
    dates = observation_dates(delivered, delivered[-1], cfg)
    assert dates == ["2026-04-06", "2026-04-13", "2026-04-20"]  # last day 2026-07-19, minus 90, weekly back
    first, last = dt.date.fromisoformat(dates[0]), dt.date.fromisoformat(dates[-1])
    assert (first - dt.date(2026, 1, 1)).days >= 90  # 90 days of history before the first
    assert (dt.date.fromisoformat(delivered[-1]) - last).days >= 90  # its performance window has ended
    assert observation_dates(_days("2026-01-01", 150), "2026-05-30", cfg) == []


def test_out_of_time_split_holds_out_the_latest_dates():
    table = pd.DataFrame({"obs_date": ["a", "a", "b", "c", "c"], "bad": [0, 1, 0, 1, 0]})
    dev, oot = split_out_of_time(table, Settings(oot_dates=1))
    assert set(dev["obs_date"]) == {"a", "b"} and set(oot["obs_date"]) == {"c"}
    with pytest.raises(ValueError, match="two observation dates"):
        split_out_of_time(table[table["obs_date"] == "a"], Settings())


def _card(auc=0.80, monotonic=True, ratio=0.9, slope=1.0, violations=()):
    approval = [{"threshold": 700, "rates": {}, "ratio": ratio, "verdict": "passed" if ratio >= 0.8 else "failed"}]
    band = {
        "segment": "credit_file",
        "band_low": 600,
        "band_high": 649,
        "rows": 1000,
        "bads": 50,
        "observed_bad_rate": 0.05,
        "observed_low": 0.038,
        "observed_high": 0.065,
        "claimed_bad_rate": 0.05,
    }
    return {
        "segments": ["credit_file"],
        "out_of_time": {"credit_file": {"auc": auc, "bad_rate_monotonic": monotonic}},
        "calibration": [band],
        "calibration_summary": {"credit_file": {"slope": slope, "rows": 1000, "bads": 50}},
        "features_by_segment": {"credit_file": {"monotone_violations": list(violations)}},
        "fairness": {"gender": {"approval": approval}},
    }


def test_gates():
    cfg = Settings(gate_auc_tolerance=0.01, gate_min_fairness_ratio=0.8)
    assert all(g["passed"] for g in gates(_card(0.80), None, cfg).values())
    assert all(g["passed"] for g in gates(_card(0.795), {"credit_file": 0.80}, cfg).values())
    assert not gates(_card(0.78), {"credit_file": 0.80}, cfg)["auc_vs_champion:credit_file"]["passed"]
    assert not gates(_card(monotonic=False), None, cfg)["bad_rate_monotonic:credit_file"]["passed"]
    assert gates(_card(ratio=0.7), None, cfg)["fairness_ratio"]["verdict"] == "failed"
    assert gates(_card(slope=1.4), None, cfg)["calibration:credit_file"]["verdict"] == "failed"
    refused = gates(_card(violations=["fc_salary_90"]), None, cfg)["points_monotone:credit_file"]
    assert refused["verdict"] == "failed" and "fc_salary_90" in refused["detail"]


def _population(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "bad": (rng.random(n) < 0.05).astype(int),
            "gender": rng.choice(["F", "M"], n),
            "birth_year": rng.integers(1950, 2000, n),
        }
    )


def test_fairness_that_cannot_be_measured_is_not_tested_and_fails_unless_accepted():
    frame = _population()
    scores = np.full(len(frame), 720)
    scores[frame["gender"].to_numpy() == "F"] = 760
    cfg = Settings(gate_min_group_size=200, gate_min_fairness_ratio=0.8)
    measured = fairness(frame, scores, np.full(len(frame), 0.05), 2026, cfg)
    gender = {a["threshold"]: a for a in measured["gender"]["approval"]}
    assert gender[700]["verdict"] == "passed" and gender[750]["verdict"] == "failed"  # M approved at 700 only
    # one group of the minimum size: there is nothing to compare, so not tested rather than passed
    alone = frame.assign(gender="F")
    untested = fairness(alone, scores, np.full(len(frame), 0.05), 2026, cfg)["gender"]["approval"]
    assert {a["verdict"] for a in untested} == {"not_tested"}
    # nobody approved: the ratio is NaN, which is not a pass either
    nobody = fairness(frame, np.full(len(frame), 500), np.full(len(frame), 0.05), 2026, cfg)["gender"]["approval"]
    assert {a["verdict"] for a in nobody} == {"not_tested"}
    card = _card()
    card["fairness"] = {"gender": {"approval": nobody}}
    gate = gates(card, None, cfg)["fairness_ratio"]
    assert gate["verdict"] == "not_tested" and not gate["passed"]
    accepted = gates(card, None, Settings(accept_untested_fairness=True))["fairness_ratio"]
    assert accepted["verdict"] == "accepted" and accepted["passed"] and "accepted by the operator" in accepted["detail"]


def test_wilson_interval_matches_textbook_values():
    lo, hi = metrics.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    for bads, rows in ((0, 1410), (0, 23), (7, 7), (3, 1000)):  # the interval always holds the observed rate
        lo, hi = metrics.wilson_interval(bads, rows)
        assert lo <= bads / rows <= hi
    lo, hi = metrics.wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))


def test_calibration_gate_refuses_a_mis_scaled_model():
    """Outcomes drawn with exactly the odds the scores claim pass; the same people under a score that claims
    odds twice as good (50 points too high) or spreads risk twice too wide are refused."""
    rng = np.random.default_rng(5)
    scores = rng.integers(450, 800, 60_000)
    y = (rng.random(len(scores)) < metrics.claimed_bad_rate(scores)).astype(int)
    slope_range = (0.8, 1.25)

    def verdict(s):
        table = metrics.calibration_table(s, y)
        return metrics.calibration_verdict(table, metrics.calibration_summary(s, y), slope_range, 10)

    assert verdict(scores)[0] == "passed"
    shifted, why = verdict(scores + 50)
    assert shifted == "failed" and "outside" in why
    spread, why = verdict(600 + 2 * (scores - 600))
    assert spread == "failed" and "slope 0.5" in why
    summary = metrics.calibration_summary(scores, y)
    assert abs(summary["in_the_large"]) < 0.005 and summary["slope"] == pytest.approx(1.0, abs=0.1)


def test_calibration_gate_judges_the_bands_together():
    """A model that claims exactly the right odds passes on about 95 samples in 100 however many bands are judged
    (the bands' intervals are Bonferroni-adjusted); judged band by band at 95% it would fail one sample in three."""
    rng = np.random.default_rng(11)
    verdicts, per_band = [], []
    for _ in range(60):
        scores = rng.integers(350, 900, 12_000)
        y = (rng.random(len(scores)) < metrics.claimed_bad_rate(scores)).astype(int)
        table = metrics.calibration_table(scores, y)
        verdicts.append(metrics.calibration_verdict(table, metrics.calibration_summary(scores, y), (0.8, 1.25), 10)[0])
        judged = [b for b in table if b["bads"] >= 10]
        per_band.append(all(b["observed_low"] <= b["claimed_bad_rate"] <= b["observed_high"] for b in judged))
    assert verdicts.count("passed") >= 54  # about 57 expected; 54 or more with probability above 0.98
    assert per_band.count(False) > 3 * verdicts.count("failed") + 5


def test_eligible_leaves_out_current_defaults_and_indeterminate_no_file_users():
    table = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d", "e"],
            "history_days": [400, 400, 400, 400, 3],
            "segment": ["credit_file", "credit_file", "no_credit_file", "no_credit_file", "credit_file"],
            "current_default": [True, False, False, False, False],
            "opened": [0, 0, 1, 0, 0],
            "bad": [1, 0, 1, 0, 0],
        }
    )
    kept, counts = eligible(table, Settings(min_history_days=14))
    assert list(kept["user_id"]) == ["b", "c"]
    assert counts == {
        "rows": 5,
        "thin_file": 1,
        "current_default": 1,
        "indeterminate_no_product_opened": 1,
        "judged": 2,
    }


def test_one_observation_per_user():
    dates = ["2025-01-06", "2025-01-13", "2025-01-20"]
    frame = pd.DataFrame(
        [(f"U{i:04d}", d) for i in range(300) for d in dates[: 1 + i % 3]], columns=["user_id", "obs_date"]
    )
    picked = one_per_user(frame)
    assert picked["user_id"].is_unique and set(picked["user_id"]) == set(frame["user_id"])
    assert picked.merge(frame).shape[0] == len(picked)  # each pick is one of the user's own dates
    # the pick spreads over the dates users have (a hash, not always the first or the last)
    assert picked[picked["user_id"].isin([f"U{i:04d}" for i in range(2, 300, 3)])]["obs_date"].nunique() == 3
    assert (
        one_per_user(frame.sample(frac=1, random_state=1)).sort_values("user_id").equals(picked.sort_values("user_id"))
    )


def test_registry_promote_and_rollback(tmp_path):
    reg = Registry(tmp_path)
    with pytest.raises(NoChampion):
        reg.champion()
    for v in ("v1", "v2"):
        reg.register(v, "{}", {"features": [], "gates": {}}, "<html></html>")
    reg.promote("v1")
    reg.promote("v2")
    assert reg.champion().version == "v2"
    assert reg.rollback() == "v1" and reg.champion().version == "v1"
    with pytest.raises(NoChampion):
        reg.rollback()
    with pytest.raises(KeyError):
        reg.promote("v9")
    with pytest.raises(ValueError, match="another model"):
        reg.register("v1", '{"other": 1}', {}, "")
    # the same model trained again is re-evaluated: new card and gates, the earlier gates kept in the log
    reg.register("v1", "{}", {"features": [], "gates": {"calibration": {"passed": True}}}, "<html>2</html>")
    assert [r["version"] for r in reg.list()] == ["v1", "v2"]
    assert json.loads((tmp_path / "v1" / "card.json").read_text())["gates"] == {"calibration": {"passed": True}}
    assert reg._index()["events"][-1] == {
        **reg._index()["events"][-1],
        "event": "re_evaluated",
        "version": "v1",
        "previous_gates": {},
    }


def test_monotonic_bad_rate_allows_noise_not_reversals():
    from sesame.metrics import monotonic_bad_rate

    def table(users, bads):
        return pd.DataFrame({"users": users, "bads": bads})

    assert monotonic_bad_rate(table([500, 400, 300], [100, 40, 6]))
    # 1 bad in 40 after 0 in 45: noise, not a reversal
    assert monotonic_bad_rate(table([500, 45, 40], [100, 0, 1]))
    # a clear reversal
    assert not monotonic_bad_rate(table([500, 400, 300], [20, 40, 90]))
    # bands too thin to judge are ignored
    assert monotonic_bad_rate(table([500, 10, 400], [100, 9, 8]))


def test_a_thin_segment_gets_a_scorecard_developed_on_every_judged_user():
    """A no-file segment with fewer bads than the minimum is not left without a score: its scorecard is developed on
    every judged user over the characteristics no-file users have, and the card's development note says so."""
    rng = np.random.default_rng(2)
    n = 6000
    risk = rng.normal(size=n)
    no_file = rng.random(n) < 0.1
    dev = pd.DataFrame(
        {
            "segment": np.where(no_file, "no_credit_file", "credit_file"),
            "ch_max_dpd_365": np.where(no_file, np.nan, np.maximum(0, np.round(30 * risk + rng.normal(0, 20, n)))),
            "fc_balance": np.exp(8 - 0.6 * risk + rng.normal(0, 0.5, n)),
            "bp_cancel_rate_90": np.clip(0.1 + 0.04 * risk + rng.normal(0, 0.03, n), 0, 1),
        }
    )
    dev["bad"] = (rng.random(n) < 1 / (1 + np.exp(3.2 - 1.2 * risk))).astype(int)
    dev.loc[no_file, "bad"] = 0
    dev.loc[np.flatnonzero(no_file)[:12], "bad"] = 1  # 12 bads of its own, fewer than 30
    inputs = ["ch_max_dpd_365", "fc_balance", "bp_cancel_rate_90"]
    model, developed = fit(dev, inputs, Settings(min_segment_bads=30))
    assert model.inputs("credit_file") == inputs
    assert model.inputs("no_credit_file") == ["fc_balance", "bp_cancel_rate_90"]  # the bills say nothing of them
    assert "its own" in developed["credit_file"]
    assert "every judged user" in developed["no_credit_file"] and "12 development bads" in developed["no_credit_file"]
    with pytest.raises(Exception, match="rule training.segment_bads"):
        fit(
            dev.assign(bad=0).iloc[:-1].pipe(lambda d: d.assign(bad=(d.index < 5).astype(int))),
            inputs,
            Settings(min_segment_bads=30),
        )
