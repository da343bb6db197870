"""The Feast repository: definitions apply, point-in-time training joins never see later nights,
and the online store serves the latest materialized night."""
from __future__ import annotations

import pandas as pd
import pytest

from sesame.config import Settings
from sesame.features import FEATURES


def _night(home, ds, values: dict[str, float]):
    folder = home / "lake" / "features" / "user_features" / f"ds={ds}"
    folder.mkdir(parents=True)
    rows = []
    for user, v in values.items():
        row = {"user_id": user, "history_days": 100, "feature_timestamp": pd.Timestamp(ds)}
        row.update({f.name: v for f in FEATURES})
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
    assert len(feature_store.apply(cfg)) == 6
    entities = pd.DataFrame({
        "user_id": ["U1", "U1", "U1", "U2", "U2"],
        "event_timestamp": pd.to_datetime(["2026-11-20", "2026-11-21 12:00", "2026-11-22", "2026-11-22",
                                           "2026-11-19"]).tz_localize("UTC"),
        "label": [0, 1, 0, 1, 0],
    })
    out = feature_store.historical_features(entities, cfg).sort_values(["user_id", "event_timestamp"])
    labels = out["label"].tolist()
    spend = out["bp_spend_90"].tolist()
    assert out["user_id"].tolist() == ["U1", "U1", "U1", "U2", "U2"]
    assert labels == [0, 1, 0, 0, 1]  # the entity rows come back with their own columns
    assert spend[:3] == [1.0, 2.0, 3.0]  # the night itself; later that day still that night, never the next
    assert pd.isna(spend[3])  # before any night: nothing rather than a later night's value
    assert spend[4] == 20.0  # no row on the 22nd: the 21st's features, within the ttl


def test_online_store_serves_the_latest_night(lake):
    from sesame import feature_store

    cfg = Settings()
    feature_store.apply(cfg)
    feature_store.materialize("2026-11-22", cfg)
    online = feature_store.online_features(["U1", "U2"], cfg).set_index("user_id")
    assert online.loc["U1", "bp_spend_90"] == 3.0
    assert online.loc["U2", "bp_spend_90"] == 20.0
