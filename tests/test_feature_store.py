"""The Feast repository: definitions apply, point-in-time training joins never see later nights,
and the online store (SQLite, or Redis written in bulk) serves the latest materialized night."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from sesame import online_store
from sesame.config import Settings
from sesame.features import FEATURES


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (`make redis`): the Redis online store is not tested")
    with online_store.local_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def online(request, monkeypatch):
    """Each online store in turn; Redis in a fresh database of the module's server."""
    if request.param == "sqlite":
        return "sqlite"
    import redis

    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushall()
    monkeypatch.setenv("SESAME_ONLINE_STORE", url)
    return url


def _night(home, ds, values: dict[str, float]):
    """A night of both feature tables, Spark's and dbt's; each characteristic of a user has the user's value, a dbt
    one ten times it."""
    stamp = pd.Timestamp(ds, tz="UTC")  # as both engines write it
    for table, engine in (("user_features", "spark"), ("dbt_user_features", "dbt")):
        folder = home / "lake" / "features" / table / f"ds={ds}"
        folder.mkdir(parents=True)
        rows = []
        for user, v in values.items():
            row = {"user_id": user, "feature_timestamp": stamp, **({"history_days": 100} if engine == "spark" else {})}
            row.update({f.name: v * (10 if engine == "dbt" else 1) for f in FEATURES if f.engine == engine})
            rows.append(row)
        pd.DataFrame(rows).to_parquet(folder / "part-0.parquet", index=False)


@pytest.fixture
def lake(home):
    _night(home, "2026-11-20", {"U1": 1.0, "U2": 10.0})
    _night(home, "2026-11-21", {"U1": 2.0, "U2": 20.0})
    _night(home, "2026-11-22", {"U1": 3.0})
    return home


def test_point_in_time_join(lake):
    from sesame import feature_store

    cfg = Settings()
    # per factor a view for each engine computing some of it, and the account's history
    assert len(feature_store.apply(cfg)) == len({(f.factor, f.engine) for f in FEATURES}) + 1
    entities = pd.DataFrame(
        {
            "user_id": ["U1", "U1", "U1", "U2", "U2"],
            "event_timestamp": pd.to_datetime(
                ["2026-11-20T00:00", "2026-11-21T12:00", "2026-11-22T00:00", "2026-11-22T00:00", "2026-11-19T00:00"]
            ).tz_localize("UTC"),
            "label": [0, 1, 0, 1, 0],
        }
    )
    out = feature_store.historical_features(entities, cfg).sort_values(["user_id", "event_timestamp"])
    rows = [
        (u, str(t)[:16], lab, v, w)
        for u, t, lab, v, w in out[
            ["user_id", "event_timestamp", "label", "bp_spend_90", "it_phone_tenure_months"]
        ].itertuples(index=False)
    ]
    assert rows == [
        ("U1", "2026-11-20 00:00", 0, 1.0, 10.0),  # the night itself
        ("U1", "2026-11-21 12:00", 1, 2.0, 20.0),  # later that day: that night's features, never the next night's
        ("U1", "2026-11-22 00:00", 0, 3.0, 30.0),
        ("U2", "2026-11-22 00:00", 1, 20.0, 200.0),  # no row on the 22nd: the 21st's, within the ttl
    ]  # U2 on the 19th, before any night, gets no row at all rather than a later night's values


def test_online_store_serves_the_latest_night(lake, online):
    from sesame import feature_store

    cfg = Settings()
    assert cfg.online_store == online
    feature_store.apply(cfg)
    feature_store.materialize("2026-11-22", cfg)
    online = feature_store.online_features(["U1", "U2"], cfg).set_index("user_id")
    assert online.loc["U1", "bp_spend_90"] == 3.0 and online.loc["U1", "it_phone_tenure_months"] == 30.0
    assert online.loc["U2", "bp_spend_90"] == 20.0 and online.loc["U2", "it_phone_tenure_months"] == 200.0


def _dump(url: str) -> dict:
    import redis

    client = redis.Redis.from_url(url)
    return {key: client.hgetall(key) for key in client.scan_iter(count=1000)}


def test_bulk_write_leaves_redis_as_feasts_own_write(home, redis_url, monkeypatch):
    """The bulk writer's hashes are byte for byte those Feast's own online write leaves: missing values, zeros,
    negative and large numbers, an integer feature, two event times (microseconds kept), ids of any length
    and script, several blocks."""
    import redis

    from sesame import feature_store

    monkeypatch.setenv("SESAME_ONLINE_STORE", redis_url)
    redis.Redis.from_url(redis_url).flushall()
    cfg = Settings()
    feature_store.apply(cfg)
    rng = np.random.default_rng(5)
    n = 300
    ids = [f"U{i}" for i in range(n - 3)] + ["", "użytkownik-7", "U" * 300]
    late = pd.Timestamp("2026-11-22 23:59:59.123456", tz="UTC")
    rows = pd.DataFrame(
        {
            "user_id": ids,
            "feature_timestamp": np.where(rng.random(n) < 0.8, pd.Timestamp("2026-11-21", tz="UTC"), late),
            "history_days": rng.integers(-5, 5000, n),
        }
    )
    for feature in FEATURES:
        values = rng.normal(scale=1e6, size=n)
        values[rng.random(n) < 0.2] = np.nan
        values[rng.random(n) < 0.1] = 0.0
        rows[feature.name] = values
    rows["feature_timestamp"] = pd.to_datetime(rows["feature_timestamp"], utc=True)
    feast_store, views = feature_store.store(cfg), feature_store._views(feature_store._definitions())
    for view in views:
        feast_store.write_to_online_store(
            view.name, rows[["user_id", "feature_timestamp", *[f.name for f in view.features]]]
        )
    feasts = _dump(redis_url)
    redis.Redis.from_url(redis_url).flushall()
    monkeypatch.setattr(online_store, "BLOCK_USERS", 41)
    assert online_store.write_views(feast_store, [v.name for v in views], rows) == n
    assert len(feasts) == n and _dump(redis_url) == feasts
    # and Feast reads them back as written
    back = feature_store.online_features(ids[-3:], cfg).set_index("user_id")
    expected = rows.set_index("user_id").loc[ids[-3:]]
    for feature in FEATURES:
        assert np.allclose(back[feature.name], expected[feature.name], equal_nan=True), feature.name


def test_a_refused_write_names_the_store_and_the_views(lake, redis_url, monkeypatch):
    import redis

    from sesame import feature_store

    monkeypatch.setenv("SESAME_ONLINE_STORE", redis_url)
    cfg = Settings()
    feature_store.apply(cfg)
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    feature_store.materialize("2026-11-22", cfg)
    # U2's hash replaced by a plain string: Redis answers HSET on it with WRONGTYPE
    (key,) = [k for k in client.scan_iter() if b"U2" in k]
    client.delete(key)
    client.set(key, "not a hash")
    with pytest.raises(online_store.OnlineWriteError, match=r"Redis at 127\.0\.0\.1:\d+/0\).*user_history.*WRONGTYPE"):
        feature_store.materialize("2026-11-22", cfg)


def test_redis_urls_become_feasts_connection_strings():
    assert online_store.redis_connection_string("redis://127.0.0.1:6390") == "127.0.0.1:6390"
    assert online_store.redis_connection_string("redis://:s%40cret@redis:6379/2") == "redis:6379,db=2,password=s@cret"
    assert online_store.redis_connection_string("rediss://cache") == "cache:6379,ssl=true"
    with pytest.raises(ValueError, match="SESAME_ONLINE_STORE"):
        online_store.redis_connection_string("postgres://db:5432")


def test_a_characteristic_new_tonight_is_missing_for_a_user_only_the_night_before_has(home, online):
    """The night before was written before a characteristic existed: its users are still served, that
    characteristic missing, while tonight's users have it."""
    from sesame import feature_store

    _night(home, "2026-11-21", {"U1": 2.0, "U2": 20.0})
    _night(home, "2026-11-22", {"U1": 3.0})
    before = home / "lake" / "features" / "user_features" / "ds=2026-11-21" / "part-0.parquet"
    pd.read_parquet(before).drop(columns=["bp_spend_90"]).to_parquet(before, index=False)
    cfg = Settings()
    feature_store.apply(cfg)
    feature_store.materialize("2026-11-22", cfg)
    online = feature_store.online_features(["U1", "U2"], cfg).set_index("user_id")
    assert online.loc["U1", "bp_spend_90"] == 3.0 and online.loc["U2", "it_phone_tenure_months"] == 200.0
    assert pd.isna(online.loc["U2", "bp_spend_90"])
