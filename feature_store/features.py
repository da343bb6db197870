"""Feast definitions: the user entity and one feature view per factor over the nightly feature table
(lake/features/user_features, written by spark_jobs/features.py). Feature names, factors and descriptions
come from the one feature registry (dbt/seeds/feature_registry.csv). Protected attributes are not here."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

from sesame import FACTORS
from sesame.features import FEATURES

HOME = Path(os.environ.get("SESAME_HOME", Path(__file__).resolve().parents[1] / "var"))

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING,
              description="A customer, by upstream user id.")

user_features_source = FileSource(
    name="user_features_source",
    path=str(HOME / "lake" / "features" / "user_features"),
    timestamp_field="feature_timestamp",
    description="One row per user per night: every characteristic as known that night.",
)

# A night's features serve until the next night's; two days of ttl covers one missed night.
TTL = timedelta(days=2)



def factor_view(factor: str) -> FeatureView:
    return FeatureView(
        name=f"{factor}_features",
        entities=[user],
        ttl=TTL,
        schema=[Field(name=f.name, dtype=Float64, description=f.definition) for f in FEATURES if f.factor == factor],
        source=user_features_source,
        online=True,
        tags={"factor": factor},
    )


# Feast discovers definitions by module attribute, one name per view.
credit_history_features = factor_view("credit_history")
behavior_preference_features = factor_view("behavior_preference")
fulfillment_capacity_features = factor_view("fulfillment_capacity")
identity_traits_features = factor_view("identity_traits")
social_connections_features = factor_view("social_connections")
assert {v.name for v in (credit_history_features, behavior_preference_features, fulfillment_capacity_features,
                         identity_traits_features, social_connections_features)} == {f"{f}_features" for f in FACTORS}

history = FeatureView(
    name="user_history",
    entities=[user],
    ttl=TTL,
    schema=[Field(name="history_days", dtype=Int64, description="days since the account was opened")],
    source=user_features_source,
    online=True,
)
