"""Warm-up: a short job doing the kinds of work the nightly jobs do (Parquet written and read, aggregations, joins,
a window, a broadcast, Arrow both ways) on a few generated rows, so that the classes they load go into the
installation's class archive (sesame.spark.make_class_archive). Writes only a scratch folder under the home.

Usage: spark-submit spark_jobs/warm_up.py
"""

from __future__ import annotations

import shutil
import sys

from pyspark.sql import Window
from pyspark.sql import functions as F

from sesame.config import settings
from sesame.spark import get_session


def main() -> int:
    cfg = settings()
    spark = get_session("sesame-warm_up", cfg)
    scratch = cfg.tmp / "warm_up"
    try:
        rows = spark.range(20_000).select(
            F.format_string("u%07d", F.col("id") % 1000).alias("user_id"),
            F.date_add(F.to_date(F.lit("2026-01-01")), (F.col("id") % 30).cast("int")).alias("event_date"),
            (F.col("id") % 97).cast("double").alias("amount"),
            F.when(F.col("id") % 3 == 0, "in").otherwise("out").alias("direction"),
        )
        rows.withColumn("ds", F.col("event_date").cast("string")).repartition("ds").write.mode("overwrite").partitionBy(
            "ds"
        ).parquet(str(scratch / "events"))
        events = spark.read.parquet(str(scratch / "events"))
        sums = events.groupBy("user_id", "direction").agg(F.sum("amount").alias("total"), F.count("*").alias("n"))
        latest = events.withColumn(
            "_r", F.row_number().over(Window.partitionBy("user_id").orderBy(F.col("event_date").desc()))
        ).filter("_r = 1")
        users = sums.select("user_id").distinct().localCheckpoint()
        joined = (
            latest.join(sums, ["user_id", "direction"], "left")
            .join(F.broadcast(users), "user_id", "left_semi")
            .join(users.hint("shuffle_hash"), "user_id", "left_anti")
        )
        joined.write.mode("overwrite").parquet(str(scratch / "joined"))
        table = spark.read.parquet(str(scratch / "events")).toArrow()
        spark.createDataFrame(table).groupBy("direction").count().collect()
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
