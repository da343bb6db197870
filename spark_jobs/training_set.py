"""Training set: for each observation date, the features as known that night (written to the feature table,
where the feature store reads them point in time) and a label from the future (written to lake/training).

label = 1 when any of the user's bills is reported `bad_dpd`+ days past due in the performance window
(observation date, observation date + performance_days], using only deliveries up to the training night.
Protected attributes ride along for fairness measurement only; they are never model inputs.

Usage: spark-submit spark_jobs/training_set.py --ds TRAIN_DS --obs YYYY-MM-DD [--obs ...]
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sesame.config import Settings, settings
from spark_jobs.features import (ensure_daily, last_published_scores, night_windows, profile, read_sources,
                                 union_all, user_features, write_features)


def labels(bills: DataFrame, obs: str, performance_days: int, bad_dpd: int, known_until: str) -> DataFrame:
    start = F.to_date(F.lit(obs))
    window = bills.filter((F.col("ds") <= F.lit(known_until)) & (F.col("event_date") > start)
                          & (F.col("event_date") <= F.date_add(start, performance_days)))
    return window.groupBy("user_id").agg(F.max((F.col("days_past_due") >= bad_dpd).cast("int")).alias("bad"))


def labelled_population(sources: dict[str, DataFrame], obs: str, cfg: Settings, known_until: str) -> DataFrame:
    """Every user profiled at the observation date, with the label and the protected attributes."""
    lab = labels(sources["bills"], obs, cfg.performance_days, cfg.bad_dpd, known_until)
    return (profile(sources["users"], obs).select("user_id", "gender", "birth_year")
            .join(lab, "user_id", "left").fillna(0, subset=["bad"])
            .withColumn("obs_date", F.lit(obs)))


def run(spark, cfg: Settings, train_ds: str, observation_dates: list[str]) -> None:
    sources = read_sources(spark, cfg)
    daily = ensure_daily(spark, cfg, sources, observation_dates)
    features = [user_features(sources, obs, night_windows(spark, cfg, daily, obs, incremental=False),
                              last_scores=last_published_scores(spark, cfg, obs))
                for obs in observation_dates]
    population = [labelled_population(sources, obs, cfg, train_ds) for obs in observation_dates]
    write_features(union_all(features), cfg)
    union_all(population).coalesce(4).write.mode("overwrite").parquet(str(cfg.zone("training", ds=train_ds)))


def main(argv: list[str] | None = None) -> int:
    iso = lambda s: dt.date.fromisoformat(s).isoformat()  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=iso)
    parser.add_argument("--obs", required=True, action="append", type=iso)
    args = parser.parse_args(argv)
    from sesame.spark import get_session

    cfg = settings()
    spark = get_session("sesame-training-set", cfg)
    try:
        run(spark, cfg, args.ds, args.obs)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
