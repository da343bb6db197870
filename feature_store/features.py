"""Feast definitions: the user entity and, per factor, a feature view over each nightly feature table that holds
some of its characteristics: Spark's (lake/features/user_features, written by spark_jobs/features.py) and dbt's
(lake/features/dbt_user_features, written by dbt/models/features). Feature names, factors, engines and
descriptions come from the one feature registry (dbt/seeds/feature_registry.csv). Protected attributes are not
here."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

from sesame import FACTORS
from sesame.features import FEATURES

HOME = Path(os.environ.get("SESAME_HOME", Path(__file__).resolve().parents[1] / "var"))

user = Entity(
    name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="A customer, by upstream user id."
)

user_features_source = FileSource(
    name="user_features_source",
    path=str(HOME / "lake" / "features" / "user_features"),
    timestamp_field="feature_timestamp",
    description="One row per user per night: Spark's characteristics as known that night.",
)

dbt_user_features_source = FileSource(
    name="dbt_user_features_source",
    path=str(HOME / "lake" / "features" / "dbt_user_features"),
    timestamp_field="feature_timestamp",
    description="One row per user per night: dbt's characteristics as known that night.",
)

SOURCE_OF_ENGINE = {"spark": user_features_source, "dbt": dbt_user_features_source}

# A night's features serve until the next night's; two days of ttl covers one missed night.
TTL = timedelta(days=2)


def view_name(factor: str, engine: str) -> str:
    return f"{factor}_features" if engine == "spark" else f"{factor}_{engine}_features"


def factor_views(factor: str) -> list[FeatureView]:
    """The factor's views: one per engine that computes some of its characteristics."""
    views = []
    for engine, source in SOURCE_OF_ENGINE.items():
        features = [f for f in FEATURES if f.factor == factor and f.engine == engine]
        if features:
            views.append(
                FeatureView(
                    name=view_name(factor, engine),
                    entities=[user],
                    ttl=TTL,
                    schema=[Field(name=f.name, dtype=Float64, description=f.definition) for f in features],
                    source=source,
                    online=True,
                    tags={"factor": factor, "engine": engine},
                )
            )
    return views


# Feast discovers definitions by module attribute, one name per view.
FACTOR_VIEWS = [view for factor in FACTORS for view in factor_views(factor)]
globals().update({view.name: view for view in FACTOR_VIEWS})

history = FeatureView(
    name="user_history",
    entities=[user],
    ttl=TTL,
    schema=[Field(name="history_days", dtype=Int64, description="days since the account was opened")],
    source=user_features_source,
    online=True,
)
