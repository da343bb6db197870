"""The feature registry: every characteristic's name, factor, reason code, direction of risk, window, unit and
descriptions.

Declared once in dbt/seeds/feature_registry.csv, which the warehouse loads as a seed (the reason-code
dictionary analysts read) and the code reads here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from sesame import FACTORS
from sesame.config import REPO_ROOT

REGISTRY_CSV = REPO_ROOT / "dbt" / "seeds" / "feature_registry.csv"
DIRECTIONS = ("ascending", "descending")
# Which engine computes a characteristic: the Spark features job (spark_jobs/features.py: event windows, night
# state, the graph) or dbt (dbt/models/features: plain SQL over validated tables and Spark's outputs).
ENGINES = ("spark", "dbt")


@dataclass(frozen=True)
class Feature:
    name: str
    factor: str
    reason_code: str
    # "ascending": risk rises as the value rises; "descending": risk falls as it rises. Binning forces this trend.
    direction: str
    engine: str
    window_days: int
    unit: str
    definition: str
    description_en: str
    description_zh: str


def _load() -> tuple[Feature, ...]:
    with open(REGISTRY_CSV, encoding="utf-8", newline="") as fh:
        rows = [
            Feature(name=row.pop("feature"), **{**row, "window_days": int(row["window_days"])})
            for row in csv.DictReader(fh)
        ]
    unknown = {f.factor for f in rows} - set(FACTORS)
    if unknown:
        raise ValueError(f"{REGISTRY_CSV}: factors {sorted(unknown)} are not among {FACTORS}")
    for f in rows:
        if f.direction not in DIRECTIONS:
            raise ValueError(
                f"{REGISTRY_CSV}: feature {f.name!r} has direction {f.direction!r}, not one of {DIRECTIONS}"
            )
        if f.engine not in ENGINES:
            raise ValueError(f"{REGISTRY_CSV}: feature {f.name!r} has engine {f.engine!r}, not one of {ENGINES}")
    # Only registry features are model inputs, so a protected attribute must never get in here.
    from sesame.scorecard import check_protected

    check_protected([f.name for f in rows])
    return tuple(rows)


FEATURES: tuple[Feature, ...] = _load()
FACTOR_OF = {f.name: f.factor for f in FEATURES}
REASON_CODE_OF = {f.name: f.reason_code for f in FEATURES}
DIRECTION_OF = {f.name: f.direction for f in FEATURES}
SPARK_FEATURES = tuple(f.name for f in FEATURES if f.engine == "spark")
DBT_FEATURES = tuple(f.name for f in FEATURES if f.engine == "dbt")


def night_features(cfg, ds: str):
    """Every characteristic of a night as one pandas frame, one row per user of Spark's feature table (in the order
    of their ids): Spark's (lake/features/user_features) with dbt's (lake/features/dbt_user_features) beside them.
    The Spark jobs join the same two tables in spark_jobs/features.model_input."""
    return night_feature_table(cfg, ds).sort_by("user_id").to_pandas()


def night_feature_table(cfg, ds: str, users=None):
    """`night_features` as an Arrow table, its rows in no particular order; with `users` (an Arrow array of ids),
    only theirs. Joined in Arrow: a pandas merge took 2 s of the 3.3 to 5.4 s a drift check spent getting the scored
    users' characteristics at 1,000,000 users."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    spark_part = pq.read_table(cfg.zone("features", "user_features", ds=ds))
    if users is not None:
        spark_part = spark_part.filter(pc.is_in(spark_part["user_id"], value_set=users))
    dbt_part = pq.read_table(cfg.zone("features", "dbt_user_features", ds=ds), columns=["user_id", *DBT_FEATURES])
    return spark_part.join(dbt_part, "user_id", join_type="left outer")
