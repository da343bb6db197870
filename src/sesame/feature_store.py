"""The Feast feature store over the nightly feature table: apply the definitions in feature_store/,
materialize a night into the online store, build point-in-time training sets, look users up online.

The online store is SQLite (feature_store/feature_store.yaml: a file in the home, no server) unless
SESAME_ONLINE_STORE names a Redis server; a night is written into Redis in bulk (sesame.online_store), into SQLite
through Feast's own online write.

Online lookup, for a service that needs a user's current features:

    from sesame.feature_store import online_features
    online_features(["U0000042"])      # DataFrame: user_id + every characteristic of the latest night
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os

import pandas as pd

from sesame.config import REPO_ROOT, Settings, settings

REPO = REPO_ROOT / "feature_store"


def _definitions():
    spec = importlib.util.spec_from_file_location("sesame_feast_definitions", REPO / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def store(cfg: Settings | None = None):
    from feast import FeatureStore

    cfg = cfg or settings()
    os.environ["SESAME_HOME"] = str(cfg.home)  # feature_store.yaml and the definitions read it
    os.environ.setdefault("FEAST_USAGE", "False")
    cfg.feature_store_home.mkdir(parents=True, exist_ok=True)
    if cfg.online_store == "sqlite":
        return FeatureStore(repo_path=str(REPO))
    return FeatureStore(repo_path=str(REPO), config=_redis_config(cfg))


def _redis_config(cfg: Settings):
    """The repository's feature_store.yaml with Redis as the online store (read as Feast reads it)."""
    import yaml
    from feast.repo_config import RepoConfig

    from sesame.online_store import redis_connection_string

    raw = yaml.safe_load(os.path.expandvars((REPO / "feature_store.yaml").read_text(encoding="utf-8")))
    raw["online_store"] = {"type": "redis", "connection_string": redis_connection_string(cfg.online_store)}
    config = RepoConfig(**raw)
    config.repo_path = REPO
    return config


def _views(defs) -> list:
    """The feature views: per factor one for each engine computing some of it, and the account's history."""
    return [*defs.FACTOR_VIEWS, defs.history]


def apply(cfg: Settings | None = None) -> list[str]:
    """`feast apply`: register the entity, the sources and the feature views."""
    feast_store, defs = store(cfg), _definitions()
    views = _views(defs)
    feast_store.apply([defs.user, *defs.SOURCE_OF_ENGINE.values(), *views])
    return [v.name for v in views]


def feature_refs() -> list[str]:
    from sesame.features import FEATURES

    defs = _definitions()
    return [f"{defs.view_name(f.factor, f.engine)}:{f.name}" for f in FEATURES] + ["user_history:history_days"]


def materialize(ds: str, cfg: Settings | None = None) -> None:
    """Load the night's features into the online store: each user's latest row of the night or the night before
    (the views' ttl covers one missed night); into Redis in bulk, one stream per feature table for all its views,
    into SQLite through Feast's online write.

    Not `FeatureStore.materialize`: its file offline store reads the whole feature table, every night ever
    written, and sorts it by time before keeping the two nights asked for, once per view, so a night's cost would
    grow with the length of history. Only the two nights' partitions are read here."""
    cfg = cfg or settings()
    night = dt.date.fromisoformat(ds)
    feast_store, defs = store(cfg), _definitions()
    latest = {table: _latest_rows(cfg, table, night) for table in ("user_features", "dbt_user_features")}
    views_of = {"user_features": [], "dbt_user_features": []}
    for view in _views(defs):
        dbt = view.batch_source.name == defs.dbt_user_features_source.name
        views_of["dbt_user_features" if dbt else "user_features"].append(view)
    for table, views in views_of.items():
        if cfg.online_store != "sqlite":
            from sesame.online_store import write_views

            write_views(feast_store, [view.name for view in views], latest[table])
            continue
        for view in views:
            columns = ["user_id", "feature_timestamp", *[feature.name for feature in view.features]]
            feast_store.write_to_online_store(view.name, latest[table][columns])


def _latest_rows(cfg: Settings, table: str, night: dt.date) -> pd.DataFrame:
    """Each user's row of `table` (one per user a night) of the night, or of the night before for a user the night
    has none for. The night before's rows are left out by their ids, in Arrow, rather than both nights sorted by
    time in pandas (1,000,000 users: 1.0 s against 3.5 to 5.2 s)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    before, tonight = (cfg.zone("features", table, ds=d.isoformat()) for d in (night - dt.timedelta(days=1), night))
    parts = [pq.read_table(tonight)] if tonight.exists() else []
    if before.exists():
        earlier = pq.read_table(before)
        if parts:
            earlier = earlier.filter(pc.invert(pc.is_in(earlier["user_id"], value_set=parts[0]["user_id"])))
        parts.append(earlier)
    if not parts:
        raise FileNotFoundError(f"{tonight}: no features of the night {night} or the night before to materialize")
    # a characteristic added or retyped between the two nights: the columns of both, nulls where a night has none
    rows = pa.concat_tables(parts, promote_options="permissive").to_pandas()
    rows["feature_timestamp"] = pd.to_datetime(rows["feature_timestamp"], utc=True)
    return rows


def historical_features(entities: pd.DataFrame, cfg: Settings | None = None) -> pd.DataFrame:
    """Point-in-time join: `entities` has user_id and event_timestamp (the observation night); each row gets
    the features of the latest night at or before it (within the views' ttl), never later ones."""
    job = store(cfg).get_historical_features(entity_df=entities, features=feature_refs())
    return job.to_df()


def online_features(user_ids: list[str], cfg: Settings | None = None) -> pd.DataFrame:
    result = store(cfg).get_online_features(features=feature_refs(), entity_rows=[{"user_id": u} for u in user_ids])
    return result.to_df()
