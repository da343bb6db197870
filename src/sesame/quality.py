"""Quality gates with Great Expectations: the suites under expectations/suites run on the night's validated
data and outputs; row accounting, the quarantine threshold and each source's volume against its trailing nights
are checked beside them. Data Docs HTML is written for every run under $SESAME_HOME/gx.

A gate returns a list of checks ({name, passed, detail}) and raises GateFailed, naming the source, the file
and the rule, when any fails.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from sesame.config import REPO_ROOT, Settings, ds_partitions

SUITES_DIR = REPO_ROOT / "expectations" / "suites"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


class GateFailed(RuntimeError):
    def __init__(self, failures: list[dict]):
        self.failures = failures
        shown = "; ".join(f["detail"] for f in failures[:10])
        more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
        super().__init__(f"quality gate failed, nothing will be published tonight: {shown}{more}")


def load_suite(name: str) -> dict:
    return json.loads((SUITES_DIR / f"{name}.json").read_text(encoding="utf-8"))


# Expectations that read the table's own columns (their names, order or count), or filter rows by a condition, are
# given every column of the frame; any other suite only the columns its expectations name (`checked_columns`).
WHOLE_FRAME_EXPECTATIONS = ("expect_table_column", "expect_column_to_exist")


def checked_columns(frame, spec: dict):
    """The columns of `frame` (a pandas or Arrow table) that the suite `spec` reads. GX fingerprints each frame it
    validates, and a column of lists (a score's reason codes) makes it pickle the whole frame: 43 s a night at
    1,000,000 users, for columns no expectation reads."""
    expectations = spec["expectations"]
    if any(e["type"].startswith(WHOLE_FRAME_EXPECTATIONS) or e["kwargs"].get("row_condition") for e in expectations):
        return frame
    named = []
    for e in expectations:
        kwargs = e["kwargs"]
        named += [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)]
        named += list(kwargs.get("column_list") or [])
    # a named column the frame lacks stays out, and GX reports it missing as before
    present = list(frame.column_names if isinstance(frame, pa.Table) else frame.columns)
    columns = [c for c in dict.fromkeys(named) if c in present] or present[:1]
    return frame.select(columns) if isinstance(frame, pa.Table) else frame[columns]


def as_pandas(frame) -> pd.DataFrame:
    """GX validates pandas frames: an Arrow table is converted once its suite's columns are picked (the audit's
    tables whole took 4.2 to 5.1 s at 1,000,000 users, most of it for the reason codes no expectation reads)."""
    return frame.to_pandas() if isinstance(frame, pa.Table) else frame


def widened(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its narrow numbers (int32 scores, float32 shares) as int64 and float64: GX's pandas range check
    is vectorized for those two dtypes only and calls Python once per value for any other (12.5 million calls, 10 s
    of the audit at 1,000,000 users). Values are unchanged; no suite checks a column's type."""
    narrow = {
        column: "int64" if pd.api.types.is_integer_dtype(dtype) else "float64"
        for column, dtype in frame.dtypes.items()
        if isinstance(dtype, np.dtype)
        and dtype.kind in "iuf"
        and dtype not in (np.dtype("int64"), np.dtype("float64"))
        and not (dtype.kind == "u" and dtype.itemsize == 8)
    }
    # the copy consolidates the converted columns into one block per dtype, which GX's own copies would otherwise
    # redo on every metric
    return frame.astype(narrow).copy() if narrow else frame


def _context(cfg: Settings):
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="file", project_root_dir=str(cfg.home))
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # progress bars are cosmetic
        pass
    return ctx


def run_suites(cfg: Settings, frames: dict[str, tuple[pd.DataFrame | pa.Table, str]], run_name: str) -> list[dict]:
    """Validate each (DataFrame, file description) against its suite; returns one check per expectation. The
    results are kept, and shown in Data Docs, as the run `run_name` (a gate and its night)."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    ctx = _context(cfg)
    try:
        source = ctx.data_sources.get("sesame_lake")
    except (KeyError, ValueError):
        source = ctx.data_sources.add_pandas("sesame_lake")
    definitions, where = [], {}
    for suite_name, (frame, location) in frames.items():
        spec = load_suite(suite_name)
        suite = ctx.suites.add_or_update(gx.ExpectationSuite(**spec))
        try:
            asset = source.get_asset(suite_name)
        except LookupError:
            asset = source.add_dataframe_asset(suite_name)
        try:
            batch = asset.get_batch_definition("night")
        except (KeyError, ValueError, LookupError):
            batch = asset.add_batch_definition_whole_dataframe("night")
        vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=suite_name, data=batch, suite=suite))
        definitions.append((vd, widened(as_pandas(checked_columns(frame, spec)))))
        where[suite_name] = location
    run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.timezone.utc))
    suites_checks = _validate_all(definitions, where, run_id, cfg.quality_processes)
    checks = [check for suite_checks in suites_checks for check in suite_checks]
    try:
        _update_data_docs(cfg, ctx, run_id)
    except Exception as exc:  # docs are a view of the results, never a reason to fail the night
        logging.warning("Data Docs not updated: %s", exc)
    return checks


def _update_data_docs(cfg: Settings, ctx, run_id) -> None:
    """Data Docs gain the pages of this run's results, and their index is rebuilt. Each suite keeps the results of
    its last SESAME_RETENTION_NIGHTS runs: older ones leave the store and the site, so that neither the docs nor
    the time to build them grow with the nights (rendering every kept result again took 3.7 s with 176 results,
    a dozen nights' worth, against 1.0 s for one run's and the index at 1,000,000 users)."""
    store = ctx.validation_results_store
    kept: dict[str, list] = {}
    for key in store.list_keys():
        kept.setdefault(key.expectation_suite_identifier.name, []).append(key)
    for keys in kept.values():
        keys.sort(key=lambda key: key.run_id.run_time)
        for old in keys[: -cfg.retention_nights]:
            store.remove_key(old)  # and GX removes its page from the site
    ours = [key for keys in kept.values() for key in keys if key.run_id.to_tuple() == run_id.to_tuple()]
    # the suites' own pages too: a new home has none yet, and a suite may have changed
    ctx.build_data_docs(resource_identifiers=ours + [key.expectation_suite_identifier for key in ours])


def _suite_checks(vd, frame: pd.DataFrame, where: dict[str, str], run_id) -> list[dict]:
    """Validate `frame` with the validation definition `vd` as the run `run_id`: one check per expectation."""
    result = vd.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY", run_id=run_id)
    checks = []
    for r in result.results:
        cfg_ = r.expectation_config
        column = cfg_.kwargs.get("column") or ",".join(cfg_.kwargs.get("column_list", []) or [])
        rule = (cfg_.meta or {}).get("rule", cfg_.type)
        unexpected = r.result.get("unexpected_count")
        checks.append(
            {
                "name": f"{vd.name}:{cfg_.type}:{column}",
                "suite": vd.name,
                "rule": rule,
                "passed": bool(r.success),
                "detail": (
                    f"source {vd.name.split('.', 1)[1]}, file {where[vd.name]}: rule {rule} "
                    f"({cfg_.type} on {column or 'table'})" + ("" if r.success else f" failed for {unexpected} records")
                ),
            }
        )
    return checks


# Below this many rows times expectations in all, the suites run one after another in the stage's process: a
# process costs more to start than so little validation takes.
SIDE_BY_SIDE_MIN_WORK = 1_000_000

# What the forked processes validate: set before they start, inherited rather than pickled (frames of millions of
# rows), cleared once they are done.
_FORKED: tuple | None = None


def _validate_all(definitions: list, where: dict[str, str], run_id, processes: int) -> list[list[dict]]:
    """Each (validation definition, frame)'s checks, in the order given. With `processes` > 1 and enough work, the
    suites run side by side in forked processes, the largest (rows times expectations) first so that the small ones
    fill in around it: GX validates a frame on one core, so on two cores the input gate's payments and the audit's
    visa rule checks each took the stage's whole length while the other core waited."""
    global _FORKED
    sizes = [len(frame) * len(vd.suite.expectations) for vd, frame in definitions]
    workers = min(processes, len(definitions))
    if workers <= 1 or sum(sizes) < SIDE_BY_SIDE_MIN_WORK:
        return [_suite_checks(vd, frame, where, run_id) for vd, frame in definitions]
    _FORKED = (definitions, where, run_id)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            largest_first = sorted(range(len(definitions)), key=lambda i: -sizes[i])
            running = {i: pool.submit(_forked_suite_checks, i) for i in largest_first}
            return [running[i].result() for i in range(len(definitions))]
    finally:
        _FORKED = None


def _forked_suite_checks(index: int) -> list[dict]:
    definitions, where, run_id = _FORKED
    vd, frame = definitions[index]
    return _suite_checks(vd, frame, where, run_id)


def data_docs_index(cfg: Settings) -> Path:
    return cfg.data_docs_index


def validated_frame(cfg: Settings, source: str, ds: str) -> pd.DataFrame:
    """The night's validated partition; a day with no accepted record has no partition and reads as empty."""
    from sesame.schemas import SOURCES

    folder = cfg.zone("validated", source, ds=ds)
    if folder.exists():
        frame = pd.read_parquet(folder)
    else:
        frame = pd.DataFrame({c: pd.Series(dtype="object") for c in [*SOURCES[source].column_names, "event_date"]})
    night = pd.Timestamp(ds)
    if "event_date" in frame:
        frame["event_lag_days"] = (night - pd.to_datetime(frame["event_date"])).dt.days
    return frame


def night_accounting(cfg: Settings, ds: str) -> pd.DataFrame:
    """The accounting of every delivery the night's ingestion took: tonight's, and earlier days it caught up
    (late deliveries, released holds, and the days re-ingested after them)."""
    frames = []
    for night in ds_partitions(cfg.zone("accounting")):
        frame = pd.read_parquet(cfg.zone("accounting", ds=night)).assign(ds=night)
        if night == ds:
            frames.append(frame)
        elif "ingested_on" in frame and (frame["ingested_on"] == ds).any():
            frames.append(frame[frame["ingested_on"] == ds])
    if not frames:
        return pd.DataFrame()
    acc = pd.concat(frames, ignore_index=True)
    # accounting written before holds existed has no held columns: nothing of it was held
    return acc.assign(
        held=acc["held"].fillna(0).astype("int64") if "held" in acc else 0,
        hold_reason=acc["hold_reason"].fillna("") if "hold_reason" in acc else "",
    )


def accounting_checks(cfg: Settings, ds: str) -> list[dict]:
    from sesame.holds import held

    acc = night_accounting(cfg, ds)
    checks = []
    for (day, source), hold in sorted(held(cfg).items()):
        if day < ds and not ((acc["ds"] == day) & (acc["source"] == source)).any():
            checks.append(
                {
                    "name": f"delivery.held:{source}:{day}",
                    "rule": "delivery.held",
                    "passed": True,
                    "warning": True,
                    "detail": f"source {source}, file {hold['file']}, day {day}: still held "
                    f"since {hold['held_at']} ({hold['reason']}); "
                    "`sesame deliveries release` once it is re-delivered",
                }
            )
    for row in acc.itertuples():
        held = int(row.held)
        balanced = row.delivered == row.accepted + row.quarantined + row.duplicates + held
        late = "" if row.ds == ds else f":{row.ds}"  # a day caught up tonight
        checks.append(
            {
                "name": f"accounting.balance:{row.source}{late}",
                "rule": "accounting.balance",
                "passed": bool(balanced),
                "detail": f"source {row.source}, file {row.file}: rule accounting.balance: delivered "
                f"{row.delivered} = accepted {row.accepted} + quarantined {row.quarantined} "
                f"+ duplicates {row.duplicates}" + (f" + held {held}" if held else ""),
            }
        )
        if row.hold_reason:
            checks.append(
                {
                    "name": f"delivery.held:{row.source}:{row.ds}",
                    "rule": "delivery.held",
                    "passed": True,
                    "warning": True,
                    "detail": f"source {row.source}, file {row.file}, day {row.ds}: "
                    f"{held} records set aside, not ingested: {row.hold_reason}",
                }
            )
        share = row.quarantined / row.delivered if row.delivered else 0.0
        checks.append(
            {
                "name": f"quarantine.share:{row.source}{late}",
                "rule": "quarantine.max_share",
                "passed": bool(share <= cfg.max_quarantine_share),
                "detail": f"source {row.source}, file {row.file}: rule quarantine.max_share: "
                f"{share:.2%} of records quarantined (limit {cfg.max_quarantine_share:.2%}, "
                f"SESAME_MAX_QUARANTINE_SHARE); see lake/quarantine/{row.source}/ds={row.ds}",
            }
        )
        if getattr(row, "added_columns", ""):
            checks.append(
                {
                    "name": f"schema.additive_drift:{row.source}{late}",
                    "rule": "schema.additive_drift",
                    "passed": True,
                    "warning": True,
                    "detail": f"source {row.source}, file {row.file}: added columns {row.added_columns} "
                    "ignored (additive drift is tolerated)",
                }
            )
    return checks


VOLUME_MIN_NIGHTS = 3  # fewer earlier nights than this and a median says little about an ordinary day


def _held(row) -> bool:
    reason = getattr(row, "hold_reason", None)
    return isinstance(reason, str) and bool(reason)


def volume_checks(cfg: Settings, ds: str) -> list[dict]:
    """Tonight's delivered records per source against the median of its last nights in lake/accounting. An upstream
    that loses part of a day sends control totals that agree with what it sent, so only the volume shows the loss:
    below SESAME_VOLUME_WARN_RATIO of the median a warning, below SESAME_VOLUME_FAIL_RATIO a failure. A source that
    cannot be tested (too few nights or records, or skipped) passes with `tested: False` and says why."""
    tonight = pd.read_parquet(cfg.zone("accounting", ds=ds))
    earlier = [night for night in ds_partitions(cfg.zone("accounting")) if night < ds]
    earlier = earlier[-cfg.volume_trailing_nights :] if cfg.volume_trailing_nights > 0 else []
    history: dict[str, list[int]] = {}
    for night in earlier:
        for row in pd.read_parquet(cfg.zone("accounting", ds=night)).itertuples():
            if not _held(row):  # a held delivery was set aside, not read: it says nothing of a day's volume
                history.setdefault(row.source, []).append(int(row.delivered))
    skipped = {s.strip() for s in cfg.volume_skip_sources.split(",") if s.strip()}
    checks = []
    for row in tonight.itertuples():
        delivered, trailing = int(row.delivered), history.get(row.source, [])
        check = {
            "name": f"volume.trailing:{row.source}",
            "rule": "volume.trailing",
            "passed": True,
            "warning": False,
            "tested": False,
            "delivered": delivered,
            "trailing_nights": len(trailing),
        }
        where = f"source {row.source}, file {row.file}: rule volume.trailing"
        median = float(np.median(trailing)) if trailing else None
        if _held(row):
            check["detail"] = f"{where} not tested: the delivery is held ({row.hold_reason})"
        elif row.source in skipped:
            check["detail"] = f"{where} not tested: {row.source} is in SESAME_VOLUME_SKIP_SOURCES"
        elif len(trailing) < VOLUME_MIN_NIGHTS:
            check["detail"] = (
                f"{where} not tested: {len(trailing)} earlier nights with row accounting, {VOLUME_MIN_NIGHTS} needed"
            )
        elif median < max(cfg.volume_min_records, 1):
            check["detail"] = (
                f"{where} not tested: the median of the last {len(trailing)} nights is {median:,g} "
                f"records, under SESAME_VOLUME_MIN_RECORDS ({cfg.volume_min_records:,}): too few to "
                "tell a lost part of a day from chance"
            )
        else:
            ratio = delivered / median
            failed, warned = ratio < cfg.volume_fail_ratio, ratio < cfg.volume_warn_ratio
            check.update(tested=True, passed=not failed, warning=warned, trailing_median=median, ratio=round(ratio, 4))
            check["detail"] = (
                f"{where}: {delivered:,} records delivered, {ratio:.2f} of the median {median:,g} of "
                f"the last {len(trailing)} nights"
            )
            if failed:
                check["detail"] += (
                    f" (fails below {cfg.volume_fail_ratio:g}, SESAME_VOLUME_FAIL_RATIO): part of the "
                    "day may be missing upstream. Ask the upstream team whether the day's extract is "
                    "complete and to re-deliver it, then re-run the night"
                )
            elif warned:
                check["detail"] += (
                    f" (warns below {cfg.volume_warn_ratio:g}, SESAME_VOLUME_WARN_RATIO): ask the "
                    "upstream team whether the day's extract is complete"
                )
            else:
                check["detail"] += f" (warns below {cfg.volume_warn_ratio:g})"
        checks.append(check)
    return checks


def input_gate(cfg: Settings, ds: str) -> list[dict]:
    """Gate on the night's validated inputs; raises GateFailed if any check fails."""
    from sesame.schemas import SOURCES

    checks = accounting_checks(cfg, ds)
    checks += volume_checks(cfg, ds)
    frames = {
        f"validated.{name}": (validated_frame(cfg, name, ds), f"lake/validated/{name}/ds={ds}") for name in SOURCES
    }
    checks += run_suites(cfg, frames, f"input-{ds}")
    return _finish(cfg, ds, "input", checks)


def output_gate(cfg: Settings, ds: str, outputs: dict[str, pa.Table | pd.DataFrame]) -> list[dict]:
    frames = {f"output.{name}": (frame, f"{name} for {ds}") for name, frame in outputs.items()}
    return _finish(cfg, ds, "output", run_suites(cfg, frames, f"output-{ds}"))


STAGES = ("input", "output", "audit")


def record_checks(cfg: Settings, ds: str, stage: str, checks: list[dict]) -> None:
    """Keep a stage's verdicts in lake/checks/ds=…/<stage>.json (the manifest and the summary read them)."""
    out = cfg.zone("checks", ds=ds) / f"{stage}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"ds": ds, "stage": stage, "checked_at": dt.datetime.now(dt.timezone.utc).isoformat(), "checks": checks},
            indent=1,
        ),
        encoding="utf-8",
    )


def read_checks(cfg: Settings, ds: str) -> list[dict]:
    """Every verdict recorded for the night, stage by stage."""
    checks = []
    for stage in STAGES:
        path = cfg.zone("checks", ds=ds) / f"{stage}.json"
        if path.exists():
            checks += json.loads(path.read_text(encoding="utf-8"))["checks"]
    return checks


def _finish(cfg: Settings, ds: str, stage: str, checks: list[dict]) -> list[dict]:
    record_checks(cfg, ds, stage, checks)
    failures = [c for c in checks if not c["passed"]]
    if failures:
        raise GateFailed(failures)
    return checks
