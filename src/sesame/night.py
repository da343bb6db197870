"""The stages of one night, as plain functions the thin DAG in dags/sesame_nightly.py calls in order.

Write-audit-publish: everything is built into the lake and a staging copy of the warehouse first; only after
the audit passes are snapshots published, the warehouse file swapped in and LATEST moved. A failure at any
stage raises, the DAG run fails, and yesterday's LATEST and warehouse stay as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sesame import dbt_runner, durable, quality, snapshots
from sesame.config import (
    NIGHT_RUNS,
    REPO_ROOT,
    TRAIN_RUNS,
    Settings,
    days_before,
    ds_partition,
    ds_partitions,
    settings,
)
from sesame.dbt_runner import keep_failed_dbt_log, private_dbt_work
from sesame.holds import awaited_deliveries
from sesame.report import write_report
from sesame.schemas import PROFILE_MAX_AGE_DAYS, SOURCES
from sesame.spark import submit

logger = logging.getLogger(__name__)


class NightFailed(RuntimeError):
    """The night failed closed; the message says what, where and what to do next."""


def run_id_for(airflow_run_id: str, conf: dict | None = None) -> str:
    """The snapshot run id: the one `sesame night` chose (checked: it becomes folder names), or a path-safe form of
    Airflow's own."""
    if conf and conf.get("run_id"):
        try:
            return durable.checked_run_id(conf["run_id"])
        except ValueError as exc:
            raise NightFailed(str(exc)) from exc
    return re.sub(r"[^0-9A-Za-z]+", "", airflow_run_id)[:48]


@contextmanager
def stage(cfg: Settings, ds: str, run_id: str, name: str, runs: str = NIGHT_RUNS):
    """Record the stage in the run log (<runs>/<ds>/<run_id>.json) as it starts and as it ends: status, wall time
    and the rows it produced, for `sesame night` and `sesame train` to show while Airflow runs them.

    The stage holds this SESAME_HOME's lock while it works (under the lock of `sesame night` or `sesame train` when
    they run it), so that a stage of a run the scheduler started never works beside a night started by hand: that
    one refuses to start while the scheduler's run is under way, and a stage that finds the lock taken raises Busy,
    which Airflow retries."""
    from sesame.privacy import keep_private

    with durable.exclusive(
        cfg.home, f"stage {name} of the {'training' if runs == TRAIN_RUNS else 'night'} {ds} (run {run_id})"
    ):
        keep_private(cfg.home)  # before the stage writes personal data anywhere
        with _logged_stage(cfg, ds, run_id, name, runs):
            yield


@contextmanager
def _logged_stage(cfg: Settings, ds: str, run_id: str, name: str, runs: str):
    log = cfg.run_log(ds, run_id, runs)
    started = time.time()
    _log_stage(log, ds, run_id, {"stage": name, "status": "running", "seconds": None, "started_at": _utc_now()})
    status = "failed"
    try:
        yield
        status = "ok"
    finally:
        entry = {"stage": name, "status": status, "seconds": round(time.time() - started, 2), "finished_at": _utc_now()}
        if status == "ok":
            entry["rows"] = stage_rows(cfg, ds, name)
        _log_stage(log, ds, run_id, entry)


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _log_stage(log: Path, ds: str, run_id: str, entry: dict) -> None:
    """Add a stage's entry to the run log, or replace the entry of the same stage still running; whole or not at
    all, since the watch reads it while the night runs."""
    entries = json.loads(log.read_text()) if log.exists() else {"ds": ds, "run_id": run_id, "stages": []}
    stages = entries["stages"]
    running = [i for i, e in enumerate(stages) if e["stage"] == entry["stage"] and e["status"] == "running"]
    if running and entry["status"] != "running":
        stages[running[-1]] = {"started_at": stages[running[-1]].get("started_at"), **entry}
    else:
        stages.append(entry)
    durable.write_atomic(log, json.dumps(entries, indent=1))


def _rows_in(folder: Path) -> int | None:
    files = list(folder.glob("*.parquet")) if folder.exists() else []
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files) if files else None


def stage_rows(cfg: Settings, ds: str, name: str) -> int | None:
    """What a finished stage produced, in rows (None for a stage without a table of its own)."""
    try:
        if name == "ingest":
            acc = pd.read_parquet(cfg.zone("accounting", ds=ds))
            return int(acc["accepted"].sum())
        if name == "features":
            return _rows_in(cfg.zone("features", "user_features", ds=ds))
        if name == "dbt_features":
            return _rows_in(cfg.zone("features", "dbt_user_features", ds=ds))
        if name == "score":
            return _rows_in(cfg.zone("scores", ds=ds))
        if name == "publish":
            current = snapshots.latest(cfg.published, "sesame_scores")
            return current["row_count"] if current and current["ds"] == ds else None
        if name == "training_set":
            return _rows_in(cfg.zone("training", ds=ds))
    except (OSError, ValueError, KeyError):
        return None
    return None


@contextmanager
def data_errors_fail_at_once():
    """Around an Airflow task: a NightFailed (a bad delivery, a failed check) fails the task with no retry, since a
    retry would meet the same data; any other exception is left to the task's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except NightFailed as exc:
        raise AirflowFailException(str(exc)) from exc


# ------------------------------------------------------------------ stages


def delivery_deadline(cfg: Settings, ds: str) -> dt.datetime:
    """How long the night of ds waits for its deliveries: `delivery_deadline_hours` after the day ends (UTC)."""
    day_ends = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    return day_ends + dt.timedelta(hours=cfg.delivery_deadline_hours)


def waiting_for_deliveries(cfg: Settings, ds: str, now: dt.datetime | None = None) -> list[str]:
    """The deliveries of ds still missing while there is time to wait for them (the sensor looks again later);
    [] once every one is complete or the deadline has passed (check_deliveries then decides)."""
    missing = awaited_deliveries(cfg, ds)
    if missing and (now or dt.datetime.now(dt.timezone.utc)) < delivery_deadline(cfg, ds):
        return missing
    return []


def waiting_for_the_home(cfg: Settings) -> str | None:
    """Who holds this SESAME_HOME (a night or training run started by hand), logged for the operator; the scheduled
    night waits until it is done rather than working beside it."""
    busy = durable.holder(cfg.home)
    if busy:
        logger.info("waiting: %s", busy)
    return busy


def check_deliveries(cfg: Settings, ds: str) -> dict:
    missing = awaited_deliveries(cfg, ds)
    if missing:
        raise NightFailed(
            "rule delivery.complete: no complete delivery (no _SUCCESS marker) by the deadline "
            + f"{delivery_deadline(cfg, ds):%Y-%m-%d %H:%M} UTC for "
            + "; ".join(missing)
            + ". Wait for the upstream delivery or ask for it, then re-run `sesame night --ds "
            + ds
            + "`."
        )
    return {"sources": len(SOURCES)}


def spark_job(job: str, args: list[str], cfg: Settings) -> None:
    """Run a Spark job. A job that rejected its input (a `SESAME-ERROR:` line) fails the night closed; any other
    failure (a JVM that died, out of memory) propagates as JobFailed, which Airflow retries."""
    from sesame.spark import JobFailed

    try:
        submit(job, args, cfg)
    except JobFailed as exc:
        if exc.rejected:
            raise NightFailed(str(exc)) from exc
        raise


def ingest(cfg: Settings, ds: str) -> None:
    spark_job("ingest", ["--ds", ds, "--catch-up"], cfg)


def input_gate(cfg: Settings, ds: str) -> list[dict]:
    try:
        return quality.input_gate(cfg, ds)
    except quality.GateFailed as exc:
        raise NightFailed(str(exc)) from exc


def features(cfg: Settings, ds: str) -> None:
    spark_job("features", ["--ds", ds], cfg)


def feature_store(cfg: Settings, ds: str) -> None:
    """Register the feature views and load the night into the online store."""
    from sesame import feature_store as fs

    fs.apply(cfg)
    fs.materialize(ds, cfg)


def score(cfg: Settings, ds: str) -> None:
    spark_job("score", ["--ds", ds], cfg)


def staged_warehouse(cfg: Settings, run_id: str) -> Path:
    return cfg.staged_warehouse(run_id)


def dbt(
    cfg: Settings,
    warehouse: Path,
    command: list[str],
    ds: str,
    target_path: Path | None = None,
    more_vars: dict | None = None,
    allow_failure: bool = False,
    work: Path | None = None,
) -> None:
    """Run a dbt command on the project in dbt/ against the given warehouse file (sesame.dbt_runner.run_dbt; a
    failure is the night's: NightFailed). `allow_failure`: a non-zero exit is the caller's to read, as for source
    freshness, which exits 1 on a stale source. `work` is the private_dbt_work of a build whose artifacts the caller
    reads; without it the command gets one of its own."""
    dbt_runner.run_dbt(
        cfg,
        command,
        ds,
        warehouse=warehouse,
        target_path=target_path,
        more_vars=more_vars,
        allow_failure=allow_failure,
        work=work,
        failure=NightFailed,
    )


DBT_FEATURE_MODELS = "path:models/features"


def dbt_features(cfg: Settings, ds: str, run_id: str, nights: list[str] | None = None) -> list[str]:
    """The characteristics dbt owns (dbt/models/features, with their unit and data tests) for `nights` (default:
    the night ds), built in a scratch database and written as Parquet to lake/features/dbt_user_features, one
    folder per night, beside Spark's feature table. Returns the nights written."""
    nights = sorted(set(nights or [ds]))
    zone = cfg.zone("features", "dbt_user_features")
    for night in nights:  # the nights are replaced whole: no file of an earlier build survives beside the new one
        shutil.rmtree(ds_partition(zone, night), ignore_errors=True)
    scratch = cfg.dbt_scratch_database("features", durable.checked_run_id(run_id))
    scratch.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftover_builds(scratch.parent, "features")
    try:
        dbt(cfg, scratch, ["build", "--select", DBT_FEATURE_MODELS], ds, more_vars={"nights": nights})
    finally:
        _remove_database(scratch)
    missing = [night for night in nights if not any(ds_partition(zone, night).glob("*.parquet"))]
    if missing:
        raise NightFailed(
            f"rule features.dbt: dbt wrote no features for the nights {missing} under {zone}: "
            "no user in the KYC profile delivered in the 30 days up to them"
        )
    return nights


def warehouse(cfg: Settings, ds: str, run_id: str) -> Path:
    """Build the marts for the night (the dbt features were built before scoring, by dbt_features) and stage the
    analysts' copy of the warehouse: schema marts only.

    dbt builds in a private build database (a copy of the analysts' file, which holds the marts' earlier nights):
    seeds, staging (exact city, occupation, registration date, court cases) and intermediate models live there and
    nowhere else. The marts are then copied into a new file, so that not even the free pages of the file analysts
    open hold what staging read; the build database is removed whatever happens."""
    staged = staged_warehouse(cfg, run_id)
    staged.parent.mkdir(parents=True, exist_ok=True)
    build = cfg.dbt_scratch_database("warehouse", durable.checked_run_id(run_id))
    build.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftover_builds(build.parent, "warehouse")
    try:
        if cfg.warehouse_path.exists():
            shutil.copyfile(cfg.warehouse_path, build)
        with private_dbt_work(cfg) as work:
            dbt(cfg, build, ["build", "--exclude", DBT_FEATURE_MODELS], ds, work=work)
            _record_dbt_invocation(cfg, run_id, work)
            source_freshness(cfg, build, ds, work)
        export_marts(build, staged)
    finally:
        _remove_database(build)
    return staged


def _remove_database(path: Path) -> None:
    """A DuckDB file and its write-ahead log."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _remove_leftover_builds(folder: Path, kind: str) -> None:
    """Build databases of any run, this one's included: a run killed mid-build (its `finally` never ran) leaves its
    build behind, with the staging rows (exact city, court cases) the analysts' file must not hold. The stage holds
    the SESAME_HOME lock, so no other run is building."""
    for leftover in folder.glob(f"{kind}-*.duckdb*"):  # each database and its write-ahead log
        leftover.unlink(missing_ok=True)


def export_marts(build: Path, analysts: Path) -> None:
    """Copy schema marts of the build database, tables with their declared columns and constraints, into a new
    file `analysts` (replaced if it exists)."""
    _remove_database(analysts)
    con = duckdb.connect(str(analysts))
    try:
        con.execute("attach ? as build (read_only)", [str(build)])
        views = con.execute(
            "select view_name from duckdb_views() where database_name = 'build' and schema_name = 'marts'"
        ).fetchall()
        if views:  # a view would read schemas the analysts' file does not have
            raise NightFailed(
                f"rule warehouse.marts_only: marts {sorted(v for (v,) in views)} are views; "
                "every mart is a table (dbt_project.yml)"
            )
        tables = con.execute(
            "select table_name, sql from duckdb_tables() where database_name = 'build' "
            "and schema_name = 'marts' order by table_name"
        ).fetchall()
        con.execute("create schema marts")
        for name, ddl in tables:
            con.execute(ddl)  # CREATE TABLE marts.<name>(...): resolves in this file's catalog
            con.execute(f'insert into marts."{name}" select * from build.marts."{name}"')
        con.execute("detach build")
        con.execute("checkpoint")
    finally:
        con.close()


def source_freshness(cfg: Settings, build: Path, ds: str, work: Path) -> list[dict]:
    """dbt source freshness of the lake zones the warehouse reads, against the night (dbt/macros/freshness.sql),
    kept in lake/checks/ds=…/freshness.json for the night report. A stale zone is reported, not a reason to fail
    the night: ingestion already fails closed on a missing delivery. `work`: the build's private_dbt_work."""
    target = work / "target"  # the build's: dbt parses the project again only if it changed
    (target / "sources.json").unlink(missing_ok=True)
    dbt(cfg, build, ["source", "freshness"], ds, allow_failure=True, work=work)
    out = target / "sources.json"
    if not out.exists():
        kept = keep_failed_dbt_log(cfg, work, ds, "freshness")
        raise NightFailed(
            f"rule warehouse.freshness: dbt source freshness wrote no results for the night {ds}; see {kept}"
        )
    results = json.loads(out.read_text(encoding="utf-8"))["results"]
    # sources.json leaves out a source whose query failed (a zone without a partition): the manifest names them
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    checked = {r["unique_id"] for r in results}
    for unique_id, source in manifest["sources"].items():
        freshness = source.get("freshness") or {}
        if unique_id not in checked and any(
            (freshness.get(k) or {}).get("count") for k in ("warn_after", "error_after")
        ):
            results.append({"unique_id": unique_id, "status": "runtime error", "criteria": freshness})
    out.unlink()
    verdicts = [
        {
            "source": r["unique_id"].rsplit(".", 1)[-1],
            "status": r["status"],
            "latest": r.get("max_loaded_at"),
            "hours_behind": _hours(r.get("max_loaded_at_time_ago_in_s")),
            "warn_after_hours": _criteria_hours(r, "warn_after"),
            "error_after_hours": _criteria_hours(r, "error_after"),
        }
        for r in results
    ]
    verdicts.sort(key=lambda v: v["source"])
    folder = cfg.zone("checks", ds=ds)
    folder.mkdir(parents=True, exist_ok=True)
    durable.write_atomic(folder / "freshness.json", json.dumps({"ds": ds, "sources": verdicts}, indent=1))
    return verdicts


def _hours(seconds) -> float | None:
    return None if seconds is None else round(float(seconds) / 3600, 1)


def _criteria_hours(result: dict, level: str) -> float | None:
    rule = (result.get("criteria") or {}).get(level) or {}
    if not rule.get("count"):
        return None
    return float(rule["count"]) * {"minute": 1 / 60, "hour": 1, "day": 24}[rule["period"]]


def docs(cfg: Settings) -> Path:
    """dbt docs for analysts, from a copy of the live warehouse. Not compiled: compiled SQL would carry the
    user-key secret in clear."""
    target = cfg.dbt_docs
    copy = cfg.docs_warehouse
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cfg.warehouse_path, copy)
    try:
        dbt(cfg, copy, ["parse"], dt.date.today().isoformat(), target_path=target)
        dbt(cfg, copy, ["docs", "generate", "--no-compile"], dt.date.today().isoformat(), target_path=target)
    finally:
        copy.unlink(missing_ok=True)
    for leftover in ("partial_parse.msgpack", "semantic_manifest.json", "perf_info.json"):
        (target / leftover).unlink(missing_ok=True)  # build state, not docs (and it records env values)
    return target / "index.html"


# The column of marts.visa_rule_checks that says whether each condition of a rule held (contracts.VISA_CONDITIONS).
PASSES = {
    "min_score": "passes_min_score",
    "identity_verified": "passes_identity",
    "not_court_listed": "passes_court_list",
    "min_history_days": "passes_history",
    "min_qualifying_nights": "passes_qualifying_nights",
}


def _published_tables(cfg: Settings, ds: str, staged: Path) -> dict[str, pa.Table]:
    """The night's datasets for services (contracts/), read from the lake and the staged warehouse, keyed by
    upstream user_id and conformed to their contracts. DuckDB joins the warehouse's keys back to user ids and sorts:
    millions of visa rows a night at full size."""
    from sesame import contracts
    from sesame.privacy import user_keys_sql

    scores = pq.read_table(cfg.zone("scores", ds=ds))
    excluded = _lake_night(cfg, "exclusions", ds, ["user_id", "exclusion_code"])
    night = dt.date.fromisoformat(ds)
    con = duckdb.connect(str(staged), read_only=True)
    try:
        # user_key -> user_id for everyone a dataset names: tonight's scored and excluded users, and whoever left a
        # list (scored on the night compared with)
        people = [scores.select(["user_id"]), pa.Table.from_pandas(excluded[["user_id"]], preserve_index=False)]
        compared = con.execute(
            "select distinct previous_ds from marts.visa_eligibility_changes where ds = ? and previous_ds is not null",
            [ds],
        ).fetchall()
        for (previous,) in compared:
            people.append(
                pa.Table.from_pandas(_lake_night(cfg, "scores", str(previous), ["user_id"]), preserve_index=False)
            )
        con.register("people", pa.concat_tables([p.cast(pa.schema([("user_id", pa.string())])) for p in people]))
        keys = con.sql(user_keys_sql("(select distinct user_id from people)"), params={"secret": cfg.user_key_secret})
        con.register("user_keys", keys.to_arrow_table())
        con.unregister("people")
        con.register("night_scores", scores)

        def night_rows(sql: str) -> pa.Table:
            return con.sql(sql, params={"ds": night}).to_arrow_table()

        # at most 2**5 combinations of failed conditions; contracts.VISA_CONDITIONS' order
        failed = ", ".join(f"case when not {PASSES[c]} then '{c}' end" for c in contracts.VISA_CONDITIONS)
        tables = {
            "sesame_scores": night_rows(
                "select $ds as ds, s.*, m.tier from night_scores s left join ("
                "  select k.user_id, m.tier from marts.sesame_scores m join user_keys k using (user_key) "
                "  where m.ds = $ds) m using (user_id) order by s.user_id"
            ),
            "visa_eligibility": night_rows(
                "select $ds as ds, destination, k.user_id, score, rule_version from marts.visa_eligibility v "
                "left join user_keys k using (user_key) where v.ds = $ds order by destination, k.user_id"
            ),
            "visa_eligibility_changes": night_rows(
                "select $ds as ds, destination, k.user_id, change, previous_ds from marts.visa_eligibility_changes v "
                "left join user_keys k using (user_key) where v.ds = $ds order by destination, k.user_id"
            ),
            "visa_rule_checks": night_rows(
                "select $ds as ds, destination, k.user_id, rule_version, score, history_days, qualifying_nights, "
                f"is_eligible as eligible, list_filter([{failed}], lambda c: c is not null) as failed_conditions "
                "from marts.visa_rule_checks v left join user_keys k using (user_key) where v.ds = $ds "
                "order by destination, k.user_id"
            ),
            # the rules in force that night as dbt decided them (int_visa_rules_in_force, one funnel row per rule)
            "visa_rules": night_rows(
                "select $ds as ds, destination, rule_version, min_score, require_identity_verified, "
                "exclude_court_listed, min_history_days, min_qualifying_nights, valid_from, valid_to "
                "from marts.visa_rule_versions join marts.visa_funnel_daily using (destination, "
                "rule_version, min_score) where ds = $ds order by destination"
            ),
            "reason_code_dictionary": con.sql(
                "select reason_code, factor, feature, definition, description_en, description_zh "
                "from marts.reason_code_dictionary order by reason_code"
            ).to_arrow_table(),
        }
        codes = con.execute(
            "select exclusion_code, description_en, description_zh from marts.exclusion_code_dictionary"
        ).df()
    finally:
        con.close()
    excluded = excluded.merge(codes, on="exclusion_code", how="left")
    excluded.insert(0, "ds", night)
    identities = _identities(cfg, ds, scores.column("user_id"))
    tables["score_exclusions"] = pa.Table.from_pandas(excluded.sort_values("user_id"), preserve_index=False)
    tables["identities"] = pa.Table.from_pandas(identities.sort_values("user_id"), preserve_index=False)
    return {name: contracts.conform(table, contracts.load(name)) for name, table in tables.items()}


def _identities(cfg: Settings, ds: str, scored: pa.ChunkedArray) -> pd.DataFrame:
    """Who each scored user is, for credit reports to name: the registered name, the masked identity document and
    whether the identity was verified, from the KYC snapshot the night scored on (the latest of the month up to the
    night, as spark_jobs/features.py takes it). A snapshot delivered before the document column existed has none."""
    from sesame.identity import DOCUMENT_TYPE

    columns = ["user_id", "full_name", "identity_verified", "id_document_number"]
    first = days_before(ds, PROFILE_MAX_AGE_DAYS - 1)
    zone = cfg.zone("validated", "users")
    found, profile_ds = pd.DataFrame({c: pd.Series(dtype=object) for c in columns}), None
    for day in reversed(ds_partitions(zone, first, ds, holding="*.parquet")):
        profile = pq.read_table(cfg.zone("validated", "users", ds=day))
        if profile.num_rows:  # the latest snapshot with rows, as Spark's max(ds) over the rows finds it
            profile = profile.select([c for c in columns if c in profile.column_names])
            found = profile.filter(pc.is_in(profile.column("user_id"), value_set=scored.combine_chunks())).to_pandas()
            profile_ds = day
            break
    found = found.reindex(columns=columns)
    document = found["id_document_number"].astype(object).where(found["id_document_number"].notna(), None)
    return pd.DataFrame(
        {
            "ds": dt.date.fromisoformat(ds),
            "user_id": found["user_id"],
            "registered_name": found["full_name"],
            "id_document_type": document.notna().map({True: DOCUMENT_TYPE, False: None}),
            "id_document_masked": document,
            "identity_verified": found["identity_verified"].astype(int) == 1,
            "profile_ds": dt.date.fromisoformat(profile_ds) if profile_ds else None,
        }
    )


def _lake_night(cfg: Settings, zone: str, ds: str, columns: list[str]) -> pd.DataFrame:
    folder = cfg.zone(zone, ds=ds)
    if not any(folder.glob("*.parquet")):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pq.read_table(folder, columns=columns).to_pandas()


def provenance(cfg: Settings, ds: str, run_id: str, model_version: str) -> dict:
    """What the night's datasets were built from: every delivery its ingestion took (tonight's and the days it
    caught up, held ones included), each file with its sha256 from the delivery's control totals; the code; the
    model; the dbt invocation that built the warehouse."""
    from sesame.deliveries import BadMarker, read_marker

    deliveries = []
    accounting = quality.night_accounting(cfg, ds)
    for (day, source), rows in accounting.groupby(["ds", "source"]) if len(accounting) else []:
        folder = cfg.zone("raw", source, ds=day)
        try:
            marker = read_marker(folder) or {}
        except BadMarker:
            marker = {}
        totals = {f["path"]: f for f in marker.get("files", [])}
        for row in rows.to_dict("records"):
            name = Path(str(row["file"])).name
            deliveries.append(
                {
                    "source": source,
                    "ds": day,
                    "file": f"raw/{source}/ds={day}/{name}",
                    "sha256": totals.get(name, {}).get("sha256"),
                    "bytes": totals.get(name, {}).get("bytes"),
                    "records": int(row["delivered"]),
                    "held": int(row.get("held") or 0) > 0,
                }
            )
    invocation = dbt_invocation_path(cfg, run_id)
    return {
        "deliveries": deliveries,
        "code_version": code_version(),
        "model_version": model_version,
        "dbt": json.loads(invocation.read_text(encoding="utf-8")) if invocation.exists() else None,
    }


def code_version() -> dict:
    """The package version, and the git commit when running from a checkout (None elsewhere, e.g. an image)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("sesame")
    except PackageNotFoundError:
        package = None
    commit = None
    if (REPO_ROOT / ".git").exists():
        proc = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        commit = proc.stdout.strip() or None if proc.returncode == 0 else None
        if commit:
            dirty = subprocess.run(
                ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            commit += "-dirty" if dirty else ""
    return {"sesame": package, "git_commit": commit}


def dbt_invocation_path(cfg: Settings, run_id: str) -> Path:
    return cfg.dbt_invocation(durable.checked_run_id(run_id))


def _record_dbt_invocation(cfg: Settings, run_id: str, work: Path) -> None:
    """Keep the warehouse build's dbt invocation (id, version, command, results) for the manifests' provenance."""
    results = work / "target" / "run_results.json"
    data = json.loads(results.read_text(encoding="utf-8"))
    statuses: dict[str, int] = {}
    for r in data.get("results", []):
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    meta = data.get("metadata", {})
    args = data.get("args", {})
    durable.write_atomic(
        dbt_invocation_path(cfg, run_id),
        json.dumps(
            {
                "invocation_id": meta.get("invocation_id"),
                "dbt_version": meta.get("dbt_version"),
                "generated_at": meta.get("generated_at"),
                "command": args.get("which"),
                "exclude": args.get("exclude"),
                "vars": args.get("vars"),
                "elapsed_seconds": round(float(data.get("elapsed_time") or 0), 1),
                "results": statuses,
            },
            indent=1,
        ),
    )


def audited_dir(cfg: Settings, run_id: str) -> Path:
    """Where the audit leaves the datasets it verified, for publish to write out unchanged."""
    return cfg.audited_dir(run_id)


def drift(cfg: Settings, ds: str, scores: pa.Table) -> list[dict]:
    """PSI of tonight's scores and characteristics against the scoring model's development sample."""
    from sesame.drift import drift_checks
    from sesame.registry import Registry

    version = scores.column("model_version")[0].as_py()
    entry = Registry(cfg.models).get(version)
    profiles = entry.card.get("development_profile")
    if not profiles:
        return []
    model = entry.load()
    from sesame.features import night_feature_table

    scored = night_feature_table(cfg, ds, users=scores.column("user_id")).to_pandas()
    checks = []
    for segment in model.segments:
        tonight = scored[scored["segment"] == segment]
        if len(tonight):
            checks += drift_checks(
                model.models[segment],
                profiles[segment],
                tonight[model.inputs(segment)],
                accept=cfg.accept_drift,
                population=segment,
            )
    return checks


def audit(cfg: Settings, ds: str, run_id: str) -> list[dict]:
    """Checks on the staged outputs before anything is published."""
    from sesame.contracts import ContractError

    staged = staged_warehouse(cfg, run_id)
    try:
        tables = _published_tables(cfg, ds, staged)
    except ContractError as exc:
        raise NightFailed(f"rule contract.schema: {exc}; nothing published") from None
    checks = []
    con = duckdb.connect(str(staged), read_only=True)
    try:
        in_marts = con.execute("select count(*) from marts.sesame_scores where ds = ?", [ds]).fetchone()[0]
        bad_tier = con.execute(
            "select count(*) from marts.sesame_scores where ds = ? and tier is null", [ds]
        ).fetchone()[0]
    finally:
        con.close()
    scores = tables["sesame_scores"]
    checks.append(
        {
            "name": "rows.scores_match_marts",
            "rule": "rows.match",
            "passed": in_marts == scores.num_rows,
            "detail": f"marts.sesame_scores has {in_marts} rows for {ds}, lake scores {scores.num_rows}",
        }
    )
    checks.append(
        {
            "name": "marts.tier_present",
            "rule": "tier.not_null",
            "passed": bad_tier == 0,
            "detail": f"{bad_tier} scores without a tier",
        }
    )
    named = tables["identities"].num_rows
    checks.append(
        {
            "name": "identities.cover_scores",
            "rule": "rows.match",
            "passed": named == scores.num_rows,
            "detail": f"{named} of {scores.num_rows} scored users have an identity in the night's KYC "
            "snapshot (credit reports name the person they are about)",
        }
    )
    checks += drift(cfg, ds, scores)
    unmapped = sum(t.column("user_id").null_count for t in tables.values() if "user_id" in t.column_names)
    checks.append(
        {
            "name": "keys.resolve",
            "rule": "keys.resolve",
            "passed": unmapped == 0,
            "detail": f"{unmapped} warehouse keys that map to no scored user",
        }
    )
    quality.record_checks(cfg, ds, "audit", checks)
    failed = [c for c in checks if not c["passed"]]
    if failed:
        raise NightFailed("audit failed; nothing published: " + "; ".join(c["detail"] for c in failed))
    try:
        checks += quality.output_gate(cfg, ds, tables)
    except quality.GateFailed as exc:
        raise NightFailed(str(exc)) from exc
    folder = audited_dir(cfg, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return checks


def publish(cfg: Settings, ds: str, run_id: str) -> dict:
    """Snapshots first, then the warehouse swap, then NIGHT, the one step that publishes the night to every reader
    (each step atomic); a night killed before NIGHT moved is not published, and its re-run publishes it whole."""
    staged = staged_warehouse(cfg, run_id)
    audited = audited_dir(cfg, run_id)
    tables = {path.stem: pq.read_table(path) for path in sorted(audited.glob("*.parquet"))}
    versions = set(tables["sesame_scores"].column("model_version").to_pylist())
    model_version = ",".join(sorted(versions))  # the model that scored the night, whatever is champion now
    checks = [{"name": c["name"], "passed": c["passed"]} for c in quality.read_checks(cfg, ds)]
    origin = provenance(cfg, ds, run_id, model_version)
    written = {
        name: snapshots.write_snapshot(cfg.published, name, ds, run_id, table, model_version, checks, origin)
        for name, table in tables.items()
    }
    cfg.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    durable.replace(staged, cfg.warehouse_path)  # readers holding the old file keep it until they reconnect
    snapshots.publish_night(cfg.published, ds, run_id, written)
    for name in written:
        snapshots.apply_retention(cfg.published, name, cfg.retention_nights)
    # later nights read the scores that went out (the neighbours' score characteristic), never a failed night's
    (cfg.zone("scores", ds=ds) / snapshots.PUBLISHED_MARKER).write_text(run_id, encoding="utf-8")
    shutil.rmtree(audited, ignore_errors=True)
    dbt_invocation_path(cfg, run_id).unlink(missing_ok=True)
    return written


def report(cfg: Settings, ds: str, run_id: str) -> str | None:
    """The night's HTML report (sesame.report). A view of what was published, never a reason to fail it."""
    try:
        return str(write_report(cfg, ds, run_id))
    except Exception:
        logger.exception("the report of night %s (run %s) was not written", ds, run_id)
        return None


def task_defaults(cfg: Settings) -> dict:
    """Both DAGs' task defaults: transient failures are retried with a doubling delay (data errors fail at once,
    data_errors_fail_at_once), and a failed task leaves an alert."""
    return {
        "retries": cfg.task_retries,
        "retry_delay": dt.timedelta(seconds=cfg.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "on_failure_callback": alert_on_failure,
    }


def alert_on_failure(context: dict) -> Path:
    """Airflow failure callback: what failed, which rule, where the details are, appended to
    $SESAME_HOME/alerts/alerts.jsonl (the file an operator watches) and kept per night."""
    cfg = settings()
    ti = context.get("task_instance")
    error = context.get("exception")
    alert = {
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "dag": getattr(context.get("dag"), "dag_id", None) or getattr(ti, "dag_id", None),
        "ds": context.get("ds"),
        "run_id": context.get("run_id"),
        "task": getattr(ti, "task_id", None),
        "what_failed": str(error) if error else "task failed",
        "details": {
            "run_log": str(cfg.run_logs(str(context.get("ds")))),
            "checks": str(cfg.zone("checks", ds=str(context.get("ds")))),
            "data_docs": str(cfg.data_docs_index),
        },
        "next_step": "fix the named source, file or rule, then re-run `sesame night --ds "
        f"{context.get('ds')}`; nothing was published and LATEST is unchanged",
    }
    nightly = alert["dag"] == "sesame_nightly" and bool(context.get("ds"))
    if nightly:
        run_id = run_id_for(str(context.get("run_id") or ""), getattr(context.get("dag_run"), "conf", None))
        alert["details"]["report"] = str(cfg.report_page(str(context["ds"]), run_id))
    cfg.alerts_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.alerts_file, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(alert) + "\n")
    path = cfg.alert_file(alert["dag"], alert["ds"], alert["task"])
    path.write_text(json.dumps(alert, indent=1), encoding="utf-8")
    if nightly:
        try:  # the alert above is already out: a report that cannot be drawn must not hide it
            write_report(cfg, str(context["ds"]), run_id, alert)
        except Exception:
            logger.exception("the report of failed night %s was not written", context["ds"])
    return path


def summary(cfg: Settings, ds: str) -> dict:
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        scored, avg, p10, p50, p90 = con.execute(
            "select count(*), avg(score), quantile_cont(score, 0.1), median(score), quantile_cont(score, 0.9) "
            "from marts.sesame_scores where ds = ?",
            [ds],
        ).fetchone()
        tiers = dict(
            con.execute(
                "select tier, count(*) from marts.sesame_scores where ds = ? group by 1 order by 1", [ds]
            ).fetchall()
        )
        at_750, at_max, at_min = con.execute(
            "select avg((score >= 750)::int), avg((score >= 950)::int), avg((score <= 350)::int) "
            "from marts.sesame_scores where ds = ?",
            [ds],
        ).fetchone()
        segments = dict(
            con.execute(
                "select segment, count(*) from marts.sesame_scores where ds = ? group by 1 order by 1", [ds]
            ).fetchall()
        )
        first_reason = con.execute(
            "select reason_codes[1], count(*) from marts.sesame_scores "
            "where ds = ? and len(reason_codes) > 0 group by 1 order by 2 desc limit 1",
            [ds],
        ).fetchone()
        excluded = dict(
            con.execute(
                "select exclusion_code, count(*) from marts.score_exclusions where ds = ? group by 1", [ds]
            ).fetchall()
        )
        visa = dict(
            con.execute(
                "select destination, count(*) from marts.visa_eligibility where ds = ? group by 1 order by 1", [ds]
            ).fetchall()
        )
    finally:
        con.close()
    checks = quality.read_checks(cfg, ds)
    return {
        "ds": ds,
        "scored": scored,
        "excluded": excluded,
        "score_mean": avg,
        "score_p10": p10,
        "score_median": p50,
        "score_p90": p90,
        "tiers": tiers,
        "visa_eligible": visa,
        "share_750_or_more": at_750,
        "share_at_950": at_max,
        "share_at_350": at_min,
        "segments": segments,
        "top_first_reason": (first_reason[0], first_reason[1] / scored) if first_reason and scored else None,
        "checks_passed": sum(c["passed"] for c in checks),
        "checks_total": len(checks),
    }
