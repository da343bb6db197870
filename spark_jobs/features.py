"""Features: validated events -> one row per user per night with every characteristic of the five factors.

Each transform is a pure function of DataFrames and the night `ds`. Point in time: a night sees only records
delivered by that night (delivery partition `ds` <= night) whose event happened by that night. Windows count
back from the night inclusive: a 30-day window on 2026-11-23 covers 2026-10-25..2026-11-23.

The feature names, factors and windows are declared once in dbt/seeds/feature_registry.csv.

Usage: spark-submit spark_jobs/features.py --ds YYYY-MM-DD [--ds YYYY-MM-DD ...]
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import sys

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from sesame.config import Settings, settings
from sesame.features import FEATURES
from spark_jobs.windows import daily_aggregates, window_features, windows_full, windows_incremental


def known_by(df: DataFrame, night: str, window_days: int | None = None) -> DataFrame:
    """Records delivered by the night whose event fell in the window ending that night.

    A record is never delivered before its event happened, so a windowed read needs only the deliveries of
    the window's own days: the partition filter below is exact, and keeps a night's cost independent of the
    length of history."""
    out = df.filter((F.col("ds") <= F.lit(night)) & (F.col("event_date") <= F.to_date(F.lit(night))))
    if window_days:
        first_day = (dt.date.fromisoformat(night) - dt.timedelta(days=window_days - 1)).isoformat()
        out = out.filter((F.col("ds") >= F.lit(first_day)) & (F.col("event_date") >= F.to_date(F.lit(first_day))))
    return out


def _safe_div(num, den):
    return F.when(den > 0, num / den)


def balance_features(payments: DataFrame, night: str) -> DataFrame:
    """Wallet and wealth balances after the last movement of the past year known by the night."""
    last = Window.partitionBy("user_id").orderBy(F.col("payment_ts").desc(), F.col("payment_id").desc())
    return (known_by(payments, night, 365).withColumn("_r", F.row_number().over(last)).filter("_r = 1")
            .select("user_id", F.col("balance_after").alias("fc_balance"),
                    F.col("wealth_balance_after").alias("fc_wealth_balance")))


def bill_features(bills: DataFrame, night: str) -> DataFrame:
    b = known_by(bills, night)
    night_d = F.to_date(F.lit(night))
    in_year = F.col("event_date") > F.date_sub(night_d, 365)
    per_bill = b.groupBy("user_id", "bill_id").agg(
        F.max(F.when(in_year, F.col("days_past_due"))).alias("max_dpd"),
        F.first("due_date").alias("due_date"),
        F.max(F.when(F.col("paid_date") <= F.col("due_date"), 1).otherwise(0)).alias("on_time"),
        F.min("statement_date").alias("statement_date"),
        F.max(F.struct("statement_date", "amount_due", "credit_limit")).alias("_stmt"),
    )
    due_in_year = (F.col("due_date") < night_d) & (F.col("due_date") >= F.date_sub(night_d, 365))
    latest = Window.partitionBy("user_id").orderBy(F.col("_stmt.statement_date").desc(), F.col("bill_id").desc())
    utilization = (per_bill.withColumn("_r", F.row_number().over(latest)).filter("_r = 1")
                   .select("user_id", _safe_div(F.col("_stmt.amount_due"), F.col("_stmt.credit_limit")).alias("ch_utilization")))
    agg = per_bill.groupBy("user_id").agg(
        F.max("max_dpd").cast("double").alias("ch_max_dpd_365"),
        F.sum((F.col("max_dpd") >= 30).cast("double")).alias("ch_delinquent_bills_365"),
        _safe_div(F.sum(F.when(due_in_year, F.col("on_time")).otherwise(0)).cast("double"),
                  F.sum(due_in_year.cast("double"))).alias("ch_ontime_rate_365"),
        # capped at a year: bill history reaches a year back, so longer spans say nothing more and would
        # only drift upwards night after night
        F.least(F.datediff(night_d, F.min("statement_date")), F.lit(365)).cast("double").alias("ch_credit_age_days"),
    )
    return agg.join(utilization, "user_id", "left")


def listed_users(blacklist: DataFrame, night: str) -> DataFrame:
    return known_by(blacklist, night).select("user_id").distinct()


def delinquent_users(bills: DataFrame, night: str) -> DataFrame:
    """Users with a bill 30+ days past due reported in the last 90 days."""
    return known_by(bills, night, 90).filter(F.col("days_past_due") >= 30).select("user_id").distinct()


def profile(users: DataFrame, night: str) -> DataFrame:
    """The latest KYC snapshot delivered by the night."""
    u = users.filter(F.col("ds") <= F.lit(night))
    last_ds = u.agg(F.max("ds")).first()[0]
    return u.filter(F.col("ds") == F.lit(last_ds)) if last_ds else u.limit(0)


def identity_features(users: DataFrame, night: str) -> DataFrame:
    night_d = F.to_date(F.lit(night))
    return profile(users, night).select(
        "user_id",
        F.col("identity_verified").cast("double").alias("it_identity_verified"),
        F.datediff(night_d, F.col("registered_date")).cast("double").alias("it_account_age_days"),
        F.col("phone_tenure_months").cast("double").alias("it_phone_tenure_months"),
        F.col("address_months").cast("double").alias("it_address_months"),
        F.datediff(night_d, F.col("registered_date")).alias("history_days"),
    )


def social_features(edges: DataFrame, delinquent: DataFrame, listed: DataFrame, night: str) -> DataFrame:
    e = known_by(edges, night).select("src_user_id", "dst_user_id")
    # The graph is undirected for these features: a contact is a contact whoever added whom.
    pairs = (e.select(F.col("src_user_id").alias("user_id"), F.col("dst_user_id").alias("nbr"))
             .unionByName(e.select(F.col("dst_user_id").alias("user_id"), F.col("src_user_id").alias("nbr")))
             .distinct())
    flagged = (pairs
               .join(delinquent.select(F.col("user_id").alias("nbr"), F.lit(1.0).alias("nbr_delinquent")), "nbr", "left")
               .join(listed.select(F.col("user_id").alias("nbr"), F.lit(1.0).alias("nbr_listed")), "nbr", "left"))
    return flagged.groupBy("user_id").agg(
        F.count("*").cast("double").alias("sc_degree"),
        (F.sum(F.coalesce("nbr_delinquent", F.lit(0.0))) / F.count("*")).alias("sc_neighbor_delinquent_share"),
        (F.sum(F.coalesce("nbr_listed", F.lit(0.0))) / F.count("*")).alias("sc_neighbor_listed_share"),
    )


def transfer_trust(payments: DataFrame, night: str, max_iter: int = 20) -> DataFrame:
    """PageRank over the last 90 days' transfer graph (payer -> payee, weighted by amount), scaled so that
    the average node scores 1. Money sent to someone is a vote of trust in them."""
    from spark_jobs.graph import pagerank

    transfers = known_by(payments, night, 90).filter(
        (F.col("kind") == "transfer") & (F.col("direction") == "out") & F.col("counterparty_id").isNotNull())
    edges = transfers.select(F.col("user_id").alias("src"), F.col("counterparty_id").alias("dst"),
                             F.col("amount").alias("weight"))
    ranks = pagerank(edges, max_iter=max_iter)
    nodes = ranks.count()
    return ranks.select(F.col("node").alias("user_id"), (F.col("rank") * nodes).alias("sc_transfer_trust"))


# Counts and sums are zero when a user simply had no such events; rates and balances stay missing.
ZERO_WHEN_ABSENT = ("bp_order_count_90", "bp_spend_90", "fc_inflow_30", "fc_salary_90", "fc_net_flow_90",
                    "fc_utility_payments_90", "ch_delinquent_bills_365", "sc_degree", "ch_court_listed")


def user_features(sources: dict[str, DataFrame], night: str, windows: DataFrame) -> DataFrame:
    """All characteristics for the night, one row per user in the latest KYC profile; `windows` are the
    night's order and payment window sums (spark_jobs/windows.py)."""
    listed = listed_users(sources["blacklist"], night)
    base = identity_features(sources["users"], night)
    out = (base
           .join(bill_features(sources["bills"], night), "user_id", "left")
           .join(listed.withColumn("ch_court_listed", F.lit(1.0)), "user_id", "left")
           .join(window_features(windows), "user_id", "left")
           .join(balance_features(sources["payments"], night), "user_id", "left")
           .join(social_features(sources["social_edges"], delinquent_users(sources["bills"], night), listed, night),
                 "user_id", "left")
           .join(transfer_trust(sources["payments"], night), "user_id", "left"))
    out = out.fillna(0.0, subset=list(ZERO_WHEN_ABSENT))
    names = [f.name for f in FEATURES]
    return out.select(
        "user_id", "history_days", *[F.col(n).cast("double").alias(n) for n in names],
        # the feature store's event time: the features of a night are as known at its start
        F.to_timestamp(F.lit(night)).alias("feature_timestamp"),
        F.lit(night).alias("ds"),
    )


def read_sources(spark: SparkSession, cfg: Settings) -> dict[str, DataFrame]:
    from sesame.schemas import SOURCES

    return {name: spark.read.parquet(str(cfg.zone("validated", name))).withColumn("ds", F.col("ds").cast("string"))
            for name in SOURCES}


def union_all(frames: list[DataFrame]) -> DataFrame:
    return functools.reduce(DataFrame.unionByName, frames)


def write_features(frame: DataFrame, cfg: Settings) -> None:
    """Overwrite the nights in `frame` in the feature table, leaving other nights alone."""
    frame.write.mode("overwrite").partitionBy("ds").parquet(str(cfg.zone("features", "user_features")))


def ingested_days(cfg: Settings, until: str) -> list[str]:
    return sorted(p.name[3:] for p in (cfg.lake / "accounting").glob("ds=*") if p.name[3:] <= until)


def ensure_daily(spark: SparkSession, cfg: Settings, sources: dict[str, DataFrame], nights: list[str]) -> DataFrame:
    """Daily aggregates for tonight's delivery (always) and for every earlier delivery that has none yet,
    computed in one pass with the same transform; returns the whole daily table."""
    zone = cfg.zone("features", "daily")
    have = {p.name[3:] for p in zone.glob("ds=*")}
    wanted = set(nights) | {d for d in ingested_days(cfg, max(nights)) if d not in have}
    if wanted:
        picked = [F.col("ds").isin(*sorted(wanted))]
        daily = daily_aggregates(sources["orders"].filter(*picked), sources["payments"].filter(*picked))
        daily.write.mode("overwrite").partitionBy("ds").parquet(str(zone))
    return spark.read.parquet(str(zone)).withColumn("ds", F.col("ds").cast("string"))


def night_windows(spark: SparkSession, cfg: Settings, daily: DataFrame, night: str, incremental: bool) -> DataFrame:
    """The night's window sums: from last night's when they exist (incremental), otherwise recomputed."""
    zone = cfg.zone("features", "windows")
    previous = cfg.zone("features", "windows", ds=(dt.date.fromisoformat(night) - dt.timedelta(days=1)).isoformat())
    if incremental and previous.exists():
        windows = windows_incremental(spark.read.parquet(str(previous)), daily, night)
    else:
        windows = windows_full(daily, night)
    windows.withColumn("ds", F.lit(night)).write.mode("overwrite").partitionBy("ds").parquet(str(zone))
    return spark.read.parquet(str(zone / f"ds={night}"))


def run(spark: SparkSession, cfg: Settings, nights: list[str], incremental: bool = True) -> None:
    sources = read_sources(spark, cfg)
    daily = ensure_daily(spark, cfg, sources, nights)
    frames = [user_features(sources, night, night_windows(spark, cfg, daily, night, incremental))
              for night in sorted(nights)]
    write_features(union_all(frames), cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, action="append", type=lambda s: dt.date.fromisoformat(s).isoformat())
    parser.add_argument("--rebuild", action="store_true", help="recompute windows from the daily aggregates")
    args = parser.parse_args(argv)
    from sesame.spark import get_session

    cfg = settings()
    spark = get_session("sesame-features", cfg)
    try:
        run(spark, cfg, args.ds, incremental=not args.rebuild)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
