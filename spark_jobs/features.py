"""Features: validated events -> one row per user per night with every characteristic of the five factors.

Each transform is a pure function of DataFrames and the night `ds`. Point in time: a night sees only records
delivered by that night (delivery partition `ds` <= night) whose event happened by that night. Windows count
back from the night inclusive: a 30-day window on 2026-11-23 covers 2026-10-25..2026-11-23.

The feature names, factors and windows are declared once in dbt/seeds/feature_registry.csv.

Usage: spark-submit spark_jobs/features.py --ds YYYY-MM-DD [--ds YYYY-MM-DD ...]
"""

from __future__ import annotations

import functools
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sesame.config import Settings, days_before, ds_partition, ds_partitions
from sesame.features import DBT_FEATURES, SPARK_FEATURES
from sesame.schemas import PROFILE_MAX_AGE_DAYS
from sesame.segments import CREDIT_FILE, NO_CREDIT_FILE
from sesame.spark import StepClock, broadcast_when_small, run_job, write_beside, write_days
from spark_jobs.state import ADDITIONS, STATES, balance_features, bill_features, current_arrears
from spark_jobs.windows import daily_aggregates, window_features, windows_full, windows_incremental


def known_by(df: DataFrame, night: str, window_days: int | None = None) -> DataFrame:
    """Records delivered by the night whose event fell in the window ending that night.

    A record is never delivered before its event happened, so a windowed read needs only the deliveries of
    the window's own days: the partition filter below is exact, and keeps a night's cost independent of the
    length of history."""
    out = df.filter((F.col("ds") <= F.lit(night)) & (F.col("event_date") <= F.to_date(F.lit(night))))
    if window_days:
        first_day = days_before(night, window_days - 1)
        out = out.filter((F.col("ds") >= F.lit(first_day)) & (F.col("event_date") >= F.to_date(F.lit(first_day))))
    return out


def delinquent_users(bills: DataFrame, night: str) -> DataFrame:
    """Users with a bill 30+ days past due reported in the last 90 days."""
    return known_by(bills, night, 90).filter(F.col("days_past_due") >= 30).select("user_id").distinct()


def profile(users: DataFrame, night: str) -> DataFrame:
    """The latest KYC snapshot delivered in the month up to the night (bounded, so that finding it does not
    scan every snapshot of history)."""
    first = days_before(night, PROFILE_MAX_AGE_DAYS - 1)
    for day in sorted((d for d in delivery_days(users) if first <= d <= night), reverse=True):
        latest = users.filter(F.col("ds") == F.lit(day))
        if latest.limit(1).count():  # a folder holding no snapshot is no delivery
            return latest
    return users.limit(0)


def delivery_days(frame: DataFrame) -> set[str]:
    """The delivery days (ds) `frame` holds: for a zone read from its folders, from the names of the folders (ds=...)
    the driver has listed already, where a Spark job would scan every row (a month of KYC snapshots at 1,000,000
    users: 30 million rows, 4 s); for any other frame, from its rows."""
    from_folders = {m.group(1) for m in map(PARTITION_DAY.search, frame.inputFiles()) if m}
    return from_folders or {row[0] for row in frame.select("ds").distinct().collect()}


PARTITION_DAY = re.compile(r"/ds=(\d{4}-\d{2}-\d{2})/")


def profiled_users(users: DataFrame, night: str) -> DataFrame:
    """The night's population, every user in the latest KYC profile, with the days since the account was opened.
    (The identity traits themselves are dbt's: dbt/models/features/feat_identity_traits.sql.)"""
    return profile(users, night).select(
        "user_id", F.datediff(F.to_date(F.lit(night)), F.col("registered_date")).alias("history_days")
    )


def daily_transfers(payments: DataFrame) -> DataFrame:
    """(ds, user_id, counterparty_id, event_date) -> the transfers out to another user in the deliveries
    `payments` holds: how many and how much. Kept per delivery day (lake/features/daily_transfers) like the daily
    aggregates, so that a night reads its 90 days of transfers (about one payment in fifteen) instead of every
    payment of those days."""
    return (
        payments.filter(
            (F.col("kind") == "transfer") & (F.col("direction") == "out") & F.col("counterparty_id").isNotNull()
        )
        .groupBy("ds", "user_id", "counterparty_id", "event_date")
        .agg(F.count("*").alias("transfers"), F.sum("amount").alias("amount"))
    )


def recent_transfers(transfers: DataFrame, night: str) -> DataFrame:
    """Money sent between two users in the last 90 days, from daily transfers (`daily_transfers`), per pair
    (`transfer_pairs`)."""
    return transfer_pairs(known_by(transfers, night, 90))


def transfer_pairs(transfers: DataFrame) -> DataFrame:
    """(user_id -> counterparty_id, transfers, amount) rows -> one row per unordered pair of users (a <= b): how many
    transfers and how much went each way (a -> b: transfers_ab, amount_ab; b -> a: transfers_ba, amount_ba; null
    when none). Money one sends oneself went both ways. The social features weigh a contact by the pair's
    transfers, PageRank follows each way's money (`transfer_edges`): one aggregation serves both."""
    low, high = F.least("user_id", "counterparty_id"), F.greatest("user_id", "counterparty_id")

    def sent(column: str, sender):
        return F.when(F.col("user_id") == sender, F.col(column))

    ways = {
        "transfers_ab": sent("transfers", low),
        "amount_ab": sent("amount", low),
        "transfers_ba": sent("transfers", high),
        "amount_ba": sent("amount", high),
    }
    rows = transfers.select(low.alias("a"), high.alias("b"), *[value.alias(way) for way, value in ways.items()])
    # Most pairs occur once in 90 days, so summing each task's rows before the shuffle merges almost nothing (10.6
    # million rows to 9.9 million at the target sizing) and costs a hash table of every pair: shuffled by pair
    # first, the rows are summed once, after the shuffle (there: 12.8 to 15.3 s against 17.8 to 21.0 s).
    return rows.repartition("a", "b").groupBy("a", "b").agg(*[F.sum(way).alias(way) for way in ways])


def transfer_edges(pairs: DataFrame) -> DataFrame:
    """The directed transfer graph of `transfer_pairs`: (src, dst, weight = amount sent), one edge per way money
    went (a transfer to oneself, one edge)."""
    forward = pairs.filter(F.col("transfers_ab").isNotNull()).select(
        F.col("a").alias("src"), F.col("b").alias("dst"), F.col("amount_ab").alias("weight")
    )
    backward = pairs.filter(F.col("transfers_ba").isNotNull() & (F.col("a") != F.col("b"))).select(
        F.col("b").alias("src"), F.col("a").alias("dst"), F.col("amount_ba").alias("weight")
    )
    return forward.unionByName(backward)


# A contact one also exchanges money with counts more in the neighbours' mean score, but at most this many
# times a bare contact, so no single relation dominates.
MAX_CONTACT_WEIGHT = 5


# Up to this many users with something a neighbour shows (a last score, a delinquency, a court listing), that
# table goes whole to every task, so that the contact pairs (tens of millions) are not moved to meet it.
NEIGHBOURS_BROADCAST_MAX_ROWS = 5_000_000


def social_features(
    pairs: DataFrame, delinquent: DataFrame, listed: DataFrame, transfers: DataFrame, last_scores: DataFrame | None
) -> DataFrame:
    """Per user, over their contacts (`pairs`: each contact pair once, as spark_jobs/state.py keeps them): how
    many, the shares delinquent and on the court list, and the contacts' mean last score, each contact weighted by
    the money exchanged with it (`transfers`: the pairs of `transfer_pairs`).

    A contact and the money exchanged are the same both ways, so each contact is weighted once, as an unordered
    pair (no sort: the exchanged pairs are the smaller side of a hashed join), and then counted for both its
    users; what a neighbour shows joins them as a broadcast, and each task sums its users' contacts before
    anything moves again."""
    # both ways' transfers (money one sends oneself counts on both sides of the pair, as for any other pair)
    exchanged = transfers.select(
        "a", "b", (F.coalesce("transfers_ab", F.lit(0)) + F.coalesce("transfers_ba", F.lit(0))).alias("transfers")
    )
    weight = F.least(F.lit(1) + F.coalesce("transfers", F.lit(0)), F.lit(MAX_CONTACT_WEIGHT))
    ends = [F.struct(F.col(u).alias("user_id"), F.col(n).alias("nbr")) for u, n in (("a", "b"), ("b", "a"))]
    contacts = (
        pairs.select(F.col("user_id").alias("a"), F.col("nbr").alias("b"))
        .join(exchanged.hint("shuffle_hash"), ["a", "b"], "left")
        .select(
            F.inline(F.when(F.col("a") == F.col("b"), F.array(ends[0])).otherwise(F.array(*ends))),
            weight.alias("weight"),
        )
    )
    if last_scores is None:
        last_scores = pairs.sparkSession.createDataFrame([], "user_id string, score double")
    # what a pair needs to know of its neighbour, a neighbour at most once
    neighbours = (
        last_scores.select(F.col("user_id").alias("nbr"), F.col("score").cast("double").alias("nbr_score"))
        .join(delinquent.select(F.col("user_id").alias("nbr"), F.lit(1.0).alias("nbr_delinquent")), "nbr", "full")
        .join(listed.select(F.col("user_id").alias("nbr"), F.lit(1.0).alias("nbr_listed")), "nbr", "full")
        .localCheckpoint()
    )
    flagged = contacts.join(broadcast_when_small(neighbours, NEIGHBOURS_BROADCAST_MAX_ROWS), "nbr", "left")
    scored_weight = F.sum(F.when(F.col("nbr_score").isNotNull(), F.col("weight")))
    return flagged.groupBy("user_id").agg(
        F.count("*").cast("double").alias("sc_degree"),
        (F.sum(F.coalesce("nbr_delinquent", F.lit(0.0))) / F.count("*")).alias("sc_neighbor_delinquent_share"),
        (F.sum(F.coalesce("nbr_listed", F.lit(0.0))) / F.count("*")).alias("sc_neighbor_listed_share"),
        F.when(scored_weight > 0, F.sum(F.col("weight") * F.col("nbr_score")) / scored_weight).alias(
            "sc_neighbor_score_mean"
        ),
    )


def transfer_trust(transfers: DataFrame, max_iter: int = 20) -> DataFrame:
    """PageRank over the last 90 days' transfer graph (payer -> payee, weighted by amount), scaled so that
    the average node scores 1. Money sent to someone is a vote of trust in them. `transfers` are the pairs of
    `transfer_pairs`, materialized: each way of a pair is one edge, read as it is."""
    from spark_jobs.graph import pagerank

    ranks = pagerank(transfer_edges(transfers), max_iter=max_iter, distinct_edges=True, mean_one=True)
    return ranks.select(F.col("node").alias("user_id"), F.col("rank").alias("sc_transfer_trust"))


def night_transfer_graph(transfers: DataFrame, night: str) -> tuple[DataFrame, DataFrame]:
    """The night's transfer pairs over 90 days (`recent_transfers`), materialized since the social weights and
    PageRank both read them, and the PageRank trust over them (`transfer_trust`), from daily transfers."""
    pairs = recent_transfers(transfers, night).localCheckpoint()
    return pairs, transfer_trust(pairs)


def segment_of(current_dpd):
    """The scorecard segment: users with a credit file are exactly those `current_arrears` gives a current_dpd."""
    return F.when(current_dpd.isNotNull(), F.lit(CREDIT_FILE)).otherwise(F.lit(NO_CREDIT_FILE))


# Counts and sums are zero when a user simply had no such events; rates and balances stay missing.
ZERO_WHEN_ABSENT = (
    "bp_order_count_90",
    "bp_spend_90",
    "fc_inflow_30",
    "fc_salary_90",
    "fc_net_flow_90",
    "fc_utility_payments_90",
    "ch_delinquent_bills_365",
    "sc_degree",
)


def full_state(sources: dict[str, DataFrame], night: str) -> dict[str, DataFrame]:
    """The night's balance and credit-bill state folded from every record known by it (spark_jobs/state.py)."""
    return {name: fold(None, known_by(sources[source], night), night) for name, (source, fold) in STATES.items()}


def user_features(
    sources: dict[str, DataFrame],
    night: str,
    windows: DataFrame,
    state: dict[str, DataFrame] | None = None,
    last_scores: DataFrame | None = None,
    transfers: DataFrame | None = None,
    graph: tuple[DataFrame, DataFrame] | None = None,
) -> DataFrame:
    """Spark's characteristics for the night (feature_registry engine = spark), one row per user in the latest KYC profile, with the user's segment
    (a credit file is a bill statement on record) and current days past due. `windows` are the
    night's order and payment window sums (spark_jobs/windows.py), `state` the night's state tables
    (spark_jobs/state.py; folded from the whole history when not given), `last_scores` the scores of the last
    published night before this one (user_id, score), if any, `transfers` the daily transfers
    (lake/features/daily_transfers; made from the payments when not given), `graph` the night's transfer pairs
    and trust (`night_transfer_graph`; made from `transfers` when not given)."""
    state = state or full_state(sources, night)
    listed = state["listed"]
    if graph is None:
        if transfers is None:
            transfers = daily_transfers(known_by(sources["payments"], night, 90))
        graph = night_transfer_graph(transfers, night)
    transfers, trust = graph
    social = social_features(
        state["contact_pairs"], delinquent_users(sources["bills"], night), listed, transfers, last_scores
    )
    out = (
        profiled_users(sources["users"], night)
        .join(current_arrears(state, night), "user_id", "left")
        .join(bill_features(state, night), "user_id", "left")
        .join(window_features(windows), "user_id", "left")
        .join(balance_features(state), "user_id", "left")
        .join(social, "user_id", "left")
        .join(trust, "user_id", "left")
    )
    out = out.fillna(0.0, subset=list(ZERO_WHEN_ABSENT))
    return out.select(
        "user_id",
        "history_days",
        segment_of(F.col("current_dpd")).alias("segment"),
        "current_dpd",
        *[F.col(n).cast("double").alias(n) for n in SPARK_FEATURES],
        # the feature store's event time: the features of a night are as known at its start
        F.to_timestamp(F.lit(night)).alias("feature_timestamp"),
        F.lit(night).alias("ds"),
    )


# Up to this many users (about 100 bytes each: an id and ten numbers) dbt's characteristics of a night are sent whole
# to every scoring task.
DBT_PART_BROADCAST_MAX_ROWS = 2_000_000


def model_input(spark: SparkSession, cfg: Settings, night: str) -> DataFrame:
    """Every characteristic of the night, Spark's and dbt's (lake/features/dbt_user_features, written by the
    dbt_features stage), one row per user in Spark's feature table: what the scoring job reads."""
    spark_part = spark.read.parquet(str(cfg.zone("features", "user_features", ds=night)))
    dbt_zone = cfg.zone("features", "dbt_user_features", ds=night)
    if not dbt_zone.exists():
        raise FileNotFoundError(
            f"{dbt_zone}: the dbt features of the night {night} are missing; the dbt_features stage runs before scoring"
        )
    dbt_part = spark.read.parquet(str(dbt_zone)).select("user_id", *DBT_FEATURES)
    # dbt's few characteristics go whole to every task rather than both sides being shuffled and sorted to meet
    # (the scoring job alone at 1,000,000 users: 36.4 s against 44.2 s on average, four runs each alternated)
    return spark_part.join(broadcast_when_small(dbt_part, DBT_PART_BROADCAST_MAX_ROWS), "user_id", "left")


def read_sources(spark: SparkSession, cfg: Settings) -> dict[str, DataFrame]:
    from sesame.schemas import SOURCES

    return {
        name: spark.read.parquet(str(cfg.zone("validated", name))).withColumn("ds", F.col("ds").cast("string"))
        for name in SOURCES
    }


def union_all(frames: list[DataFrame]) -> DataFrame:
    return functools.reduce(DataFrame.unionByName, frames)


def write_features(frame: DataFrame, cfg: Settings) -> None:
    """Overwrite the nights in `frame` in the feature table, leaving other nights alone."""
    frame.write.mode("overwrite").partitionBy("ds").parquet(str(cfg.zone("features", "user_features")))


def ingested_days(cfg: Settings, until: str) -> list[str]:
    return ds_partitions(cfg.zone("accounting"), last=until)


def _written_at(folder: Path) -> int:
    """When a partition was last written (its newest file); 0 when it does not exist."""
    return max((p.stat().st_mtime_ns for p in folder.glob("*.parquet")), default=0)


def ingested_at(cfg: Settings, until: str) -> dict[str, int]:
    """Each delivery day before `until` and when ingestion last wrote it."""
    return {
        day: _written_at(cfg.zone("accounting", ds=day)) for day in ds_partitions(cfg.zone("accounting")) if day < until
    }


def saw_every_delivery(cfg: Settings, night: str) -> bool:
    """Whether last night's windows and state were computed after every earlier delivery day was last ingested.
    A late delivery (a day re-delivered, a hold released) is ingested, with the days after it, by a later night:
    then the sums of last night lack it, and tonight must be computed from the whole history, as a rebuild is."""
    previous = days_before(night, 1)
    folders = [
        cfg.zone("features", "windows", ds=previous),
        *[cfg.zone("features", "state", name, ds=previous) for name in STATES],
    ]
    computed = min(_written_at(f) for f in folders)
    return computed > 0 and all(at < computed for at in ingested_at(cfg, night).values())


def days_to_aggregate(cfg: Settings, zone: Path, nights: list[str]) -> list[str]:
    """The delivery days a per-day table under `zone` needs made: tonight's (always), every earlier delivery that
    has none yet, and the days ingested again since theirs was made (a late delivery re-ingests the days after it)."""
    have = set(ds_partitions(zone))
    wanted = set(nights) | {d for d in ingested_days(cfg, max(nights)) if d not in have}
    wanted |= {
        d for d, at in ingested_at(cfg, max(nights)).items() if d in have and at > _written_at(ds_partition(zone, d))
    }
    return sorted(wanted)


def _ensure_per_day(spark: SparkSession, cfg: Settings, table: str, nights: list[str], make) -> DataFrame:
    """Make lake/features/<table> for the days that need it (`days_to_aggregate`) in one pass, `make` turning the
    sources filtered to those days into the table; returns the whole table."""
    zone = cfg.zone("features", table)
    wanted = days_to_aggregate(cfg, zone, nights)
    if wanted:
        write_days(make(F.col("ds").isin(*wanted)), zone)
    return spark.read.parquet(str(zone)).withColumn("ds", F.col("ds").cast("string"))


def ensure_daily(spark: SparkSession, cfg: Settings, sources: dict[str, DataFrame], nights: list[str]) -> DataFrame:
    """Daily aggregates for the days that need them, computed in one pass; returns the whole daily table."""
    return _ensure_per_day(
        spark,
        cfg,
        "daily",
        nights,
        lambda picked: daily_aggregates(sources["orders"].filter(picked), sources["payments"].filter(picked)),
    )


def ensure_daily_transfers(
    spark: SparkSession, cfg: Settings, sources: dict[str, DataFrame], nights: list[str]
) -> DataFrame:
    """Daily transfers (`daily_transfers`) for the days that need them, in one pass; returns the whole table."""
    return _ensure_per_day(
        spark, cfg, "daily_transfers", nights, lambda picked: daily_transfers(sources["payments"].filter(picked))
    )


def night_windows(spark: SparkSession, cfg: Settings, daily: DataFrame, night: str, incremental: bool) -> DataFrame:
    """The night's window sums: from last night's when they exist (incremental), otherwise recomputed."""
    zone = cfg.zone("features", "windows")
    previous = cfg.zone("features", "windows", ds=days_before(night, 1))
    if incremental and previous.exists():
        windows = windows_incremental(spark.read.parquet(str(previous)), daily, night)
    else:
        windows = windows_full(daily, night)
    windows.withColumn("ds", F.lit(night)).write.mode("overwrite").partitionBy("ds").parquet(str(zone))
    return spark.read.parquet(str(ds_partition(zone, night)))


def night_state(
    spark: SparkSession, cfg: Settings, sources: dict[str, DataFrame], night: str, incremental: bool
) -> dict[str, DataFrame]:
    """The night's state tables (spark_jobs/state.py), each made by `night_state_table`."""
    return {name: night_state_table(spark, cfg, sources, night, incremental, name) for name in STATES}


def night_state_table(
    spark: SparkSession, cfg: Settings, sources: dict[str, DataFrame], night: str, incremental: bool, name: str
) -> DataFrame:
    """The night's state table `name`: last night's folded with tonight's delivery when it exists (incremental),
    otherwise folded from the whole history; written to lake/features/state/<name>/ds=night."""
    source, fold = STATES[name]
    previous = cfg.zone("features", "state", name, ds=days_before(night, 1))
    target = cfg.zone("features", "state", name, ds=night)
    if incremental and previous.exists():
        tonight = sources[source].filter((F.col("ds") == night) & (F.col("event_date") <= F.to_date(F.lit(night))))
        kept = spark.read.parquet(str(previous))
        if name in ADDITIONS and len(list(previous.glob("part-*"))) < MAX_STATE_FILES:
            try:
                write_beside(ADDITIONS[name](kept, tonight, night), previous, target)
                return spark.read.parquet(str(target))
            except OSError:  # no hard links here: the state is written whole, as below
                pass
        state = fold(kept, tonight, night)
    else:
        state = fold(None, known_by(sources[source], night), night)
    state.write.mode("overwrite").parquet(str(target))
    return spark.read.parquet(str(target))


# A state only ever added to gains a file a night (spark_jobs/state.py: ADDITIONS); once it holds this many, it
# is written whole again, so that a year of nights does not leave a year of small files to open.
MAX_STATE_FILES = 32


def last_published_scores(spark: SparkSession, cfg: Settings, night: str) -> DataFrame | None:
    """The scores of the last night before this one that was published, as they went out: NIGHT records the
    night's run and publish leaves that run id in the night's lake scores (a later run of the same night that
    failed would have replaced them). None before the first publication; a failed night's scores are never used."""
    from sesame.snapshots import PUBLISHED_MARKER, night_pointer

    pointer = night_pointer(cfg.published)  # read once
    before_night_pointer = pointer is None  # published before NIGHT existed
    recorded = (pointer or {}).get("nights", {})
    published = []
    for ds in ds_partitions(cfg.zone("scores"), holding=PUBLISHED_MARKER):
        marker = cfg.zone("scores", ds=ds) / PUBLISHED_MARKER
        if ds < night and (
            before_night_pointer or recorded.get(ds, {}).get("run_id") == marker.read_text(encoding="utf-8").strip()
        ):
            published.append(ds)
    if not published:
        return None
    return spark.read.parquet(str(cfg.zone("scores", ds=max(published)))).select("user_id", "score")


# The steps of a night that need nothing of each other run side by side, up to this many at once (the windows and
# the graph first wait for their daily table): on two cores one Spark job's planning, scheduling and driver work
# (PageRank's iterations) leave the cores idle that another's tasks then use.
SIDE_BY_SIDE = 6


def run(spark: SparkSession, cfg: Settings, nights: list[str], incremental: bool = True) -> StepClock:
    """Make the features of `nights` (and the daily tables, windows and state they need); returns the wall time of
    each step (sesame.spark.StepClock), which the job prints for the benchmarks to keep. The steps of a night
    that are independent (the windows, each state table, the transfer graph) run side by side, so their times
    overlap."""
    clock = StepClock()
    sources = read_sources(spark, cfg)
    frames = []
    with ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
        daily = pool.submit(clock.timed("daily", ensure_daily), spark, cfg, sources, nights)
        transfers = pool.submit(clock.timed("daily_transfers", ensure_daily_transfers), spark, cfg, sources, nights)

        # each waits for the daily table it reads (submitted before it: running or done, never queued behind)
        def transfer_graph(night: str) -> tuple[DataFrame, DataFrame]:
            made = transfers.result()
            with clock("graph"):
                return night_transfer_graph(made, night)

        def windows_of(night: str, from_last_night: bool) -> DataFrame:
            made = daily.result()
            with clock("windows"):
                return night_windows(spark, cfg, made, night, from_last_night)

        for night in sorted(nights):
            # Deliveries of earlier days that came tonight change windows and state of days already folded: such a
            # night is computed from the whole history, as a rebuild would (the incremental sums add tonight only).
            from_last_night = incremental and saw_every_delivery(cfg, night)
            graph = pool.submit(transfer_graph, night)
            windows = pool.submit(windows_of, night, from_last_night)
            tables = {
                name: pool.submit(
                    clock.timed("state", night_state_table), spark, cfg, sources, night, from_last_night, name
                )
                for name in STATES
            }
            state = {name: table.result() for name, table in tables.items()}
            last_scores = last_published_scores(spark, cfg, night)
            with clock("graph"):  # the neighbours' flags materialized
                frames.append(user_features(sources, night, windows.result(), state, last_scores, graph=graph.result()))
    # the rest runs as the table is written: the social sums, the joins of every part, the write
    with clock("features"):
        write_features(union_all(frames), cfg)
    return clock


def steps_line(clock: StepClock) -> str:
    """What the job prints of its steps' times, for the benchmarks to keep (benchmarks/profiles.py: job_steps)."""
    return json.dumps({"steps": clock.seconds, "in_steps": clock.busy})


def main(argv: list[str] | None = None) -> int:
    return run_job(
        "features",
        __doc__,
        argv,
        lambda spark, cfg, args: steps_line(run(spark, cfg, args.ds, incremental=not args.rebuild)),
        options={"--rebuild": {"action": "store_true", "help": "recompute windows and state from the whole history"}},
        many_nights=True,
    )


if __name__ == "__main__":
    sys.exit(main())
