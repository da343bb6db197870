"""Score: the night's user features -> scores, factor sub-scores and reason codes with the champion model (one
scorecard per segment: with and without a credit file), plus exclusions for users who cannot be scored.

Scoring runs in Spark with mapInPandas: the model travels as its JSON text and is loaded once per partition,
so every executor computes exactly what `SegmentedScorecard.explain` computes in process.

Usage: spark-submit spark_jobs/score.py --ds YYYY-MM-DD
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sesame import FACTORS
from sesame.config import Settings
from sesame.spark import run_job

SCORE_SCHEMA = T.StructType(
    [
        T.StructField("user_id", T.StringType()),
        T.StructField("segment", T.StringType()),
        T.StructField("score", T.IntegerType()),
    ]
    + [T.StructField(f"{f}_score", T.DoubleType()) for f in FACTORS]
    + [T.StructField(f"{f}_points", T.IntegerType()) for f in FACTORS]
    + [T.StructField("reason_codes", T.ArrayType(T.StringType())), T.StructField("model_version", T.StringType())]
)


def split_scorable(features: DataFrame, min_history_days: int, bad_dpd: int) -> tuple[DataFrame, DataFrame]:
    """(users to score, exclusions with a code). A user already `bad_dpd`+ days past due has a known outcome and gets
    CURRENT_DEFAULT; a thin file gets THIN_FILE: never a made-up number."""
    code = F.when(F.col("current_dpd") >= bad_dpd, F.lit("CURRENT_DEFAULT")).when(
        F.col("history_days") < min_history_days, F.lit("THIN_FILE")
    )
    flagged = features.withColumn("exclusion_code", code)
    excluded = flagged.filter(F.col("exclusion_code").isNotNull()).select("user_id", "exclusion_code")
    return flagged.filter(F.col("exclusion_code").isNull()).drop("exclusion_code"), excluded


def score_frame(features: DataFrame, model_json: str, model_version: str, inputs: list[str]) -> DataFrame:
    """Apply the model to every row by its `segment`; `inputs` are the columns the model reads."""

    def score_partitions(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from sesame.segments import SegmentedScorecard

        model = SegmentedScorecard.from_json(model_json)  # once per partition
        for batch in batches:
            explained = model.explain(batch[inputs], batch["segment"].to_numpy())
            out = pd.DataFrame(
                {
                    "user_id": batch["user_id"].to_numpy(),
                    "segment": batch["segment"].to_numpy(),
                    "score": explained["score"].astype("int32").to_numpy(),
                }
            )
            for f in FACTORS:
                # a factor without characteristics in the user's segment has no sub-score (null, not NaN)
                out[f"{f}_score"] = explained[f"{f}_score"].astype("Float64").array
                out[f"{f}_points"] = explained[f"{f}_points"].astype("int32").to_numpy()
            out["reason_codes"] = explained["reason_codes"].to_numpy()
            out["model_version"] = model_version
            yield out

    return features.select("user_id", "segment", *inputs).mapInPandas(score_partitions, SCORE_SCHEMA)


def run(spark, cfg: Settings, ds: str) -> dict:
    from sesame.registry import Registry

    champion = Registry(cfg.models).champion()
    from spark_jobs.features import model_input

    features = model_input(spark, cfg, ds)
    scorable, excluded = split_scorable(features, cfg.min_history_days, cfg.bad_dpd)
    scores = score_frame(scorable, champion.model_json, champion.version, champion.inputs)
    scores.withColumn("ds", F.lit(ds)).write.mode("overwrite").partitionBy("ds").parquet(str(cfg.zone("scores")))
    excluded.withColumn("ds", F.lit(ds)).write.mode("overwrite").partitionBy("ds").parquet(str(cfg.zone("exclusions")))
    return {"model_version": champion.version}


def main(argv: list[str] | None = None) -> int:
    return run_job("score", __doc__, argv, lambda spark, cfg, args: run(spark, cfg, args.ds))


if __name__ == "__main__":
    sys.exit(main())
