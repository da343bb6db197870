"""The characteristics dbt owns (dbt/models/features): built for two nights of a simulated lake in one dbt run, they
agree with a pandas computation straight over the raw deliveries, point in time; the scoring input carries them
beside Spark's; and the registry's dbt characteristics are exactly the columns dbt writes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sesame import night as stages
from sesame.config import Settings
from sesame.features import DBT_FEATURES, FEATURES
from sesame.schemas import ESSENTIAL_CATEGORIES, LOCAL_SERVICE_CATEGORIES
from sesame.simulate import simulate

pytestmark = pytest.mark.integration  # dbt and Spark: left out of make test-fast

END = "2026-04-20"
EARLIER = "2026-04-12"
NIGHTS = [EARLIER, END]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    from spark_jobs import features, ingest

    cfg = Settings(home=tmp_path_factory.mktemp("dbt_features") / "home")
    simulate(cfg.raw, users=200, days=30, end_ds=dt.date.fromisoformat(END), seed=4)
    ingest.run(spark, cfg, END, catch_up=True)
    # of Spark's outputs, dbt's characteristics read the nights' window sums
    daily = features.ensure_daily(spark, cfg, features.read_sources(spark, cfg), NIGHTS)
    for night in NIGHTS:
        features.night_windows(spark, cfg, daily, night, incremental=False)
    stages.dbt_features(cfg, END, "first", nights=NIGHTS)
    return cfg


def _written(cfg: Settings, night: str) -> pd.DataFrame:
    return pd.read_parquet(cfg.zone("features", "dbt_user_features", ds=night)).set_index("user_id").sort_index()


def _raw(cfg: Settings, source: str, file: str, until: str) -> pd.DataFrame:
    """Every delivery of a source up to the night, with its delivery day."""
    frames = []
    for folder in sorted((cfg.raw / source).glob("ds=*")):
        if folder.name[3:] <= until:
            path = folder / file
            frame = pd.read_json(path, lines=True, dtype=False) if file.endswith(".jsonl") else pd.read_csv(path)
            frames.append(frame.assign(delivered=folder.name[3:]))
    return pd.concat(frames, ignore_index=True)


def _expected(cfg: Settings, night: str) -> pd.DataFrame:
    """The dbt characteristics computed by hand from the raw files, as the registry defines them."""
    day = dt.date.fromisoformat(night)
    users = _raw(cfg, "users", "users.csv", night)
    users = users[users["delivered"] > (day - dt.timedelta(days=30)).isoformat()]
    users = users[users["delivered"] == users["delivered"].max()].set_index("user_id")  # the latest snapshot
    out = pd.DataFrame(index=users.index)
    out["it_identity_verified"] = users["identity_verified"].astype(float)
    out["it_account_age_days"] = (pd.Timestamp(night) - pd.to_datetime(users["registered_date"])).dt.days.astype(float)
    out["it_phone_tenure_months"] = users["phone_tenure_months"].astype(float)
    out["it_address_months"] = users["address_months"].astype(float)

    listed = _raw(cfg, "blacklist", "blacklist.csv", night)
    listed = set(listed.loc[listed["listed_date"] <= night, "user_id"])
    out["ch_court_listed"] = [1.0 if u in listed else 0.0 for u in out.index]

    orders = _raw(cfg, "orders", "orders.jsonl", night).drop_duplicates("order_id")
    orders["event_date"] = orders["order_ts"].str[:10]
    first = (day - dt.timedelta(days=89)).isoformat()
    orders = orders[(orders["event_date"] >= first) & (orders["event_date"] <= night)]
    spend = orders["amount"].where(orders["status"] == "completed", 0.0)
    per_user = (
        pd.DataFrame(
            {
                "orders": 1.0,
                "cancelled": (orders["status"] == "cancelled").astype(float),
                "returned": (orders["status"] == "returned").astype(float),
                "spend": spend,
                "local": spend.where(orders["category"].isin(LOCAL_SERVICE_CATEGORIES), 0.0),
                "essential": spend.where(orders["category"].isin(ESSENTIAL_CATEGORIES), 0.0),
                "user_id": orders["user_id"],
            }
        )
        .groupby("user_id")
        .sum()
        .reindex(out.index)
    )

    def share(part, whole):
        return (per_user[part] / per_user[whole]).where(per_user[whole] > 0)

    out["bp_cancel_rate_90"] = share("cancelled", "orders")
    out["bp_return_rate_90"] = share("returned", "orders")
    out["bp_local_services_share_90"] = share("local", "spend")
    out["bp_essential_share_90"] = share("essential", "spend")
    return out.sort_index()


@pytest.mark.parametrize("night", NIGHTS)
def test_dbt_features_agree_with_pandas_over_the_raw_deliveries(lake, night):
    written, expected = _written(lake, night), _expected(lake, night)
    assert list(written.index) == list(expected.index) and len(written) > 100
    for feature in DBT_FEATURES:
        np.testing.assert_allclose(
            written[feature].to_numpy(float),
            expected[feature].to_numpy(float),
            rtol=1e-9,
            equal_nan=True,
            err_msg=feature,
        )
    # the lake was not trivial: some of each kind of value
    assert expected["ch_court_listed"].sum() > 0 and expected["bp_cancel_rate_90"].notna().sum() > 20
    assert (written["feature_timestamp"] == pd.Timestamp(night, tz="UTC")).all()


def test_the_earlier_night_sees_less(lake):
    earlier, later = _written(lake, EARLIER), _written(lake, END)
    both = earlier.index.intersection(later.index)
    assert (later.loc[both, "it_account_age_days"] - earlier.loc[both, "it_account_age_days"] == 8).all()
    # twelve days into the history some users have placed no order yet: their shares are missing, not 0
    assert earlier["bp_cancel_rate_90"].isna().sum() > 0 and (earlier["bp_cancel_rate_90"] == 0).sum() > 0


def test_registry_dbt_characteristics_are_what_dbt_writes(lake):
    dbt_owned = [f for f in FEATURES if f.engine == "dbt"]
    assert len(dbt_owned) >= 8 and len({f.factor for f in dbt_owned}) >= 3
    written = _written(lake, END)
    assert set(written.columns) - {"feature_timestamp"} == set(DBT_FEATURES)
    # doubles, as the scorecard and the feature store's Float64 fields read them (not SQL decimals)
    assert {str(written[f].dtype) for f in DBT_FEATURES} == {"float64"}


def test_scoring_input_carries_both_engines_characteristics(spark, lake):
    """The scoring job's input: each user of Spark's feature table with dbt's characteristics beside Spark's."""
    from spark_jobs.features import model_input

    written = _written(lake, END)
    spark_table = lake.zone("features", "user_features", ds=END)
    spark_table.mkdir(parents=True)
    users = list(written.index[:50]) + ["U-without-a-profile"]
    pd.DataFrame(
        {"user_id": users, "history_days": range(len(users)), **{f.name: 1.0 for f in FEATURES if f.engine == "spark"}}
    ).to_parquet(spark_table / "part-0.parquet")
    frame = model_input(spark, lake, END).toPandas().set_index("user_id").sort_index()
    assert sorted(frame.index) == sorted(users) and {f.name for f in FEATURES} <= set(frame.columns)
    expected = written.reindex(frame.index)
    for feature in DBT_FEATURES:
        np.testing.assert_allclose(frame[feature].to_numpy(float), expected[feature].to_numpy(float), equal_nan=True)
    assert frame.loc["U-without-a-profile", list(DBT_FEATURES)].isna().all()


def test_a_night_built_again_is_replaced_whole(lake):
    folder = lake.zone("features", "dbt_user_features", ds=END)
    (folder / "left-by-an-earlier-build.parquet").write_bytes(next(folder.glob("*.parquet")).read_bytes())
    assert stages.dbt_features(lake, END, "again") == [END]
    assert len(list(folder.glob("*.parquet"))) == 1
    assert _written(lake, END).index.is_unique
