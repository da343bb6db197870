"""Spark against DuckDB, stage by stage, on the same lake and the same night (a `make bench` profile).

Each stage of the nightly feature job runs twice on the same inputs: once as the project's own Spark transform
(spark_jobs/), once as the equivalent DuckDB SQL written here. Both results are compared row by row before any
timing counts, so the figures compare the same work. Each engine's time is the best of a few runs, inputs read
from Parquet and outputs fully computed (Spark into the `noop` sink, DuckDB into a temporary table).

The SQL below restates the Spark transforms on purpose: it exists only to measure them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from urllib.request import urlopen

import duckdb
import numpy as np
import pandas as pd

from benchmarks import with_spark_conf
from sesame.config import Settings, days_before, ds_partitions
from sesame.schemas import ESSENTIAL_CATEGORIES, LOCAL_SERVICE_CATEGORIES

REPEATS = 3


def _in(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Lake:
    """Paths of the zones both engines read, for one night."""

    def __init__(self, cfg: Settings, night: str):
        self.cfg, self.night = cfg, night

    def glob(self, *zone: str) -> str:
        return str(self.cfg.zone(*zone) / "*" / "*.parquet")

    def night_part(self, *zone: str, ds: str) -> str:
        return str(self.cfg.zone(*zone, ds=ds) / "*.parquet")

    def state_before(self, name: str) -> str:
        """The night before's state table `name`, as a DuckDB table expression."""
        return f"read_parquet('{self.night_part('features', 'state', name, ds=days_before(self.night, 1))}')"

    def last_scores(self) -> Path | None:
        """The scores the social stage weighs the neighbours by: the lake's latest night of scores up to this one,
        published or not. A night after a published one reads a score for nearly every user (spark_jobs/features.py:
        last_published_scores); a lake whose nights were only benchmarked has none before its night, and its own
        night's scores stand in, so that the stage measures that steady-state work. None when the lake has none."""
        nights = ds_partitions(self.cfg.zone("scores"), last=self.night, holding="*.parquet")
        return self.cfg.zone("scores", ds=max(nights)) if nights else None


# ------------------------------------------------------------------ DuckDB SQL


def duck_daily(lake: Lake) -> str:
    n = lake.night
    completed = "status = 'completed'"
    return f"""
    with o as (
      select user_id, event_date, count(*)::double as orders,
        sum((status = 'cancelled')::int)::double as cancelled, sum((status = 'returned')::int)::double as returned,
        sum(case when {completed} then amount else 0 end) as spend,
        sum(case when {completed} and category in ({_in(LOCAL_SERVICE_CATEGORIES)}) then amount else 0 end) as spend_local,
        sum(case when {completed} and category in ({_in(ESSENTIAL_CATEGORIES)}) then amount else 0 end) as spend_essential
      from read_parquet('{lake.night_part("validated", "orders", ds=n)}') group by all),
    p as (
      select user_id, event_date,
        sum(case when direction = 'in' then amount else 0 end) as inflow,
        sum(case when direction = 'out' then amount else 0 end) as outflow,
        sum(case when kind = 'salary' then amount else 0 end) as salary,
        sum((kind = 'utility')::int)::double as utility
      from read_parquet('{lake.night_part("validated", "payments", ds=n)}') group by all)
    select user_id, event_date,
      coalesce(orders, 0) as orders, coalesce(cancelled, 0) as cancelled, coalesce(returned, 0) as returned,
      coalesce(spend, 0) as spend, coalesce(spend_local, 0) as spend_local,
      coalesce(spend_essential, 0) as spend_essential, coalesce(inflow, 0) as inflow,
      coalesce(outflow, 0) as outflow, coalesce(salary, 0) as salary, coalesce(utility, 0) as utility
    from o full join p using (user_id, event_date)"""


def duck_windows(lake: Lake) -> str:
    from spark_jobs.windows import METRICS, WINDOWS, window_column, window_columns

    n = lake.night
    nd = f"date '{n}'"
    cols = window_columns()
    entering = ", ".join(
        f"sum(case when event_date > {nd} - {w} then {m} else 0 end) as {window_column(m, w)}"
        for m in METRICS
        for w in WINDOWS
    )
    leaving = ", ".join(
        f"-sum(case when event_date = {nd} - {w} then {m} else 0 end) as {window_column(m, w)}"
        for m in METRICS
        for w in WINDOWS
    )
    leaving_days = ", ".join(f"{nd} - {w}" for w in WINDOWS)
    daily = f"read_parquet('{lake.glob('features', 'daily')}', hive_partitioning = true)"
    summed = ", ".join(f"round(sum({c}), 4) as {c}" for c in cols)
    nonzero = " or ".join(f"abs({c}) > 1e-6" for c in cols)
    return f"""
    with parts as (
      select user_id, {", ".join(cols)} from read_parquet('{lake.night_part("features", "windows", ds=days_before(n, 1))}')
      union all by name
      select user_id, {entering} from {daily} where ds = '{n}' and event_date <= {nd} group by user_id
      union all by name
      select user_id, {leaving} from {daily}
      where ds < '{n}' and ds >= '{days_before(n, max(WINDOWS))}' and event_date in ({leaving_days}) group by user_id)
    select user_id, {summed} from parts group by user_id having {nonzero}"""


def duck_state(lake: Lake) -> str:
    """The two state folds with the most work: the latest balances and the worst-days-past-due queue."""
    n = lake.night
    year_start = f"date '{days_before(n, 364)}'"
    prev = lake.state_before
    tonight = lambda src: f"read_parquet('{lake.night_part('validated', src, ds=n)}')"  # noqa: E731
    return f"""
    with balance_rows as (
      select user_id, payment_ts, payment_id, balance_after, wealth_balance_after, event_date from {prev("balances")}
      union all
      select user_id, payment_ts, payment_id, balance_after, wealth_balance_after, event_date from {tonight("payments")}
      where event_date <= date '{n}'),
    balances as (
      select user_id, balance_after, wealth_balance_after from balance_rows where event_date >= {year_start}
      qualify row_number() over (partition by user_id order by payment_ts desc, payment_id desc) = 1),
    dpd_rows as (
      select user_id, bill_id, event_date, days_past_due from {prev("bill_dpd")}
      union all
      select user_id, bill_id, event_date, days_past_due from {tonight("bills")} where event_date <= date '{n}'),
    per_day as (
      select user_id, bill_id, event_date, max(days_past_due) as days_past_due from dpd_rows
      where event_date >= {year_start} group by all),
    queue as (
      select user_id, bill_id, event_date, days_past_due from per_day
      qualify days_past_due > coalesce(max(days_past_due) over (partition by user_id, bill_id order by event_date desc
                                         rows between unbounded preceding and 1 preceding), -1))
    select 'balance' as kind, user_id, null as bill_id, null as event_date, balance_after as value from balances
    union all
    select 'dpd', user_id, bill_id, event_date, days_past_due from queue"""


def duck_social(lake: Lake) -> str:
    """The social sums as the night makes them (spark_jobs/features.py: social_features): the contact pairs with
    tonight's edges added, each weighted by the transfers of the 90 days between its two users (both ways, money
    one sends oneself counted on both sides), then per user the neighbours' delinquency, court listing and
    weighted mean last score."""
    from spark_jobs.features import MAX_CONTACT_WEIGHT

    n = lake.night
    nd = f"date '{n}'"
    first = days_before(n, 89)
    prev = lake.state_before

    def tonight(source: str) -> str:
        # a night may deliver no court-list entries or contacts: its partition folder is then absent
        return (
            f"(select * from read_parquet('{lake.glob('validated', source)}', hive_partitioning = true) "
            f"where ds = '{n}')"
        )

    bills = f"read_parquet('{lake.glob('validated', 'bills')}', hive_partitioning = true)"
    transfers = f"read_parquet('{lake.glob('features', 'daily_transfers')}', hive_partitioning = true)"
    scored = lake.last_scores()
    scores = (
        f"select user_id, score::double as score from read_parquet('{scored / '*.parquet'}')"
        if scored
        else "select null::varchar as user_id, null::double as score where false"
    )
    return f"""
    with e as (select src_user_id, dst_user_id from {tonight("social_edges")} where event_date <= {nd}),
    kept as (select distinct user_id as a, nbr as b from (
      select user_id, nbr from {prev("contact_pairs")}
      union all select least(src_user_id, dst_user_id), greatest(src_user_id, dst_user_id) from e)),
    exchanged as (
      select least(user_id, counterparty_id) as a, greatest(user_id, counterparty_id) as b,
        sum(transfers * (case when user_id = counterparty_id then 2 else 1 end)) as transfers
      from {transfers}
      where ds <= '{n}' and ds >= '{first}' and event_date <= {nd} and event_date >= date '{first}'
      group by all),
    weighted as (
      select a, b, least(1 + coalesce(x.transfers, 0), {MAX_CONTACT_WEIGHT}) as weight
      from kept left join exchanged x using (a, b)),
    contacts as (select a as user_id, b as nbr, weight from weighted
                 union all select b, a, weight from weighted where a <> b),
    delinquent as (select distinct user_id from {bills} where ds <= '{n}' and ds >= '{first}'
                   and event_date <= {nd} and event_date >= date '{first}' and days_past_due >= 30),
    listed as (select distinct user_id from (select user_id from {prev("listed")} union all
                                             select user_id from {tonight("blacklist")} where event_date <= {nd})),
    scores as ({scores})
    select c.user_id, count(*)::double as sc_degree,
      sum(case when d.user_id is not null then 1.0 else 0.0 end) / count(*) as sc_neighbor_delinquent_share,
      sum(case when l.user_id is not null then 1.0 else 0.0 end) / count(*) as sc_neighbor_listed_share,
      case when sum(case when s.score is not null then weight end) > 0
        then sum(weight * s.score) / sum(case when s.score is not null then weight end) end as sc_neighbor_score_mean
    from contacts c left join delinquent d on d.user_id = c.nbr left join listed l on l.user_id = c.nbr
      left join scores s on s.user_id = c.nbr
    group by c.user_id"""


def duck_pagerank(
    con: duckdb.DuckDBPyConnection, lake: Lake, damping: float = 0.85, max_iter: int = 20, tol: float = 1e-6
) -> str:
    """PageRank over the 90-day transfer graph with the Spark version's iteration and stopping rule; leaves
    the ranks in the temporary table `ranks` and returns the query that reads them."""
    from spark_jobs.graph import CHECKPOINT_EVERY as check_every

    n = lake.night
    transfers = f"read_parquet('{lake.glob('features', 'daily_transfers')}', hive_partitioning = true)"
    con.execute(f"""
      create or replace temp table g_edges as
      select user_id as src, counterparty_id as dst, sum(amount) as weight from {transfers}
      where ds <= '{n}' and ds >= '{days_before(n, 89)}' and event_date <= date '{n}' and event_date >= date '{days_before(n, 89)}'
      group by all;
      create or replace temp table g_nodes as select src as node from g_edges union select dst from g_edges;
      create or replace temp table g_shares as
      select src, dst, weight / sum(weight) over (partition by src) as share from g_edges;
      create or replace temp table g_dangling as
      select node from g_nodes where node not in (select src from g_edges);""")
    count = con.execute("select count(*) from g_nodes").fetchone()[0]
    con.execute(f"create or replace temp table ranks as select node, 1.0 / {count} as rank from g_nodes")
    con.execute("create or replace temp table ranks_checked as select * from ranks")
    for i in range(max_iter):
        con.execute(f"""
          create or replace temp table ranks_next as
          with flow as (select dst as node, sum(share * rank) as inflow from g_shares join ranks on ranks.node = src
                        group by dst),
               dangling as (select coalesce(sum(rank), 0) as mass from ranks where node in (select node from g_dangling))
          select n.node, {(1 - damping) / count} + {damping} * dangling.mass / {count}
                         + {damping} * coalesce(flow.inflow, 0) as rank
          from g_nodes n left join flow using (node), dangling;
          drop table ranks; alter table ranks_next rename to ranks;""")
        if (i + 1) % check_every == 0 or i + 1 == max_iter:
            # the change since the last check, as the Spark version measures it
            change = con.execute(
                "select sum(abs(r.rank - p.rank)) from ranks r join ranks_checked p using (node)"
            ).fetchone()[0]
            con.execute("create or replace temp table ranks_checked as select * from ranks")
            if change < count * tol * check_every:
                break
    return f"select node as user_id, rank * {count} as sc_transfer_trust from ranks"


# ------------------------------------------------------------------ Spark transforms


def spark_stages(spark, lake: Lake) -> dict[str, Callable]:
    from pyspark.sql import functions as F

    from spark_jobs import features as feat
    from spark_jobs import state as st
    from spark_jobs.windows import daily_aggregates, windows_incremental

    n = lake.night
    sources = feat.read_sources(spark, lake.cfg)
    tonight = {name: df.filter(F.col("ds") == n) for name, df in sources.items()}
    daily = spark.read.parquet(str(lake.cfg.zone("features", "daily"))).withColumn("ds", F.col("ds").cast("string"))
    transfers = spark.read.parquet(str(lake.cfg.zone("features", "daily_transfers"))).withColumn(
        "ds", F.col("ds").cast("string")
    )

    def previous(*zone):
        return spark.read.parquet(str(lake.cfg.zone("features", *zone, ds=days_before(n, 1))))

    def state():
        payments = tonight["payments"].filter(F.col("event_date") <= F.to_date(F.lit(n)))
        bills = tonight["bills"].filter(F.col("event_date") <= F.to_date(F.lit(n)))
        balances = st.balances(previous("state", "balances"), payments, n).select(
            F.lit("balance").alias("kind"),
            "user_id",
            F.lit(None).cast("string").alias("bill_id"),
            F.lit(None).cast("date").alias("event_date"),
            F.col("balance_after").alias("value"),
        )
        queue = st.bill_dpd(previous("state", "bill_dpd"), bills, n).select(
            F.lit("dpd").alias("kind"),
            "user_id",
            "bill_id",
            "event_date",
            F.col("days_past_due").cast("double").alias("value"),
        )
        return balances.unionByName(queue)

    def social():
        known = {
            name: tonight[name].filter(F.col("event_date") <= F.to_date(F.lit(n)))
            for name in ("social_edges", "blacklist")
        }
        pairs = st.contacts(previous("state", "contact_pairs"), known["social_edges"], n)
        listed = st.listed(previous("state", "listed"), known["blacklist"], n)
        scored = lake.last_scores()
        scores = spark.read.parquet(str(scored)).select("user_id", "score") if scored else None
        delinquent = feat.delinquent_users(sources["bills"], n)
        return feat.social_features(pairs, delinquent, listed, feat.recent_transfers(transfers, n), scores)

    return {
        "daily": lambda: daily_aggregates(tonight["orders"], tonight["payments"]).drop("ds"),
        "windows": lambda: windows_incremental(previous("windows"), daily, n),
        "state": state,
        "graph": lambda: feat.transfer_trust(feat.recent_transfers(transfers, n).localCheckpoint()),
        "social": social,
    }


# ------------------------------------------------------------------ the comparison


def _same(a: pd.DataFrame, b: pd.DataFrame, stage: str) -> None:
    """Row-by-row agreement of the two engines' results (keys sorted, numbers within 1e-6 relative)."""
    keys = [c for c in ("kind", "user_id", "bill_id", "event_date") if c in a.columns]

    def normalized(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[list(a.columns)].copy()
        for key in keys:  # dates and nulls arrive typed differently from the two engines
            frame[key] = [None if pd.isna(v) else str(v)[:10] if key == "event_date" else str(v) for v in frame[key]]
        return frame.sort_values(keys, na_position="first").reset_index(drop=True)

    a, b = normalized(a), normalized(b)
    if len(a) != len(b):
        raise AssertionError(f"{stage}: Spark gives {len(a)} rows, DuckDB {len(b)}")
    for col in a.columns:
        if col in keys:
            if not a[col].equals(b[col]):
                raise AssertionError(f"{stage}: the engines disagree on the keys ({col})")
        else:
            x, y = a[col].astype(float).to_numpy(), b[col].astype(float).to_numpy()
            if not np.allclose(x, y, rtol=1e-6, atol=1e-6, equal_nan=True):
                raise AssertionError(f"{stage}: the engines disagree on {col}")


def best_of(run: Callable[[], object], repeats: int) -> float:
    """The shortest wall time of `repeats` runs, in seconds."""
    return min(timed(lambda _: run(), repeats))


def timed(run: Callable[[int], object], repeats: int) -> list[float]:
    """The wall time of each of `repeats` runs, in seconds; `run` is given the run's index."""
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - started)
    return times


def spark_account(spark, group: str) -> dict | None:
    """What Spark's own status API counts for the jobs of one job group: the time its tasks ran and spent on CPU
    and in garbage collection (summed over tasks, so up to twice the wall time on two cores), the stages and tasks
    it scheduled, the bytes it shuffled and spilled. None when the session has no UI to ask."""
    url = spark.sparkContext.uiWebUrl
    if not url:
        return None
    api = f"{url}/api/v1/applications/{spark.sparkContext.applicationId}"
    with urlopen(f"{api}/jobs") as response:
        jobs = [job for job in json.load(response) if job.get("jobGroup") == group]
    account = {"cores": spark.sparkContext.defaultParallelism, "jobs": len(jobs), "stages": 0, "tasks": 0}
    account |= {"task_seconds": 0.0, "cpu_seconds": 0.0}
    account |= {"gc_seconds": 0.0, "shuffle_mb": 0.0, "spill_mb": 0.0}
    for stage in sorted({stage for job in jobs for stage in job["stageIds"]}):
        with urlopen(f"{api}/stages/{stage}") as response:
            attempts = [a for a in json.load(response) if a["status"] == "COMPLETE"]  # not the skipped ones
        for a in attempts:
            account["stages"] += 1
            account["tasks"] += a["numCompleteTasks"]
            account["task_seconds"] += a["executorRunTime"] / 1e3
            account["cpu_seconds"] += a["executorCpuTime"] / 1e9
            account["gc_seconds"] += a["jvmGcTime"] / 1e3
            account["shuffle_mb"] += a["shuffleWriteBytes"] / 2**20
            account["spill_mb"] += a["diskBytesSpilled"] / 2**20
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in account.items()}


def compare(cfg: Settings, night: str, spark=None, repeats: int = REPEATS) -> dict:
    """Per stage: Spark seconds, DuckDB seconds, rows, and their ratio, for the night on the given lake (whose
    features for the night before exist). Raises AssertionError when the engines' results differ."""
    from sesame.spark import get_session

    lake = Lake(cfg, night)
    own_session = spark is None
    # the UI's status API is how spark_account reads what each run cost (it is off for the pipeline's sessions)
    spark = spark or get_session("sesame-bench-engines", with_spark_conf(cfg, "spark.ui.enabled=true"))
    con = duckdb.connect()
    results = {}
    try:
        stages = spark_stages(spark, lake)
        # each stage's query; PageRank iterates first, then reads its ranks
        sql = {
            "daily": lambda: duck_daily(lake),
            "windows": lambda: duck_windows(lake),
            "state": lambda: duck_state(lake),
            "graph": lambda: duck_pagerank(con, lake),
            "social": lambda: duck_social(lake),
        }
        for name, build in stages.items():

            def duck_run(query=sql[name]) -> None:
                con.execute(f"create or replace temp table result as {query()}")

            spark_result = build().toPandas()
            duck_run()
            _same(spark_result, con.execute("select * from result").df(), name)

            def spark_run(i: int, name=name, build=build) -> None:
                spark.sparkContext.setJobGroup(f"engines-{name}-{i}", f"{name}, run {i + 1}")
                build().write.format("noop").mode("overwrite").save()

            spark_times = timed(spark_run, repeats)
            best = int(np.argmin(spark_times))
            spark_s, duck_s = spark_times[best], best_of(duck_run, repeats)
            results[name] = {
                "spark_seconds": round(spark_s, 2),
                "duckdb_seconds": round(duck_s, 2),
                "rows": len(spark_result),
                "ratio": round(spark_s / duck_s, 1),
                # what Spark's fastest run spent, by its own count: the measurement of what bounds the stage
                "spark_account": spark_account(spark, f"engines-{name}-{best}"),
            }
    finally:
        con.close()
        if own_session:
            spark.stop()
    return results
