"""Training observation dates, out-of-time split, gates, and the registry's promote/rollback."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from sesame.config import Settings
from sesame.registry import NoChampion, Registry
from sesame.training import gates, observation_dates, split_out_of_time


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


def _card(auc, monotonic=True, ratio=0.9):
    approval = [{"threshold": 700, "rates": {}, "ratio": ratio}]
    return {"metrics": {"out_of_time": {"auc": auc, "bad_rate_monotonic": monotonic,
                                        "fairness": {"gender": {"approval": approval}}}}}


def test_gates():
    cfg = Settings(gate_auc_tolerance=0.01, gate_min_fairness_ratio=0.8)
    assert all(g["passed"] for g in gates(_card(0.80), None, None, cfg).values())
    assert all(g["passed"] for g in gates(_card(0.795), None, 0.80, cfg).values())
    assert not gates(_card(0.78), None, 0.80, cfg)["auc_vs_champion"]["passed"]
    assert not gates(_card(0.80, monotonic=False), None, None, cfg)["bad_rate_monotonic"]["passed"]
    assert not gates(_card(0.80, ratio=0.7), None, None, cfg)["fairness_ratio"]["passed"]


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
    with pytest.raises(ValueError):
        reg.register("v1", "{}", {}, "")
    assert [r["version"] for r in reg.list()] == ["v1", "v2"]


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
