"""Incremental windows equal a full recomputation from the daily aggregates, and both equal a plain pandas
computation over the raw deliveries, over several nights with late and re-delivered records."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from sesame.config import Settings
from sesame.schemas import ESSENTIAL_CATEGORIES, LOCAL_SERVICE_CATEGORIES
from sesame.simulate import simulate
from spark_jobs import features as feat
from spark_jobs import ingest
from spark_jobs.windows import METRICS, WINDOWS, window_columns

pytestmark = pytest.mark.integration  # Spark: left out of make test-fast

END = "2026-03-10"
NIGHTS = ["2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    home = tmp_path_factory.mktemp("windows") / "home"
    cfg = Settings(home=home)
    simulate(cfg.raw, users=150, days=40, end_ds=dt.date.fromisoformat(END), seed=5, dirty="late=0.08,redelivered=0.02")
    ingest.run(spark, cfg, END, catch_up=True)
    return cfg


def _raw(cfg: Settings, source: str, night: str) -> pd.DataFrame:
    """Every record delivered by the night, as delivered, first delivery of a key kept."""
    frames = []
    for folder in sorted((cfg.raw / source).glob("ds=*")):
        ds = folder.name[3:]
        if ds > night:
            continue
        path = folder / ("orders.jsonl" if source == "orders" else "payments.csv")
        frame = pd.read_json(path, lines=True, dtype=False) if source == "orders" else pd.read_csv(path, dtype=str)
        frames.append(frame.assign(ds=ds))
    out = pd.concat(frames).drop_duplicates(subset=["order_id" if source == "orders" else "payment_id"])
    out["amount"] = out["amount"].astype(float)
    ts = "order_ts" if source == "orders" else "payment_ts"
    out["event_date"] = pd.to_datetime(out[ts]).dt.date
    return out


def _pandas_windows(cfg: Settings, night: str) -> pd.DataFrame:
    o, p = _raw(cfg, "orders", night), _raw(cfg, "payments", night)
    n = dt.date.fromisoformat(night)
    rows = {}
    for w in WINDOWS:
        lo = n - dt.timedelta(days=w - 1)
        ow = o[(o["event_date"] >= lo) & (o["event_date"] <= n)]
        pw = p[(p["event_date"] >= lo) & (p["event_date"] <= n)]
        done = ow["status"] == "completed"
        per = {
            "orders": ow.groupby("user_id").size(),
            "cancelled": (ow["status"] == "cancelled").groupby(ow["user_id"]).sum(),
            "returned": (ow["status"] == "returned").groupby(ow["user_id"]).sum(),
            "spend": ow["amount"].where(done, 0).groupby(ow["user_id"]).sum(),
            "spend_local": ow["amount"]
            .where(done & ow["category"].isin(LOCAL_SERVICE_CATEGORIES), 0)
            .groupby(ow["user_id"])
            .sum(),
            "spend_essential": ow["amount"]
            .where(done & ow["category"].isin(ESSENTIAL_CATEGORIES), 0)
            .groupby(ow["user_id"])
            .sum(),
            "inflow": pw["amount"].where(pw["direction"] == "in", 0).groupby(pw["user_id"]).sum(),
            "outflow": pw["amount"].where(pw["direction"] == "out", 0).groupby(pw["user_id"]).sum(),
            "salary": pw["amount"].where(pw["kind"] == "salary", 0).groupby(pw["user_id"]).sum(),
            "utility": (pw["kind"] == "utility").groupby(pw["user_id"]).sum(),
        }
        for metric, series in per.items():
            rows[f"{metric}_{w}d"] = series.astype(float)
    return pd.DataFrame(rows).fillna(0.0)


def test_incremental_equals_full_equals_pandas(spark, lake):
    cfg = lake
    dirt = json.loads((cfg.raw / "_simulation.json").read_text())["dirty"]
    assert dirt["records"]["late"] > 0  # late records really are in play
    sources = feat.read_sources(spark, cfg)
    daily = feat.ensure_daily(spark, cfg, sources, NIGHTS)
    # night 1 recomputed; nights 2-4 each from the night before
    for i, night in enumerate(NIGHTS):
        feat.night_windows(spark, cfg, daily, night, incremental=i > 0)
    cols = window_columns()
    for night in NIGHTS:
        incremental = pd.read_parquet(cfg.zone("features", "windows", ds=night)).set_index("user_id")[cols]
        full = feat.windows_full(daily, night).toPandas().set_index("user_id")[cols]
        full = full[(full.abs() > 1e-6).any(axis=1)]
        assert sorted(incremental.index) == sorted(full.index), night
        np.testing.assert_allclose(incremental.loc[full.index].to_numpy(), full.to_numpy(), atol=1e-6)
        expected = _pandas_windows(cfg, night)
        got = full.reindex(expected.index).fillna(0.0)
        np.testing.assert_allclose(got[cols].to_numpy(), expected[cols].to_numpy(), atol=1e-6, err_msg=night)
    assert set(expected.columns) == set(cols) and len(cols) == len(METRICS) * len(WINDOWS)


def test_incremental_state_equals_full_fold(spark, lake, monkeypatch):
    """Every state table kept night by night (balances, bills, contacts, court list) equals folding every
    record known by the night. A 12-day "year" makes rows leave the state on every night, late records included.
    The contacts, only ever added to, are last night's files (linked, not copied) and a file of the night's
    additions, until they hold MAX_STATE_FILES files and are written whole again."""
    from spark_jobs import state as st

    monkeypatch.setattr(st, "YEAR", 12)
    cfg = lake  # the first night folds the whole history, so each case starts afresh
    sources = feat.read_sources(spark, cfg)
    bills = sources["bills"].toPandas()
    assert (bills["ds"] > bills["event_date"].astype(str)).any()  # late bill reports really are in play
    contacts = cfg.zone("features", "state", "contact_pairs")
    for i, night in enumerate(NIGHTS):
        kept = feat.night_state(spark, cfg, sources, night, incremental=i > 0)
        if i == 0:  # two nights add a file each to the contacts, the third writes them whole again
            monkeypatch.setattr(feat, "MAX_STATE_FILES", len(list(contacts.glob(f"ds={night}/part-*"))) + 2)
        files = list(contacts.glob(f"ds={night}/part-*"))
        assert any(f.stat().st_nlink > 1 for f in files) == (i in (1, 2)), night
        full = feat.full_state(sources, night)
        for name in st.STATES:
            a, b = kept[name].toPandas(), full[name].toPandas()
            key = [c for c in ("user_id", "nbr", "bill_id", "event_date") if c in a.columns]
            a = a.sort_values(key).reset_index(drop=True).astype(str)
            b = b.sort_values(key)[a.columns].reset_index(drop=True).astype(str)
            pd.testing.assert_frame_equal(a, b, obj=f"{name} on {night}")
        got = st.bill_features(kept, night).join(st.balance_features(kept), "user_id", "full").toPandas()
        assert len(got) > 100 and got["ch_max_dpd_365"].notna().any(), night
    assert len(kept["bill_dpd"].toPandas()) < len(bills)  # the queue keeps only the reports that can matter


@pytest.mark.bench
def test_duckdb_restatement_of_each_stage_agrees_with_spark(spark, lake):
    """The benchmark's DuckDB SQL computes what the Spark transforms compute, stage by stage, on a lake with
    late records (so the Spark/DuckDB timings in BENCHMARKS.md compare the same work)."""
    import duckdb

    from benchmarks.engines import Lake, compare, duck_social

    cfg = lake
    spark.catalog.clearCache()  # the session is shared by the whole suite; start this heavy test from a clean heap
    sources = feat.read_sources(spark, cfg)
    daily = feat.ensure_daily(spark, cfg, sources, [NIGHTS[-1]])
    feat.ensure_daily_transfers(spark, cfg, sources, [NIGHTS[-1]])
    feat.night_windows(spark, cfg, daily, NIGHTS[-2], incremental=False)  # the night before
    feat.night_state(spark, cfg, sources, NIGHTS[-2], incremental=False)
    # the night before's scores, for the social sums to weigh the neighbours by (one user in five unscored)
    users = sorted(sources["users"].select("user_id").distinct().toPandas()["user_id"])
    rng = np.random.default_rng(3)
    scores = pd.DataFrame({"user_id": users, "score": rng.integers(350, 951, len(users))}).sample(
        frac=0.8, random_state=3
    )
    cfg.zone("scores", ds=NIGHTS[-2]).mkdir(parents=True)
    scores.to_parquet(cfg.zone("scores", ds=NIGHTS[-2]) / "part-0.parquet", index=False)
    results = compare(cfg, NIGHTS[-1], spark=spark, repeats=1)  # raises when the engines disagree
    assert set(results) == {"daily", "windows", "state", "graph", "social"}
    assert all(r["rows"] > 0 for r in results.values()), results
    social = duckdb.connect().execute(duck_social(Lake(cfg, NIGHTS[-1]))).df().set_index("user_id")
    assert social["sc_neighbor_score_mean"].between(350, 950).any(), "the neighbours' scores were weighed"


def test_window_sums_are_rounded_as_spark_rounds_them(spark):
    """The running sums' rounding in double arithmetic (`rounded`) gives what F.round's BigDecimal gives, for
    cents, counts, residues either side of zero and sums large enough to lose the cents' last bits."""
    from pyspark.sql import functions as F

    from spark_jobs.windows import RESIDUE_DIGITS, rounded

    values = [0.0, 1e-12, -1e-12, 3.0, 0.1 + 0.2, -(0.1 + 0.2), 1234.5678901, -1234.5678449, 19.99 * 3, 98765432.1]
    values += [float(v) / 100 for v in np.random.default_rng(7).integers(-(10**9), 10**9, 2000)]
    frame = spark.createDataFrame([(v,) for v in values], "value double")
    ours, spark_round = rounded(F.col("value"), RESIDUE_DIGITS), F.round("value", RESIDUE_DIGITS)
    got = frame.select(ours.alias("ours"), spark_round.alias("spark")).toPandas()
    assert (got["ours"] == got["spark"]).all(), got[got["ours"] != got["spark"]]
