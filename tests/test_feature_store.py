"""The Feast repository: definitions apply, point-in-time training joins never see later nights,
and the online store serves the latest materialized night."""

from __future__ import annotations

import pandas as pd
import pytest

from sesame.config import Settings
from sesame.features import FEATURES


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


def test_online_store_serves_the_latest_night(lake):
    from sesame import feature_store

    cfg = Settings()
    feature_store.apply(cfg)
    feature_store.materialize("2026-11-22", cfg)
    online = feature_store.online_features(["U1", "U2"], cfg).set_index("user_id")
    assert online.loc["U1", "bp_spend_90"] == 3.0 and online.loc["U1", "it_phone_tenure_months"] == 30.0
    assert online.loc["U2", "bp_spend_90"] == 20.0 and online.loc["U2", "it_phone_tenure_months"] == 200.0
