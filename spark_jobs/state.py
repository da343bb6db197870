"""Incremental state for the characteristics that are not window sums: the latest balances, the credit-bill
history, the social graph and the court list. Each state table is last night's state folded with tonight's
delivery, and is kept bounded where it can be (old rows leave once no future night can use them), so a night reads
one delivery plus one state folder, however many days of history there are. Folding the same transform over every
record delivered by the night, starting from nothing, gives the full computation: the first night, a rebuild, and
the check in the tests.

    balances    (user_id, latest wallet movement)                     rows whose movement is within a year
    bill_status (user_id, bill_id, due_date, paid_on_time)            bills due within the last year or later
    bill_dpd    (user_id, bill_id, event_date, days_past_due)         only the rows that can still be a maximum
    credit_file (user_id, first_statement_date, latest statement)      one row per user with a bill
    arrears     (user_id, bill_id, due_date)                           bills not paid yet
    contact_pairs (user_id, nbr), user_id <= nbr                       every contact ever added, once a pair
    listed      (user_id)                                              every user on the court list

Days past due are a maximum over a sliding year, which cannot be undone by subtraction: `bill_dpd` keeps, per
bill, only the reports that exceed every later report of that bill (a monotonic queue), so the year's maximum
is the earliest report still inside the year, and a bill whose arrears only grow keeps a single row.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sesame.config import days_before
from sesame.spark import broadcast_when_small

YEAR = 365


def _days_before(night: str, days: int):
    return F.to_date(F.lit(days_before(night, days)))


def _year_start(night: str):
    """The first day of the year of events ending on the night (inclusive)."""
    return _days_before(night, YEAR - 1)


def _due_year_start(night: str):
    """Bills count for the on-time rate when due in the year before the night: [night - 365, night)."""
    return _days_before(night, YEAR)


def _fold(previous: DataFrame | None, tonight: DataFrame) -> DataFrame:
    return tonight if previous is None else previous.unionByName(tonight.select(*previous.columns))


# Up to this many groups touched by a night (its bills, its paying users) they are sent whole to every task to pick
# out the kept rows that fold again; the rest pass through without moving.
TOUCHED_BROADCAST_MAX_ROWS = 2_000_000


def _fold_touched(previous: DataFrame | None, tonight: DataFrame, keys: list[str], refold, keep) -> DataFrame:
    """`refold` (a transform of rows, grouped by `keys`) over last night's state and tonight's rows, when only the
    groups tonight touches can change: their kept rows fold again with tonight's, while every other group's rows
    are already folded and only the rows that leave with the night (`keep` false) drop. Millions of kept rows are
    then filtered where they lie instead of shuffled to meet a night's few thousand."""
    if previous is None:
        return refold(tonight)
    touched = tonight.select(*keys).distinct().localCheckpoint()
    touched = broadcast_when_small(touched, TOUCHED_BROADCAST_MAX_ROWS)
    untouched = previous.join(touched, keys, "left_anti").filter(keep)
    again = refold(previous.join(touched, keys, "left_semi").unionByName(tonight.select(*previous.columns)))
    return untouched.unionByName(again.select(*previous.columns))


def balances(previous: DataFrame | None, payments: DataFrame, night: str) -> DataFrame:
    """The last wallet movement of each user known by the night, kept while it is within the year."""
    rows = payments.select("user_id", "payment_ts", "payment_id", "balance_after", "wealth_balance_after", "event_date")
    within_year = F.col("event_date") >= _year_start(night)
    last = Window.partitionBy("user_id").orderBy(F.col("payment_ts").desc(), F.col("payment_id").desc())

    def latest(rows: DataFrame) -> DataFrame:
        return rows.filter(within_year).withColumn("_r", F.row_number().over(last)).filter("_r = 1").drop("_r")

    return _fold_touched(previous, rows, ["user_id"], latest, within_year)


def bill_status(previous: DataFrame | None, bills: DataFrame, night: str) -> DataFrame:
    """Per bill: its due date and whether it was paid in full by then. A bill due before the year leaves."""
    rows = bills.select(
        "user_id",
        "bill_id",
        "due_date",
        F.coalesce((F.col("paid_date") <= F.col("due_date")).cast("int"), F.lit(0)).alias("paid_on_time"),
    )
    due_in_year = F.col("due_date") >= _due_year_start(night)

    def status(rows: DataFrame) -> DataFrame:
        return (
            rows.groupBy("user_id", "bill_id")
            .agg(F.max("due_date").alias("due_date"), F.max("paid_on_time").alias("paid_on_time"))
            .filter(due_in_year)
        )

    return _fold_touched(previous, rows, ["user_id", "bill_id"], status, due_in_year)


def bill_dpd(previous: DataFrame | None, bills: DataFrame, night: str) -> DataFrame:
    """Per bill, the days-past-due reports that exceed every later report of the bill, within the year. A report
    that leaves the year takes nothing with it: whether a report is kept depends only on the later ones."""
    rows = bills.select("user_id", "bill_id", "event_date", "days_past_due")
    within_year = F.col("event_date") >= _year_start(night)
    later = (
        Window.partitionBy("user_id", "bill_id")
        .orderBy(F.col("event_date").desc())
        .rowsBetween(Window.unboundedPreceding, -1)
    )

    def queue(rows: DataFrame) -> DataFrame:
        per_day = (
            rows.filter(within_year)
            .groupBy("user_id", "bill_id", "event_date")
            .agg(F.max("days_past_due").alias("days_past_due"))
        )
        return (
            per_day.withColumn("_later_max", F.max("days_past_due").over(later))
            .filter(F.col("_later_max").isNull() | (F.col("days_past_due") > F.col("_later_max")))
            .drop("_later_max")
        )

    return _fold_touched(previous, rows, ["user_id", "bill_id"], queue, within_year)


def credit_file(previous: DataFrame | None, bills: DataFrame, night: str) -> DataFrame:
    """Per user: the first statement on record and the latest statement (for utilization)."""
    rows = bills.select(
        "user_id",
        F.col("statement_date").alias("first_statement_date"),
        F.struct("statement_date", "bill_id", "amount_due", "credit_limit").alias("latest"),
    )

    def on_file(rows: DataFrame) -> DataFrame:
        return rows.groupBy("user_id").agg(
            F.min("first_statement_date").alias("first_statement_date"), F.max("latest").alias("latest")
        )

    return _fold_touched(previous, rows, ["user_id"], on_file, F.lit(True))


def arrears(previous: DataFrame | None, bills: DataFrame, night: str) -> DataFrame:
    """Bills not paid yet: a bill enters with its statement and leaves with its payment. A charged-off bill is never
    paid, so it stays, and its holder stays in default (a debt written off is still owed)."""
    rows = bills.select("user_id", "bill_id", "due_date", F.col("paid_date").isNotNull().cast("int").alias("paid"))

    def unpaid(rows: DataFrame) -> DataFrame:
        return (
            rows.groupBy("user_id", "bill_id")
            .agg(F.max("due_date").alias("due_date"), F.max("paid").alias("paid"))
            .filter(F.col("paid") == 0)
        )

    return _fold_touched(previous, rows, ["user_id", "bill_id"], unpaid, F.lit(True))


def contacts(previous: DataFrame | None, edges: DataFrame, night: str) -> DataFrame:
    """(user_id, nbr) with user_id <= nbr: every pair of users one of whom added the other, once. The graph is
    undirected for the social characteristics (a contact is a contact whoever added whom), so a pair is kept once
    rather than both ways: half the rows to read each night (20 million at 20 million edges, not 40). Contacts are
    only ever added: the kept pairs and the night's new ones (`new_contacts`)."""
    return _fold(previous, new_contacts(previous, edges, night))


def new_contacts(previous: DataFrame | None, edges: DataFrame, night: str) -> DataFrame:
    """The contact pairs (user_id <= nbr) of `edges` not kept already in `previous`.

    A night adds a few thousand pairs to millions kept (20 million at 20 million edges): the kept pairs are not
    shuffled to drop repeats, only tonight's that are kept already are found (a semi-join, which Spark plans as a
    broadcast of tonight's pairs when they are small) and left out."""
    ends = F.col("src_user_id"), F.col("dst_user_id")
    pairs = edges.select(F.least(*ends).alias("user_id"), F.greatest(*ends).alias("nbr")).distinct()
    if previous is None:
        return pairs
    # one night's pairs are few: the kept ones are looked up by a broadcast of them, not shuffled to meet them
    pairs = pairs.localCheckpoint()
    tonight = broadcast_when_small(pairs, TONIGHTS_PAIRS_BROADCAST_MAX_ROWS)
    kept = previous.join(tonight, ["user_id", "nbr"], "left_semi")
    return pairs.join(kept, ["user_id", "nbr"], "left_anti")


# Up to this many new contact pairs in a night (a few thousand a night at 1,000,000 users) they are sent whole to
# every task to be looked up among the kept ones.
TONIGHTS_PAIRS_BROADCAST_MAX_ROWS = 2_000_000


def listed(previous: DataFrame | None, blacklist: DataFrame, night: str) -> DataFrame:
    """Users on the court list of judgement defaulters (entries are only ever added)."""
    return _fold(previous, blacklist.select("user_id")).distinct()


# States only ever added to: a night's state is last night's files and a file of the night's additions
# (name -> the additions, from last night's state and the night's records).
ADDITIONS: dict[str, Callable[[DataFrame | None, DataFrame, str], DataFrame]] = {"contact_pairs": new_contacts}

# name -> (source it folds, transform)
STATES: dict[str, tuple[str, Callable[[DataFrame | None, DataFrame, str], DataFrame]]] = {
    "balances": ("payments", balances),
    "bill_status": ("bills", bill_status),
    "bill_dpd": ("bills", bill_dpd),
    "credit_file": ("bills", credit_file),
    "arrears": ("bills", arrears),
    # once kept both ways, as "contacts": a home whose last night kept them so has no contact_pairs of that night,
    # and computes its next night from the whole history instead of folding the two forms together
    "contact_pairs": ("social_edges", contacts),
    "listed": ("blacklist", listed),
}


def _safe_div(num, den):
    return F.when(den > 0, num / den)


def balance_features(state: dict[str, DataFrame]) -> DataFrame:
    return state["balances"].select(
        "user_id", F.col("balance_after").alias("fc_balance"), F.col("wealth_balance_after").alias("fc_wealth_balance")
    )


def bill_features(state: dict[str, DataFrame], night: str) -> DataFrame:
    """The credit-history characteristics of every user with a bill on record."""
    night_d = F.to_date(F.lit(night))
    # one aggregation per user: a bill was delinquent in the year when any report of it kept is 30+ days past due
    # (grouping by bill first shuffled every kept report, 7 million at 1,000,000 users, twice)
    dpd = (
        state["bill_dpd"]
        .groupBy("user_id")
        .agg(
            F.max("days_past_due").cast("double").alias("ch_max_dpd_365"),
            F.count_distinct(F.when(F.col("days_past_due") >= 30, F.col("bill_id")))
            .cast("double")
            .alias("ch_delinquent_bills_365"),
        )
    )
    due_in_year = (F.col("due_date") < night_d) & (F.col("due_date") >= _due_year_start(night))
    ontime = (
        state["bill_status"]
        .groupBy("user_id")
        .agg(
            _safe_div(
                F.sum(F.when(due_in_year, F.col("paid_on_time")).otherwise(0)).cast("double"),
                F.sum(due_in_year.cast("double")),
            ).alias("ch_ontime_rate_365")
        )
    )
    file = state["credit_file"].select(
        "user_id",
        # capped at a year: bill history reaches a year back, so longer spans say nothing more and would
        # only drift upwards night after night
        F.least(F.datediff(night_d, F.col("first_statement_date")), F.lit(YEAR))
        .cast("double")
        .alias("ch_credit_age_days"),
        _safe_div(F.col("latest.amount_due"), F.col("latest.credit_limit")).alias("ch_utilization"),
    )
    return file.join(dpd, "user_id", "left").join(ontime, "user_id", "left")


def current_arrears(state: dict[str, DataFrame], night: str) -> DataFrame:
    """Per user with a credit file: the segment and the days past due of the oldest bill still unpaid at the night
    (0 when none is past due). Not characteristics: they decide which scorecard scores a user and who is already in
    default, and so outside both the development sample and the scored population."""
    night_d = F.to_date(F.lit(night))
    overdue = (
        state["arrears"]
        .filter(F.col("due_date") < night_d)
        .groupBy("user_id")
        .agg(F.max(F.datediff(night_d, F.col("due_date"))).alias("current_dpd"))
    )
    return (
        state["credit_file"]
        .filter(F.col("first_statement_date") <= night_d)
        .select("user_id")
        .join(overdue, "user_id", "left")
        .select("user_id", F.coalesce("current_dpd", F.lit(0)).cast("int").alias("current_dpd"))
    )
