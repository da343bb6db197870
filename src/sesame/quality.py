"""Quality gates with Great Expectations: the suites under expectations/suites run on the night's validated
data and outputs; row accounting and the quarantine threshold are checked beside them. Data Docs HTML is
written for every run under $SESAME_HOME/gx.

A gate returns a list of checks ({name, passed, detail}) and raises GateFailed, naming the source, the file
and the rule, when any fails.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import pandas as pd

from sesame.config import REPO_ROOT, Settings

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


def run_suites(cfg: Settings, frames: dict[str, tuple[pd.DataFrame, str]]) -> list[dict]:
    """Validate each (DataFrame, file description) against its suite; returns one check per expectation."""
    import great_expectations as gx

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
        definitions.append((vd, frame))
        where[suite_name] = location
    checks = []
    for vd, frame in definitions:
        result = vd.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
        for r in result.results:
            cfg_ = r.expectation_config
            column = cfg_.kwargs.get("column") or ",".join(cfg_.kwargs.get("column_list", []) or [])
            rule = (cfg_.meta or {}).get("rule", cfg_.type)
            unexpected = r.result.get("unexpected_count")
            checks.append({
                "name": f"{vd.name}:{cfg_.type}:{column}", "suite": vd.name, "rule": rule, "passed": bool(r.success),
                "detail": (f"source {vd.name.split('.', 1)[1]}, file {where[vd.name]}: rule {rule} "
                           f"({cfg_.type} on {column or 'table'})"
                           + ("" if r.success else f" failed for {unexpected} records")),
            })
    try:
        ctx.build_data_docs()
    except Exception as exc:  # docs are a view of the results, never a reason to fail the night
        logging.warning("Data Docs not built: %s", exc)
    return checks


def data_docs_index(cfg: Settings) -> Path:
    return cfg.home / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


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


def accounting_checks(cfg: Settings, ds: str) -> list[dict]:
    folder = cfg.lake / "accounting" / f"ds={ds}"
    acc = pd.read_parquet(folder)
    checks = []
    for row in acc.itertuples():
        balanced = row.delivered == row.accepted + row.quarantined + row.duplicates
        checks.append({"name": f"accounting.balance:{row.source}", "rule": "accounting.balance", "passed": bool(balanced),
                       "detail": f"source {row.source}, file {row.file}: rule accounting.balance: delivered "
                                 f"{row.delivered} = accepted {row.accepted} + quarantined {row.quarantined} "
                                 f"+ duplicates {row.duplicates}"})
        share = row.quarantined / row.delivered if row.delivered else 0.0
        checks.append({"name": f"quarantine.share:{row.source}", "rule": "quarantine.max_share",
                       "passed": bool(share <= cfg.max_quarantine_share),
                       "detail": f"source {row.source}, file {row.file}: rule quarantine.max_share: "
                                 f"{share:.2%} of records quarantined (limit {cfg.max_quarantine_share:.2%}, "
                                 f"SESAME_MAX_QUARANTINE_SHARE); see lake/quarantine/{row.source}/ds={ds}"})
        if getattr(row, "added_columns", ""):
            checks.append({"name": f"schema.additive_drift:{row.source}", "rule": "schema.additive_drift",
                           "passed": True, "warning": True,
                           "detail": f"source {row.source}, file {row.file}: added columns {row.added_columns} "
                                     "ignored (additive drift is tolerated)"})
    return checks


def input_gate(cfg: Settings, ds: str) -> list[dict]:
    """Gate on the night's validated inputs; raises GateFailed if any check fails."""
    from sesame.schemas import SOURCES

    checks = accounting_checks(cfg, ds)
    frames = {f"validated.{name}": (validated_frame(cfg, name, ds), f"lake/validated/{name}/ds={ds}")
              for name in SOURCES}
    checks += run_suites(cfg, frames)
    return _finish(cfg, ds, "input", checks)


def output_gate(cfg: Settings, ds: str, outputs: dict[str, pd.DataFrame]) -> list[dict]:
    frames = {f"output.{name}": (frame, f"{name} for {ds}") for name, frame in outputs.items()}
    return _finish(cfg, ds, "output", run_suites(cfg, frames))


STAGES = ("input", "output", "audit")


def record_checks(cfg: Settings, ds: str, stage: str, checks: list[dict]) -> None:
    """Keep a stage's verdicts in lake/checks/ds=…/<stage>.json (the manifest and the summary read them)."""
    out = cfg.zone("checks", ds=ds) / f"{stage}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"ds": ds, "stage": stage, "checked_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                               "checks": checks}, indent=1), encoding="utf-8")


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
