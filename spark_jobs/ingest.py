"""Ingest: raw deliveries -> validated Parquet + quarantine (with a reason per record) + row accounting.

For every source and delivery day: check the file against the upstream's control totals in its `_SUCCESS`
marker (size, sha256, records: a file cut short or replaced on its way is rejected before it is read), read
it as text-typed columns, check the header against the declared schema (an added column is tolerated and
reported; a missing or renamed required column fails the night), cast, apply the declared rules, deduplicate
by natural key within the batch and against earlier deliveries, and write each delivery day's partition
(overwrite, so any night can be re-run).

    delivered = accepted + quarantined + duplicates      (per source, per delivery day)

Usage: spark-submit spark_jobs/ingest.py --ds YYYY-MM-DD [--catch-up]
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sesame import identity
from sesame.config import Settings, ds_partition, ds_partitions
from sesame.deliveries import check_delivery, delivered_days
from sesame.schemas import SOURCES, Source
from sesame.spark import broadcast_when_small, kept_rows, release_rows, run_job, write_days

CORRUPT = "_corrupt_record"
# Batches up to this many good records (a night's delivery at 1,000,000 users is about 1.6 million payments) check
# earlier keys through a broadcast of their hashes; larger catch-up batches through a hashed join of the hashes.
PREFILTER_MAX_ROWS = 5_000_000


class DeliveryRejected(Exception):
    """A delivery unusable as a whole; the message names the source, the file and the rule."""


# ---------------------------------------------------------------- reading


def delivery_file(raw: Path, source: Source, ds: str) -> Path:
    return ds_partition(raw / source.name, ds) / source.file


def _parquet_metadata(path: Path, source: Source):
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path)
    except Exception as exc:  # truncated or not Parquet at all
        raise DeliveryRejected(
            f"source {source.name}, file {path}: rule file.readable: the Parquet file cannot be read ({exc}). "
            "Ask the upstream team to re-deliver the day, then re-run the night."
        ) from exc


def count_records(path: Path, source: Source) -> int:
    """Records in the file as delivered, counted apart from Spark so that the accounting can catch losses."""
    if source.format == "parquet":
        return _parquet_metadata(path, source).num_rows
    with open(path, "rb") as fh:
        lines = sum(1 for line in fh if line.strip())
    return lines - 1 if source.format == "csv" and lines else lines


def read_header(path: Path, source: Source) -> list[str]:
    """Column names as delivered: the CSV header, the keys of the first JSON lines, or the Parquet schema."""
    if source.format == "parquet":
        return _parquet_metadata(path, source).schema.to_arrow_schema().names
    with open(path, encoding="utf-8", errors="replace") as fh:
        if source.format == "csv":
            return [c.strip() for c in fh.readline().rstrip("\r\n").split(",")]
        keys: dict[str, None] = {}
        for _, line in zip(range(200), fh):
            try:
                keys.update(dict.fromkeys(json.loads(line)))
            except (ValueError, AttributeError, TypeError):
                continue
        return list(keys)


def check_columns(path: Path, source: Source, found: list[str]) -> list[str]:
    """Fail on breaking drift (a declared column missing); return added columns (additive drift is tolerated)."""
    declared = source.column_names
    missing = [c for c in declared if c not in found and source.column(c).required]
    added = [c for c in found if c not in declared]
    if missing:
        hint = f" (found unexpected {added})" if added else ""
        raise DeliveryRejected(
            f"source {source.name}, file {path}: rule schema.required_columns: missing {missing}{hint}. "
            "A renamed or dropped column is a breaking change: agree the schema with the upstream team "
            "(src/sesame/schemas.py), then re-run the night."
        )
    return added


def read_as_text(spark: SparkSession, source: Source, paths: list[Path], header: list[str], base: Path) -> DataFrame:
    """Every delivered column as a string, plus a hash of the record's content and the delivery day `ds` (the
    record's raw text is made by `validate`, only for the records it quarantines)."""
    str_paths = [str(p) for p in paths]
    if source.format == "parquet":
        df = spark.read.option("basePath", str(base)).parquet(*str_paths)
        df = df.select(*[F.col(c).cast("string").alias(c) for c in header], F.col("ds").cast("string"))
        return df.withColumn(CORRUPT, F.lit(None).cast("string")).withColumn(
            "record_hash", F.xxhash64(*[F.col(c) for c in header])
        )
    schema = T.StructType([T.StructField(c, T.StringType()) for c in header] + [T.StructField(CORRUPT, T.StringType())])
    reader = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("basePath", str(base))
    )
    if source.format == "csv":
        df = reader.option("header", True).option("enforceSchema", True).csv(str_paths)
    else:
        df = reader.json(str_paths)
    df = df.withColumn("ds", F.col("ds").cast("string"))
    return df.withColumn("record_hash", F.xxhash64(*[F.col(c) for c in header], F.col(CORRUPT)))


# ---------------------------------------------------------------- validating


def _cast(col: str, spark_type: str):
    """Cast a delivered text value; a value that does not parse becomes null (and the record is quarantined)."""
    c = F.trim(F.col(col))
    if spark_type == "timestamp":
        return F.try_to_timestamp(c, F.lit("yyyy-MM-dd'T'HH:mm:ss"))
    if spark_type == "date":
        return F.try_to_date(F.substring(c, 1, 10), "yyyy-MM-dd")
    if spark_type == "int":
        # "3.0" from a float-typed upstream column is still the integer 3
        as_double = c.try_cast("double")
        return F.when(as_double == F.floor(as_double), as_double.try_cast("int"))
    return c.try_cast(spark_type)


def iso7064_mod11_2(value):
    """The check character of a value's first 17 digits (sesame.identity.check_character, as a Spark column)."""
    total = sum(F.substring(value, i + 1, 1).cast("int") * weight for i, weight in enumerate(identity.WEIGHTS))
    return F.element_at(F.array(*[F.lit(c) for c in identity.CHECK_CHARACTERS]), (total % 11 + 1).cast("int"))


# Column.checksum names one of these.
CHECK_CHARACTER = {"iso7064_mod11_2": iso7064_mod11_2}


def validate(df: DataFrame, source: Source) -> DataFrame:
    """Typed declared columns plus `reject_reason` (null for a good record): the first rule the record breaks, and
    `raw_record`, the record as delivered (the unparsed line, or its columns as JSON) for a record quarantined."""
    delivered = [c for c in df.columns if c not in (CORRUPT, "ds", "record_hash")]
    # Each delivered value is cast once, into a column of its own, before the rules read it: a rule set reads a
    # typed value up to five times, and Spark does not collapse a projection that would repeat an expensive cast.
    cast = {col.name: f"_typed_{col.name}" for col in source.columns if col.name in df.columns}
    df = df.select("*", *[_cast(name, source.column(name).type).alias(typed) for name, typed in cast.items()])
    checks = [F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed_record"))]
    typed = {}
    for col in source.columns:
        raw = F.col(col.name) if col.name in df.columns else F.lit(None).cast("string")
        value = F.col(cast[col.name]) if col.name in cast else F.lit(None).cast(col.type)
        typed[col.name] = value
        present = raw.isNotNull() & (F.trim(raw) != "")
        if col.required:
            checks.append(F.when(~present, F.lit(f"required_null:{col.name}")))
        checks.append(F.when(present & value.isNull(), F.lit(f"bad_type:{col.name}")))
        if col.allowed is not None:
            checks.append(
                F.when(value.isNotNull() & ~value.cast("string").isin(*col.allowed), F.lit(f"not_allowed:{col.name}"))
            )
        if col.min is not None:
            checks.append(F.when(value < F.lit(col.min), F.lit(f"below_min:{col.name}")))
        if col.max is not None:
            checks.append(F.when(value > F.lit(col.max), F.lit(f"above_max:{col.name}")))
        if col.pattern is not None:
            checks.append(F.when(value.isNotNull() & ~value.rlike(col.pattern), F.lit(f"bad_format:{col.name}")))
        if col.checksum is not None:
            well_formed = value.rlike(col.pattern) if col.pattern else value.isNotNull()
            checks.append(
                F.when(
                    well_formed & (F.substring(value, -1, 1) != CHECK_CHARACTER[col.checksum](value)),
                    F.lit(f"bad_checksum:{col.name}"),
                )
            )
        if col.keep_last is not None:
            # the whole value was needed for the checks above; past them only its end, behind a mask
            typed[col.name] = F.lpad(
                F.substring(value, -col.keep_last, col.keep_last), F.length(value), identity.MASK_CHARACTER
            )
    if source.event_col:
        # an event cannot be delivered before it happened; windows rely on it (spark_jobs/features.py)
        checks.append(
            F.when(
                F.to_date(typed[source.event_col]) > F.to_date(F.col("ds")), F.lit(f"future_event:{source.event_col}")
            )
        )
    reject_reason = F.coalesce(*checks)
    # The raw text is made in the same projection as the verdict, only for a record quarantined: made apart, Spark
    # made it for every record (a third of the time it took to validate a day of KYC snapshots).
    raw_record = F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(c) for c in delivered])))
    out = df.select(
        *[typed[c].alias(c) for c in source.column_names],
        reject_reason.alias("reject_reason"),
        F.when(reject_reason.isNotNull(), raw_record).alias("raw_record"),
        "record_hash",
        "ds",
    )
    return out.withColumn("event_date", event_date(source))


def event_date(source: Source):
    if source.event_col is None:
        return F.to_date("ds")
    col = F.col(source.event_col)
    return F.to_date(col)


def deduplicate(
    valid: DataFrame, source: Source, earlier_keys: DataFrame | None, batch_rows: int
) -> tuple[DataFrame, DataFrame]:
    """Mark repeats of a natural key (`is_duplicate`): within the batch the first delivery (then first record) wins;
    a key accepted on an earlier night is a duplicate whenever it comes again. (A full snapshot repeats its keys
    every day: there a repeat is a key twice in one day's snapshot.)

    Repeats are rare, so a catch-up batch looks for them by the key's hash first: only the records whose hash the
    batch holds twice, or an earlier night accepted, are ordered by a window (which compares the keys themselves, so
    a hash collision costs nothing but a row), the rest are first deliveries without being sorted at all. A night's
    batch (PREFILTER_MAX_ROWS records at most) is ordered whole: one window costs it less than the jobs that would
    find its repeats first (83 s instead of 95 s for a 1,000,000-user night's ingestion).

    Returns the marked records and the part of them the window ordered, cached (the caller unpersists it): every
    repeat is there, so the repeats are counted without going through the rest."""
    keys = list(source.key)
    catch_up_batch = batch_rows > PREFILTER_MAX_ROWS
    scope = ["_key_hash", *(["ds"] if source.full_snapshot else [])]
    hashed = valid.withColumn("_key_hash", F.xxhash64(*keys))
    earlier = None
    if earlier_keys is not None and not source.full_snapshot:
        earlier = earlier_keys.select(*keys, F.col("ds").cast("string").alias("ds"))
        earlier = earlier.withColumn("_key_hash", F.xxhash64(*keys))
        # A night's batch is small next to 60 days of keys, and its hashes go to every task; a catch-up batch's
        # meet the earlier hashes in a hashed join on that one column.
        batch_hashes = hashed.select("_key_hash")
        if not catch_up_batch:
            earlier = earlier.join(F.broadcast(batch_hashes.distinct()), "_key_hash", "left_semi")
        else:
            found = earlier.select("_key_hash").join(batch_hashes.hint("shuffle_hash"), "_key_hash", "left_semi")
            earlier = earlier.join(
                broadcast_when_small(found.localCheckpoint(), PREFILTER_MAX_ROWS), "_key_hash", "left_semi"
            )
    clear, rows = None, hashed
    if catch_up_batch:
        suspects = hashed.groupBy(*scope).count().filter(F.col("count") > 1).drop("count")
        if earlier is not None:
            suspects = suspects.unionByName(earlier.select("_key_hash"))
        suspects = broadcast_when_small(suspects.distinct().localCheckpoint(), PREFILTER_MAX_ROWS)
        clear = hashed.join(suspects, scope, "left_anti").withColumn("is_duplicate", F.lit(False))
        rows = hashed.join(suspects, scope, "left_semi")
    rows = rows.withColumn("_earlier", F.lit(False))
    if earlier is not None:
        # keys accepted on earlier nights join the window as rows that sort first (their day is earlier)
        rows = rows.unionByName(earlier.withColumn("_earlier", F.lit(True)), allowMissingColumns=True)
    # The content hash orders repeats within one delivery deterministically without carrying the record's text
    # through the shuffle (the text is only needed for quarantined records).
    order = Window.partitionBy(*keys, *(["ds"] if source.full_snapshot else [])).orderBy("ds", "record_hash")
    ordered = rows.withColumn("is_duplicate", F.row_number().over(order) > 1)
    ordered = ordered.filter(~F.col("_earlier")).drop("_earlier", "_key_hash").cache()
    return (ordered if clear is None else clear.drop("_key_hash").unionByName(ordered)), ordered


def within_batch_range(earlier_keys: DataFrame, batch: DataFrame, key: str) -> DataFrame | None:
    """The earlier nights' rows whose `key` (a key's first column) lies between the least and the greatest of the
    batch's: no other can repeat a key of the batch. The bounds reach the Parquet reader, which skips each file whose
    statistics put all its keys outside them, so ids that grow with time (a day's payment ids after the day
    before's) leave the lookback's days unread: at 1,000,000 users, 105 million payment and 44 million order keys a
    night. Ids in no order leave every day to read, as before. None when the batch has no key to repeat."""
    low, high = batch.agg(F.min(key), F.max(key)).first()
    if low is None:
        return None
    return earlier_keys.filter(F.col(key).between(F.lit(low), F.lit(high)))


def check_control_totals(cfg: Settings, source: Source, ds: str, path: Path) -> int | None:
    """Reject a delivery whose file is not what the upstream's control totals in its `_SUCCESS` marker describe
    (missing totals, size, sha256, record count), before anything reads it; returns the records counted."""
    verdict = check_delivery(
        path, source.name, ds, lambda p: count_records(p, source), require=cfg.require_control_totals
    )
    if verdict.rule:
        raise DeliveryRejected(
            f"source {source.name}, file {path}: rule {verdict.rule}: {verdict.why}. Ask the upstream team to "
            "re-deliver the day (the file and its _SUCCESS marker), then re-run the night."
        )
    return verdict.records


# ---------------------------------------------------------------- the job


def ingest_source(spark: SparkSession, cfg: Settings, source: Source, days: list[str]) -> list[dict]:
    base = cfg.raw / source.name
    files = {ds: delivery_file(cfg.raw, source, ds) for ds in days}
    # Days whose header agrees are read in one pass.
    batches: dict[tuple[str, ...], list[str]] = {}
    drift: dict[str, list[str]] = {}
    counted: dict[str, int | None] = {}
    for ds, path in files.items():
        if not path.exists():
            raise DeliveryRejected(
                f"source {source.name}, file {path}: rule delivery.present: the file is missing "
                "although the delivery is marked complete. Ask for a re-delivery."
            )
        counted[ds] = check_control_totals(cfg, source, ds, path)
        header = read_header(path, source)
        added = check_columns(path, source, header)
        if added:
            drift[ds] = added
        batches.setdefault(tuple(header), []).append(ds)

    records = None
    for header, batch_days in batches.items():
        text = read_as_text(spark, source, [files[d] for d in batch_days], list(header), base)
        part = validate(text, source)
        records = part if records is None else records.unionByName(part)

    valid_zone = cfg.zone("validated", source.name)
    earlier = None
    if not source.full_snapshot and valid_zone.exists():
        first = min(days)
        horizon = (dt.date.fromisoformat(first) - dt.timedelta(days=cfg.dedupe_lookback_days)).isoformat()
        earlier_parts = [ds_partition(valid_zone, day) for day in ds_partitions(valid_zone, horizon) if day < first]
        if earlier_parts:
            earlier = spark.read.option("basePath", str(valid_zone)).parquet(*[str(p) for p in earlier_parts])

    # Parsed and checked once: the accepted, quarantined and counted rows all come from these rows instead of
    # parsing the delivery again.
    records = kept_rows(records)
    per_day = {
        r["ds"]: r
        for r in records.groupBy("ds")
        .agg(F.count("*").alias("records"), F.count("reject_reason").alias("quarantined"))
        .collect()
    }
    good_rows = sum(r["records"] - r["quarantined"] for r in per_day.values())
    good = records.filter(F.col("reject_reason").isNull()).drop("raw_record")
    bad = records.filter(F.col("reject_reason").isNotNull())
    if earlier is not None:
        earlier = within_batch_range(earlier, good, source.key[0])
    marked, ordered = deduplicate(good, source, earlier, good_rows)
    # Repeats are counted among the rows the window ordered (a catch-up batch's few suspects, a night's whole batch),
    # and before anything is written: writing the validated zone drops every cached frame that reads it (Spark
    # re-caches by path), and the window reads the earlier days there (counted after the write, the window ran
    # again: 215 s of task time for 15 days of payments at the target's sizing). The batch's other records are
    # written straight from the parsed records, not cached a second time to be counted.
    dups = {r["ds"]: r["count"] for r in ordered.filter(F.col("is_duplicate")).groupBy("ds").count().collect()}

    accepted = marked.filter(~F.col("is_duplicate")).drop("is_duplicate", "reject_reason", "record_hash")
    quarantined = bad.select("raw_record", "reject_reason", "ds").withColumn("source", F.lit(source.name))

    write_days(accepted, valid_zone)
    write_days(quarantined, cfg.zone("quarantine", source.name))
    ordered.unpersist()
    release_rows(records)
    rows = []
    for ds in days:
        read_n = per_day[ds]["records"] if ds in per_day else 0
        quarantined_n = per_day[ds]["quarantined"] if ds in per_day else 0
        good_n, dups_n = read_n - quarantined_n, dups.get(ds, 0)
        delivered = counted[ds] if counted[ds] is not None else count_records(files[ds], source)
        if delivered != good_n + quarantined_n:
            raise DeliveryRejected(
                f"source {source.name}, file {files[ds]}: rule accounting.balance: {delivered} records delivered "
                f"but {good_n} read and {quarantined_n} quarantined. Inspect the file's line structure."
            )
        rows.append(
            {
                "ds": ds,
                "source": source.name,
                "file": str(files[ds].relative_to(cfg.home)),
                "delivered": delivered,
                "accepted": good_n - dups_n,
                "quarantined": quarantined_n,
                "duplicates": dups_n,
                "added_columns": ",".join(drift.get(ds, [])),
            }
        )
    return rows


def days_to_ingest(cfg: Settings, ds: str, catch_up: bool) -> list[str]:
    """Tonight, plus (with catch-up) every earlier day that is ready (each source delivered complete, or held) and
    not ingested whole yet: never ingested, or ingested while a source was held that is released now. Such a late
    day comes with every day ingested after it, re-ingested in day order, so that a record re-delivered across the
    late day is a duplicate exactly as it would have been had the days come in order."""
    if not catch_up:
        return [ds]
    from sesame.holds import held

    holds = held(cfg)
    ready = delivered_days(cfg, ds, also=set(holds))
    ingested = ingested_whole(cfg, holds)
    late = [d for d in ready if d < ds and d not in ingested]
    return [d for d in ready if d >= min(late)] if late else [ds]


def ingested_whole(cfg: Settings, holds: dict) -> set[str]:
    """Days whose accounting covers every source: ingested, or held and still held."""
    import pyarrow.parquet as pq

    done = set()
    for day in ds_partitions(cfg.zone("accounting")):
        table = pq.read_table(cfg.zone("accounting", ds=day))
        sources = table.column("source").to_pylist()
        reasons = table.column("hold_reason").to_pylist() if "hold_reason" in table.column_names else []
        if all((day, source) in holds for source, reason in zip(sources, reasons) if reason):
            done.add(day)
    return done


def held_row(cfg: Settings, hold: dict) -> dict:
    """The accounting row of a held delivery: nothing accepted, everything delivered set aside, and why."""
    delivered = hold.get("delivered")
    unknown = "" if delivered is not None else " (records unknown: the delivery carries no control totals)"
    return {
        "ds": hold["ds"],
        "source": hold["source"],
        "file": hold["file"],
        "delivered": delivered or 0,
        "accepted": 0,
        "quarantined": 0,
        "duplicates": 0,
        "held": delivered or 0,
        "hold_reason": f"held by {hold['held_by']} at {hold['held_at']}: {hold['reason']}{unknown}",
        "added_columns": "",
    }


# Sources a night ingests at once: on two cores one source's driver work (control totals, headers, planning) leaves
# the cores idle that another's tasks then use (a 100,000-user night: 57.5 and 49.7 s one at a time, 50.0 and 41.0 s
# two at a time). A catch-up pass takes them one at a time: each source holds many days of parsed records while it
# works, and two of them at 1,000,000 users made a 15-day pass slower (696.5 s against 615.2 s, 8 GB driver),
# though at 100,000 users they made it faster (129.4 s against 159.1 s).
SOURCES_SIDE_BY_SIDE = 2


def run(
    spark: SparkSession, cfg: Settings, ds: str, catch_up: bool = False, ingested_on: str | None = None
) -> list[dict]:
    from sesame.holds import held

    days = days_to_ingest(cfg, ds, catch_up)
    holds = held(cfg)
    accounting = []
    taken = {source.name: [d for d in days if (d, source.name) not in holds] for source in SOURCES.values()}
    # the sources need nothing of each other: a night ingests them side by side (a source that fails fails the run)
    with ThreadPoolExecutor(1 if catch_up else SOURCES_SIDE_BY_SIDE) as pool:
        ingested = {
            source.name: pool.submit(ingest_source, spark, cfg, source, taken[source.name])
            for source in SOURCES.values()
            if taken[source.name]
        }
        for source in SOURCES.values():
            if source.name in ingested:
                accounting += ingested[source.name].result()
            accounting += [held_row(cfg, holds[(d, source.name)]) for d in days if (d, source.name) in holds]
    for row in accounting:
        row.setdefault("held", 0)
        row.setdefault("hold_reason", "")
        # the night that ingested it (a later day's night means the day came late); "history" for training's
        row["ingested_on"] = ingested_on or ds
    acc_df = spark.createDataFrame(accounting, schema=ACCOUNTING_SCHEMA)
    acc_df.coalesce(1).write.mode("overwrite").partitionBy("ds").parquet(str(cfg.zone("accounting")))
    return accounting


ACCOUNTING_SCHEMA = T.StructType(
    [
        T.StructField("ds", T.StringType()),
        T.StructField("source", T.StringType()),
        T.StructField("file", T.StringType()),
        *[T.StructField(c, T.LongType()) for c in ("delivered", "accepted", "quarantined", "duplicates", "held")],
        T.StructField("hold_reason", T.StringType()),
        T.StructField("added_columns", T.StringType()),
        T.StructField("ingested_on", T.StringType()),
    ]
)


def ingest_night(spark: SparkSession, cfg: Settings, args) -> str:
    """The job's work: ingest the night (and the days it catches up); what it prints, the night's accounting."""
    rows = run(spark, cfg, args.ds, args.catch_up, args.ingested_on)
    tonight = [r for r in rows if r["ds"] == args.ds]
    return json.dumps({"ingested_days": len({r["ds"] for r in rows}), "tonight": tonight}, indent=1)


def main(argv: list[str] | None = None) -> int:
    return run_job(
        "ingest",
        __doc__,
        argv,
        ingest_night,
        options={
            "--catch-up": {"action": "store_true", "help": "also ingest earlier days not ingested yet"},
            "--ingested-on": {"help": "what ingested the days, in the accounting (default: the night --ds)"},
        },
        refused=(DeliveryRejected,),
    )


if __name__ == "__main__":
    sys.exit(main())
