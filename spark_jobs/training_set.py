"""Training set: for each observation date, the features as known that night (written to the feature table,
where the feature store reads them point in time) and the outcome that followed (written to lake/training).

The performance definition (README "The score"), using only deliveries up to the training night:

* bad = 1 when any of the user's bills is reported `bad_dpd`+ days past due in the performance window
  (observation date, observation date + performance_days]. A user already `bad_dpd`+ days past due at the
  observation date (charged-off bills included) has a known outcome: `current_default` marks them, and training
  leaves them out, so every bad is a user newly reaching `bad_dpd` in the window.
* The segment is the user's as of the observation date (spark_jobs/state.py). A user without a credit file has
  an outcome only if they open a credit product in the window (`opened` = 1: a first statement in it); those who
  open none are indeterminate and training leaves them out of the no-file segment's development.

Protected attributes ride along for fairness measurement only; they are never model inputs.

Usage: spark-submit spark_jobs/training_set.py --ds TRAIN_DS --obs YYYY-MM-DD [--obs ...]
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sesame.config import Settings
from sesame.spark import iso_date, run_job
from spark_jobs.features import (
    ensure_daily,
    ensure_daily_transfers,
    last_published_scores,
    night_windows,
    profile,
    read_sources,
    union_all,
    user_features,
    write_features,
)


def outcomes(bills: DataFrame, obs: str, performance_days: int, bad_dpd: int, known_until: str) -> DataFrame:
    """Per user with a bill record in the performance window: `bad` (a `bad_dpd`+ report in it) and `opened` (a
    statement in it)."""
    start = F.to_date(F.lit(obs))
    window = bills.filter(
        (F.col("ds") <= F.lit(known_until))
        & (F.col("event_date") > start)
        & (F.col("event_date") <= F.date_add(start, performance_days))
    )
    return window.groupBy("user_id").agg(
        F.max((F.col("days_past_due") >= bad_dpd).cast("int")).alias("bad"),
        F.max(
            ((F.col("statement_date") > start) & (F.col("statement_date") <= F.date_add(start, performance_days))).cast(
                "int"
            )
        ).alias("opened"),
    )


def labelled_population(
    sources: dict[str, DataFrame], obs: str, cfg: Settings, known_until: str, features: DataFrame
) -> DataFrame:
    """Every user with features at the observation date: segment, current days past due, whether already in
    default, the outcome, and the protected attributes."""
    out = outcomes(sources["bills"], obs, cfg.performance_days, cfg.bad_dpd, known_until)
    return (
        features.select("user_id", "segment", "current_dpd")
        .join(profile(sources["users"], obs).select("user_id", "gender", "birth_year"), "user_id", "left")
        .join(out, "user_id", "left")
        .fillna(0, subset=["bad", "opened"])
        .withColumn("current_default", F.coalesce(F.col("current_dpd") >= cfg.bad_dpd, F.lit(False)))
        .withColumn("obs_date", F.lit(obs))
    )


def run(spark, cfg: Settings, train_ds: str, observation_dates: list[str]) -> None:
    sources = read_sources(spark, cfg)
    daily = ensure_daily(spark, cfg, sources, observation_dates)
    transfers = ensure_daily_transfers(spark, cfg, sources, observation_dates)
    features = [
        user_features(
            sources,
            obs,
            night_windows(spark, cfg, daily, obs, incremental=False),
            last_scores=last_published_scores(spark, cfg, obs),
            transfers=transfers,
        )
        for obs in observation_dates
    ]
    write_features(union_all(features), cfg)
    # the population reads the features back rather than computing every observation date's state a second time
    table = cfg.zone("features", "user_features")
    written = (
        spark.read.option("basePath", str(table))
        .parquet(*[str(cfg.zone("features", "user_features", ds=obs)) for obs in observation_dates])
        .withColumn("ds", F.col("ds").cast("string"))
    )
    population = [
        labelled_population(sources, obs, cfg, train_ds, written.filter(F.col("ds") == obs))
        for obs in observation_dates
    ]
    union_all(population).coalesce(4).write.mode("overwrite").parquet(str(cfg.zone("training", ds=train_ds)))


def main(argv: list[str] | None = None) -> int:
    return run_job(
        "training-set",
        __doc__,
        argv,
        lambda spark, cfg, args: run(spark, cfg, args.ds, args.obs),
        options={"--obs": {"required": True, "action": "append", "type": iso_date}},
    )


if __name__ == "__main__":
    sys.exit(main())
