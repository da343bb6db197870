"""Score: the night's user features -> scores, factor sub-scores and reason codes with the champion model,
plus exclusions for users who cannot be scored.

Scoring runs in Spark with mapInPandas: the model travels as its JSON text and is loaded once per partition,
so every executor computes exactly what `Scorecard.explain` computes in process.

Usage: spark-submit spark_jobs/score.py --ds YYYY-MM-DD
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sesame import FACTORS
from sesame.config import Settings, settings

SCORE_SCHEMA = T.StructType(
    [T.StructField("user_id", T.StringType()), T.StructField("score", T.IntegerType())]
    + [T.StructField(f"{f}_score", T.DoubleType()) for f in FACTORS]
    + [T.StructField(f"{f}_points", T.IntegerType()) for f in FACTORS]
    + [T.StructField("reason_codes", T.ArrayType(T.StringType())), T.StructField("model_version", T.StringType())]
)


def split_scorable(features: DataFrame, min_history_days: int) -> tuple[DataFrame, DataFrame]:
    """(users to score, exclusions with a code). Thin files are excluded, never given a made-up number."""
    thin = F.col("history_days") < min_history_days
    excluded = features.filter(thin).select("user_id", F.lit("THIN_FILE").alias("exclusion_code"))
    return features.filter(~thin), excluded


def score_frame(features: DataFrame, model_json: str, model_version: str, inputs: list[str]) -> DataFrame:
    """Apply the model to every row; `inputs` are the model's characteristics in order."""

    def score_partitions(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from sesame.scorecard import Scorecard

        model = Scorecard.from_json(model_json)  # once per partition
        for batch in batches:
            explained = model.explain(batch[inputs])
            out = pd.DataFrame({"user_id": batch["user_id"].to_numpy(), "score": explained["score"].astype("int32")})
            for f in FACTORS:
                out[f"{f}_score"] = explained[f"{f}_score"].astype("float64").to_numpy()
                out[f"{f}_points"] = explained[f"{f}_points"].astype("int32").to_numpy()
            out["reason_codes"] = explained["reason_codes"].to_numpy()
            out["model_version"] = model_version
            yield out

    return features.select("user_id", *inputs).mapInPandas(score_partitions, SCORE_SCHEMA)


def run(spark, cfg: Settings, ds: str) -> dict:
    from sesame.registry import Registry

    champion = Registry(cfg.models).champion()
    features = spark.read.parquet(str(cfg.zone("features", "user_features", ds=ds)))
    scorable, excluded = split_scorable(features, cfg.min_history_days)
    scores = score_frame(scorable, champion.model_json, champion.version, champion.inputs)
    scores.withColumn("ds", F.lit(ds)).write.mode("overwrite").partitionBy("ds").parquet(str(cfg.zone("scores")))
    excluded.withColumn("ds", F.lit(ds)).write.mode("overwrite").partitionBy("ds").parquet(
        str(cfg.zone("exclusions")))
    return {"model_version": champion.version}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=lambda s: dt.date.fromisoformat(s).isoformat())
    args = parser.parse_args(argv)
    from sesame.spark import get_session

    cfg = settings()
    spark = get_session("sesame-score", cfg)
    try:
        print(run(spark, cfg, args.ds))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
