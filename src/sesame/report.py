"""The night, seen: one self-contained HTML page per run of sesame_nightly, for analysts and operators.

    $SESAME_HOME/reports/<ds>/<run_id>.html   this run of the night
    $SESAME_HOME/reports/<ds>/index.html      the latest run of the night (a copy)
    $SESAME_HOME/reports/index.html           every night with a report, newest first

Charts are drawn with matplotlib into inline SVG and the page carries its own CSS and no script, so it opens
from a file, offline, in any browser. Links to the Data Docs, the model card and the run log are relative
paths inside $SESAME_HOME.

A failed night gets a report too (from the DAG's failure callback): what failed, which rule, where the details
are, and every section the stages that did run can fill. Each section is collected on its own, so a piece
that is missing leaves a note in its place instead of stopping the report.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sesame import FACTORS
from sesame.config import NIGHTLY_STAGES, Settings
from sesame.durable import write_atomic
from sesame.scale import OUTER_EDGES, SCORE_MAX, SCORE_MIN, TIERS, tier_of

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The stages of sesame_nightly in order (the task ids of dags/sesame_nightly.py).
STAGE_ORDER = NIGHTLY_STAGES
FACTOR_COLUMNS = [f"{f}_score" for f in FACTORS]
SAMPLE_KEYS = 10  # user keys listed per destination and change; the full lists are in the warehouse

TONIGHT, PREVIOUS = "#1f6fb2", "#b0b7bf"
OK, FAILED, WARNING = "#2e7d32", "#c62828", "#ef8f00"


def report_path(cfg: Settings, ds: str, run_id: str) -> Path:
    return cfg.report_page(ds, run_id)


# ------------------------------------------------------------------ pure builders (small frames in, rows out)


def score_stats(scores: pd.Series) -> dict:
    s = pd.Series(scores, dtype=float).dropna()
    if s.empty:
        return {"users": 0, "mean": None, "p10": None, "median": None, "p90": None, "share_750": None}
    return {
        "users": int(len(s)),
        "mean": float(s.mean()),
        "p10": float(s.quantile(0.1)),
        "median": float(s.median()),
        "p90": float(s.quantile(0.9)),
        "share_750": float((s >= 750).mean()),
    }


def score_psi(tonight: pd.Series, previous: pd.Series) -> float | None:
    """PSI of tonight's scores against the previous night's, over the previous night's score deciles."""
    from sesame.drift import _psi_shares, _score_shares

    if len(tonight) == 0 or len(previous) == 0:
        return None
    edges = np.unique(np.quantile(np.asarray(previous, dtype=float), np.linspace(0, 1, 11)))
    edges[0], edges[-1] = OUTER_EDGES
    return _psi_shares(_score_shares(previous, edges), _score_shares(tonight, edges))


def tier_rows(tonight: pd.Series, previous: pd.Series | None) -> list[dict]:
    """Users per tier tonight and the previous night, in tier order."""
    now = pd.Series(tonight).value_counts()
    before = pd.Series(previous).value_counts() if previous is not None else pd.Series(dtype=int)
    total_now, total_before = max(int(now.sum()), 1), max(int(before.sum()), 1)
    rows = []
    for name, low, high in TIERS:
        n, p = int(now.get(name, 0)), int(before.get(name, 0))
        rows.append(
            {
                "tier": name,
                "range": f"{low}-{high}",
                "users": n,
                "share": n / total_now,
                "previous_users": p if previous is not None else None,
                "previous_share": p / total_before if previous is not None else None,
            }
        )
    return rows


def visa_rows(eligible: pd.DataFrame, changes: pd.DataFrame, sample: int = SAMPLE_KEYS) -> list[dict]:
    """Per destination: eligible users tonight, additions and removals against the previous night (with a sample
    of the user keys), the lowest eligible score and the rule version."""
    rows = []
    destinations = sorted(set(eligible["destination"]) | set(changes["destination"]))
    for dest in destinations:
        here = eligible[eligible["destination"] == dest]
        moved = changes[changes["destination"] == dest]
        added = sorted(moved.loc[moved["change"] == "added", "user_key"].astype(str))
        removed = sorted(moved.loc[moved["change"] == "removed", "user_key"].astype(str))
        rows.append(
            {
                "destination": dest,
                "eligible": int(len(here)),
                "previous_eligible": int(len(here)) - len(added) + len(removed),
                "added": len(added),
                "removed": len(removed),
                "added_sample": added[:sample],
                "removed_sample": removed[:sample],
                "min_score": int(here["score"].min()) if len(here) else None,
                "rule_version": ", ".join(sorted(set(here["rule_version"].astype(str)))) if len(here) else "",
            }
        )
    return rows


def source_of_check(check: dict) -> str:
    """The source (or output) a check is about: 'orders', 'output sesame_scores', or 'audit'."""
    suite = check.get("suite") or ""
    if suite.startswith("validated."):
        return suite.split(".", 1)[1]
    if suite.startswith("output."):
        return "output " + suite.split(".", 1)[1]
    name = check.get("name", "")
    prefix, _, subject = name.partition(":")
    if prefix in ("accounting.balance", "quarantine.share", "schema.additive_drift", "volume.trailing") and subject:
        return subject
    return "audit"


def checks_by_source(checks: list[dict]) -> list[dict]:
    """Verdicts grouped per source, in first-seen order, failures spelled out."""
    groups: dict[str, dict] = {}
    for c in checks:
        g = groups.setdefault(
            source_of_check(c),
            {
                "source": source_of_check(c),
                "passed": 0,
                "failed": 0,
                "warnings": 0,
                "failures": [],
                "warning_details": [],
            },
        )
        if c.get("passed"):
            g["passed"] += 1
        else:
            g["failed"] += 1
            g["failures"].append({"rule": c.get("rule", c.get("name")), "detail": c.get("detail", "")})
        if c.get("warning"):
            g["warnings"] += 1
            g["warning_details"].append(c.get("detail", ""))
    return list(groups.values())


def accounting_rows(acc: pd.DataFrame) -> list[dict]:
    """One row per delivery the night took (tonight's, then earlier days it caught up), held ones included."""
    rows = []
    order = ["ds", "source"] if "ds" in acc else ["source"]
    for r in acc.sort_values(order, ascending=[False, True][: len(order)]).itertuples():
        held = int(r.held)
        rows.append(
            {
                "ds": str(getattr(r, "ds", "")),
                "source": r.source,
                "file": r.file,
                "delivered": int(r.delivered),
                "accepted": int(r.accepted),
                "quarantined": int(r.quarantined),
                "duplicates": int(r.duplicates),
                "held": held,
                "hold_reason": r.hold_reason,
                "quarantine_share": r.quarantined / r.delivered if r.delivered else 0.0,
                "balanced": bool(r.delivered == r.accepted + r.quarantined + r.duplicates + held),
                "added_columns": getattr(r, "added_columns", "") or "",
            }
        )
    return rows


def stage_rows(run_log: dict | None, failed_task: str | None = None) -> list[dict]:
    """Every stage of the night in DAG order: ok, failed or not run, with its wall time. A stage named by the
    alert counts as failed even when it failed before it could write to the run log."""
    seen = {}
    for entry in (run_log or {}).get("stages", []):
        seen[entry["stage"]] = entry  # a stage retried in the same run: the last attempt counts
    rows = []
    for name in STAGE_ORDER:
        entry = seen.pop(name, None)
        if entry:
            rows.append(
                {
                    "stage": name,
                    "status": entry["status"],
                    "seconds": None if entry["seconds"] is None else float(entry["seconds"]),
                    "finished_at": entry.get("finished_at", ""),
                }
            )
        elif name == failed_task:
            rows.append({"stage": name, "status": "failed", "seconds": None, "finished_at": ""})
        elif name != "report":
            rows.append({"stage": name, "status": "not run", "seconds": None, "finished_at": ""})
    for name, entry in seen.items():  # stages this module does not know yet
        rows.append(
            {
                "stage": name,
                "status": entry["status"],
                "seconds": None if entry["seconds"] is None else float(entry["seconds"]),
                "finished_at": entry.get("finished_at", ""),
            }
        )
    return rows


def rules_named(message: str) -> list[str]:
    """The rule ids a failure message names ('rule delivery.complete: ...')."""
    return list(dict.fromkeys(re.findall(r"rule ([a-z_]+(?:\.[a-z_0-9]+)+)", message or "")))


def fairness_rows(card: dict) -> list[dict]:
    rows = []
    for attribute, f in card.get("fairness", {}).items():
        for a in f.get("approval", []):
            rows.append(
                {
                    "attribute": attribute,
                    "threshold": a["threshold"],
                    "rates": a["rates"],
                    "ratio": a["ratio"],
                    "verdict": a.get("verdict"),
                    "auc_by_group": f.get("auc_by_group", {}),
                    "group_sizes": f.get("group_sizes", {}),
                }
            )
    return rows


# ------------------------------------------------------------------ charts (inline SVG)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=96, layout="constrained")
    return fig


def svg(fig, name: str) -> str:
    """The figure as an inline <svg> element. Text stays text; every id is prefixed with the chart's name, since
    matplotlib numbers them per figure (figure_1, patch_1, clip paths) and several charts share one page."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    element = text[text.index("<svg") :]
    ids = set(re.findall(r'\sid="([^"]+)"', element))
    prefix = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    element = re.sub(
        r'(\sid="|url\(#|href="#)([^")]+)',
        lambda m: f"{m.group(1)}{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(0),
        element,
    )
    # shrink with a narrow window, never grow past the size it was drawn at (fonts stay the same size)
    element = re.sub(
        r'<svg([^>]*?) width="([0-9.]+)pt" height="[^"]+"', r'<svg\1 style="max-width: \2pt"', element, count=1
    )
    return element.replace("<svg", f'<svg class="chart" role="img" aria-label="{html.escape(name)}"', 1)


def plot_score_distribution(tonight: pd.Series, previous: pd.Series | None, ds: str, previous_ds: str | None) -> str:
    fig = _figure(8, 3.2)
    ax = fig.add_subplot()
    bins = np.arange(SCORE_MIN, SCORE_MAX + 1, 20)
    ax.hist(
        np.asarray(tonight, dtype=float),
        bins=bins,
        density=True,
        color=TONIGHT,
        alpha=0.75,
        label=f"{ds} ({len(tonight):,} users)",
    )
    if previous is not None and len(previous):
        ax.hist(
            np.asarray(previous, dtype=float),
            bins=bins,
            density=True,
            histtype="step",
            linewidth=2,
            color="#444",
            label=f"{previous_ds} ({len(previous):,} users)",
        )
    for _, low, _ in TIERS[1:]:
        ax.axvline(low, color="#999", linewidth=0.6, linestyle=":")
    ax.set_xlim(SCORE_MIN, SCORE_MAX)
    ax.set_xlabel("score")
    ax.set_ylabel("share of users per point")
    ax.legend(loc="upper left", frameon=False)
    return svg(fig, "score distribution")


def plot_factors(frame: pd.DataFrame, previous: pd.DataFrame | None = None) -> str:
    fig = _figure(10, 2.4)
    axes = fig.subplots(1, len(FACTOR_COLUMNS), sharey=True)
    bins = np.arange(0, 101, 5)
    for ax, column in zip(axes, FACTOR_COLUMNS):
        ax.hist(frame[column].dropna().astype(float), bins=bins, density=True, color=TONIGHT, alpha=0.75)
        if previous is not None and column in previous and len(previous):
            ax.hist(
                previous[column].dropna().astype(float),
                bins=bins,
                density=True,
                histtype="step",
                color="#444",
                linewidth=1.5,
            )
        ax.set_title(column.removesuffix("_score").replace("_", " "), fontsize=9)
        ax.set_xlim(0, 100)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("share per point", fontsize=8)
    return svg(fig, "factor sub-scores")


def plot_tiers(rows: list[dict]) -> str:
    fig = _figure(6, 2.8)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    has_previous = rows and rows[0]["previous_share"] is not None
    width = 0.4 if has_previous else 0.6
    ax.bar(
        x - (width / 2 if has_previous else 0), [r["share"] * 100 for r in rows], width, color=TONIGHT, label="tonight"
    )
    if has_previous:
        ax.bar(x + width / 2, [r["previous_share"] * 100 for r in rows], width, color=PREVIOUS, label="previous night")
        ax.legend(frameon=False)
    ax.set_xticks(x, [r["tier"].replace("_", " ") for r in rows])
    ax.set_ylabel("% of scored users")
    return svg(fig, "tiers")


def plot_visa(rows: list[dict]) -> str:
    fig = _figure(7.5, 0.8 + 0.9 * max(len(rows), 1))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    for offset, key, color, label in (
        (-0.3, "previous_eligible", PREVIOUS, "eligible the previous night"),
        (-0.1, "eligible", TONIGHT, "eligible tonight"),
        (0.1, "added", OK, "added"),
        (0.3, "removed", FAILED, "removed"),
    ):
        ax.barh(y + offset, [r[key] for r in rows], 0.2, color=color, label=label)
    ax.set_yticks(y, [r["destination"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("users")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return svg(fig, "visa eligibility")


def plot_stages(rows: list[dict]) -> str:
    timed = [r for r in rows if r["seconds"] is not None]
    fig = _figure(7, 0.5 + 0.3 * max(len(timed), 1))
    ax = fig.add_subplot()
    colors = [{"ok": TONIGHT, "failed": FAILED}.get(r["status"], PREVIOUS) for r in timed]
    y = np.arange(len(timed))
    ax.barh(y, [r["seconds"] for r in timed], color=colors)
    ax.set_yticks(y, [r["stage"] for r in timed])
    ax.invert_yaxis()
    ax.set_xlim(left=0)
    ax.set_xlabel("seconds")
    return svg(fig, "stage timings")


def plot_calibration(bands: list[dict], name: str) -> str:
    """Observed bad rate per score band with its 95% Wilson interval, against the bad rate the scores claim: the
    two should meet wherever a band has enough people to say."""
    fig = _figure(7, 3)
    ax = fig.add_subplot()
    mid = np.array([(b["band_low"] + b["band_high"]) / 2 for b in bands], dtype=float)
    observed = np.array([b["observed_bad_rate"] for b in bands], dtype=float) * 100
    low = np.array([b["observed_low"] for b in bands], dtype=float) * 100
    high = np.array([b["observed_high"] for b in bands], dtype=float) * 100
    claimed = np.array([b["claimed_bad_rate"] for b in bands], dtype=float) * 100
    ax.errorbar(
        mid,
        observed,
        yerr=[observed - low, high - observed],
        fmt="o",
        color=TONIGHT,
        capsize=3,
        label="observed (95% Wilson interval)",
    )
    ax.plot(mid, claimed, color="#444", marker="_", linewidth=1.5, label="claimed by the score's odds")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlim(SCORE_MIN, SCORE_MAX)
    ax.set_xlabel("score band")
    ax.set_ylabel("bad rate, %")
    ax.legend(frameon=False, fontsize=8)
    return svg(fig, f"calibration {name}")


def plot_fairness(rows: list[dict]) -> str:
    fig = _figure(8, 2.6)
    attributes = list(dict.fromkeys(r["attribute"] for r in rows))
    axes = np.atleast_1d(fig.subplots(1, max(len(attributes), 1), sharey=True))
    for ax, attribute in zip(axes, attributes):
        mine = [r for r in rows if r["attribute"] == attribute]
        groups = list(dict.fromkeys(g for r in mine for g in r["rates"]))
        x = np.arange(len(groups))
        width = 0.8 / max(len(mine), 1)
        for i, r in enumerate(mine):
            ax.bar(
                x + (i - (len(mine) - 1) / 2) * width,
                [r["rates"].get(g, 0) * 100 for g in groups],
                width,
                label=f"score ≥ {r['threshold']}",
            )
        ax.set_xticks(x, groups, fontsize=8)
        ax.set_title(attribute.replace("_", " "), fontsize=9)
    axes[0].set_ylabel("% approved")
    axes[-1].legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return svg(fig, "fairness")


# ------------------------------------------------------------------ collecting one run's facts


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_log(cfg: Settings, ds: str, run_id: str) -> dict | None:
    return _read_json(cfg.run_log(ds, run_id))


def latest_run_id(cfg: Settings, ds: str) -> str | None:
    """The run of the night that ran last (by its run log)."""
    logs = sorted(cfg.run_logs(ds).glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    return logs[-1].stem if logs else None


def find_alert(cfg: Settings, ds: str, task: str | None, since: str | None) -> dict | None:
    """The newest sesame_nightly alert for the night (and the failed task, when known) raised during this run."""
    path = cfg.alerts_file
    if not path.exists():
        return None
    found = None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            alert = json.loads(line)
        except ValueError:
            continue
        if alert.get("dag") != "sesame_nightly" or alert.get("ds") != ds:
            continue
        if task and alert.get("task") != task:
            continue
        if since and str(alert.get("at", "")) < since:
            continue
        found = alert
    return found


def _run_started(log_: dict | None) -> str | None:
    stages = (log_ or {}).get("stages", [])
    if not stages:
        return None
    first = stages[0]
    finished = dt.datetime.fromisoformat(first["finished_at"])
    return (finished - dt.timedelta(seconds=float(first["seconds"]))).isoformat(timespec="seconds")


def _stage_checks(cfg: Settings, ds: str, stage: str) -> list[dict]:
    data = _read_json(cfg.zone("checks", ds=ds) / f"{stage}.json")
    return data["checks"] if data else []


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


class _Warehouse:
    """Read-only queries on a DuckDB file, or nothing when it is absent."""

    def __init__(self, path: Path):
        self.path = path

    def query(self, sql: str, params: list) -> pd.DataFrame:
        import duckdb

        con = duckdb.connect(str(self.path), read_only=True)
        try:
            return con.execute(sql, params).df()
        finally:
            con.close()


def _section(name: str, build, notes: dict):
    try:
        return build()
    except Exception as exc:  # one missing piece must not cost the operator the rest of the report
        log.warning("report section %s not available: %s", name, exc)
        notes[name] = f"{type(exc).__name__}: {exc}"
        return None


def collect(cfg: Settings, ds: str, run_id: str, alert: dict | None = None) -> dict:
    """Everything the page shows for one run of the night."""
    from sesame import quality, snapshots

    here = cfg.reports / ds
    log_ = run_log(cfg, ds, run_id)
    done = {e["stage"] for e in (log_ or {}).get("stages", []) if e["status"] == "ok"}
    ran = {e["stage"] for e in (log_ or {}).get("stages", [])}
    manifest_path = snapshots.snapshot_folder(cfg.published, "sesame_scores", ds, run_id) / "_manifest.json"
    published = snapshots.is_published(cfg.published, ds, run_id)  # NIGHT recorded this run
    failed_stage = next((e["stage"] for e in (log_ or {}).get("stages", []) if e["status"] == "failed"), None)
    if alert is None and not published:
        alert = find_alert(cfg, ds, failed_stage, _run_started(log_))
    failed = bool(alert) or failed_stage is not None
    status = "published" if published else ("failed" if failed else "not published")
    notes: dict[str, str] = {}
    facts: dict = {
        "ds": ds,
        "run_id": run_id,
        "status": status,
        "notes": notes,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        # None: the stages that fill it did not run (an empty list is a real, empty result)
        "failure": None,
        "scores": None,
        "tiers": None,
        "tiers_chart": None,
        "excluded": None,
        "drift": None,
        "visa": None,
        "visa_chart": None,
        "accounting": None,
    }

    # Where tonight's tables are: the live warehouse once published; before that, this run's staged copy.
    staged = cfg.staged_warehouse(run_id)
    tonight_db = _Warehouse(cfg.warehouse_path) if published else (_Warehouse(staged) if staged.exists() else None)
    live = _Warehouse(cfg.warehouse_path) if cfg.warehouse_path.exists() else None

    # --- failure
    if failed:
        message = (alert or {}).get("what_failed") or f"stage {failed_stage} failed; see the run log"
        failed_checks = [
            c
            for stage in quality.STAGES
            if stage_ran(stage, ran)
            for c in _stage_checks(cfg, ds, stage)
            if not c.get("passed")
        ]
        # the run log and this report are linked already; the rest of the alert's pointers as they are
        details = {k: v for k, v in ((alert or {}).get("details") or {}).items() if k not in ("run_log", "report")}
        facts["failure"] = {
            "task": (alert or {}).get("task") or failed_stage,
            "what_failed": message,
            "rules": rules_named(message) or sorted({c.get("rule", "") for c in failed_checks} - {""}),
            "failed_checks": failed_checks[:50],
            "details": details,
            "next_step": (alert or {}).get("next_step", ""),
            "at": (alert or {}).get("at", ""),
            "alerts_file": _relative(cfg.alerts_file, here),
        }

    # --- stages
    facts["stages"] = stage_rows(log_, (alert or {}).get("task"))
    facts["stages_total_seconds"] = sum(r["seconds"] or 0 for r in facts["stages"])
    facts["stages_chart"] = (
        _section("stage timings", lambda: plot_stages(facts["stages"]), notes)
        if facts["stages_total_seconds"] > 0
        else None
    )
    facts["run_log"] = _relative(cfg.run_log(ds, run_id), here)

    # --- scores, factors, tiers
    scores = None
    if "score" in done:
        scores = _section("scores", lambda: _tonight_scores(cfg, ds, tonight_db), notes)
    previous_ds, previous = None, None
    if live is not None:
        found = _section("previous night", lambda: _previous_scores(live, ds), notes)
        if found:
            previous_ds, previous = found
    if scores is not None:
        prev_scores = previous["score"] if previous is not None else None
        psi = score_psi(scores["score"], prev_scores) if prev_scores is not None else None
        facts["scores"] = {
            "stats": score_stats(scores["score"]),
            "previous_stats": score_stats(prev_scores) if prev_scores is not None else None,
            "previous_ds": previous_ds,
            "psi": psi,
            "psi_band": _psi_band(psi),
            "model_version": ", ".join(sorted(set(scores["model_version"].astype(str)))),
            "chart": _section(
                "score chart", lambda: plot_score_distribution(scores["score"], prev_scores, ds, previous_ds), notes
            ),
            "factors_chart": _section("factor chart", lambda: plot_factors(scores, previous), notes),
            "factors": [{"factor": c.removesuffix("_score"), **score_stats(scores[c])} for c in FACTOR_COLUMNS],
        }
        facts["tiers"] = tier_rows(scores["tier"], previous["tier"] if previous is not None else None)
        facts["tiers_chart"] = _section("tier chart", lambda: plot_tiers(facts["tiers"]), notes)
    facts["excluded"] = (
        _section("exclusions", lambda: _exclusions(tonight_db, ds), notes)
        if tonight_db is not None and "warehouse" in done
        else None
    )

    # --- drift against the development sample (the audit's verdicts)
    if "audit" in ran:
        facts["drift"] = [c for c in _stage_checks(cfg, ds, "audit") if c.get("rule") == "drift.psi"]

    # --- visa lists
    if tonight_db is not None and "warehouse" in done:
        visa = _section("visa lists", lambda: _visa(tonight_db, ds), notes)
        if visa is not None:
            facts["visa"] = visa
            facts["visa_chart"] = _section("visa chart", lambda: plot_visa(visa), notes) if visa else None

    # --- row accounting and gates per source
    if "ingest" in done:
        facts["accounting"] = _section(
            "row accounting", lambda: accounting_rows(quality.night_accounting(cfg, ds)), notes
        )
    facts["freshness"] = None
    if "warehouse" in done:
        freshness = _read_json(cfg.zone("checks", ds=ds) / "freshness.json")
        facts["freshness"] = freshness["sources"] if freshness else None
    checks = [c for stage in quality.STAGES if stage_ran(stage, ran) for c in _stage_checks(cfg, ds, stage)]
    facts["checks"] = checks_by_source(checks)
    facts["checks_passed"] = sum(1 for c in checks if c.get("passed"))
    facts["checks_total"] = len(checks)
    docs = cfg.data_docs_index
    facts["data_docs"] = _relative(docs, here) if docs.exists() else None

    # --- the model that scored the night (the champion when nothing was scored)
    version = facts.get("scores", {}).get("model_version") if facts.get("scores") else None
    facts["model"] = _section("model card", lambda: _model(cfg, version, here), notes)
    if facts["model"] and facts["model"]["calibration"]:
        facts["model"]["calibration_charts"] = _section(
            "calibration chart",
            lambda: [
                {
                    "segment": seg,
                    "chart": plot_calibration([b for b in facts["model"]["calibration"] if b["segment"] == seg], seg),
                }
                for seg in facts["model"]["segments"]
            ],
            notes,
        )
    if facts["model"] and facts["model"]["fairness"]:
        facts["model"]["fairness_chart"] = _section(
            "fairness chart", lambda: plot_fairness(facts["model"]["fairness"]), notes
        )

    # --- where things are
    latest = snapshots.latest(cfg.published, "sesame_scores")
    facts["links"] = {
        "snapshot": _relative(manifest_path.parent, here) if published else None,
        "latest": latest["snapshot"] if latest else None,
        "warehouse": _relative(cfg.warehouse_path, here),
        "alerts": _relative(cfg.alerts_file, here),
    }
    return facts


def stage_ran(check_stage: str, ran: set[str]) -> bool:
    """Checks files are kept per night, not per run: show a stage's verdicts only if this run wrote them."""
    return {"input": "quality_gate", "output": "audit", "audit": "audit"}[check_stage] in ran


def _psi_band(psi: float | None) -> str | None:
    from sesame.drift import FAIL_PSI, WARN_PSI

    if psi is None:
        return None
    return "fail" if psi >= FAIL_PSI else ("warn" if psi >= WARN_PSI else "stable")


SCORE_COLUMNS = ["score", "tier", *FACTOR_COLUMNS, "model_version"]


def _tonight_scores(cfg: Settings, ds: str, db: _Warehouse | None) -> pd.DataFrame:
    if db is not None:
        frame = db.query(f"select {', '.join(SCORE_COLUMNS)} from marts.sesame_scores where ds = ?", [ds])
        if len(frame):
            return frame
    # scored but not yet in the warehouse: the lake's scores, tiered by the contract's bands
    frame = pd.read_parquet(cfg.zone("scores", ds=ds))
    frame["tier"] = frame["score"].map(tier_of)
    return frame[SCORE_COLUMNS]


def _previous_scores(db: _Warehouse, ds: str) -> tuple[str, pd.DataFrame] | None:
    found = db.query("select max(ds) as ds from marts.sesame_scores where ds < ?", [ds])
    previous_ds = found["ds"].iloc[0] if len(found) else None
    if previous_ds is None or pd.isna(previous_ds):
        return None
    frame = db.query(f"select {', '.join(SCORE_COLUMNS)} from marts.sesame_scores where ds = ?", [previous_ds])
    return str(pd.Timestamp(previous_ds).date()), frame


def _exclusions(db: _Warehouse, ds: str) -> list[dict]:
    frame = db.query(
        "select exclusion_code, count(*) as users from marts.score_exclusions where ds = ? group by 1 order by 2 desc",
        [ds],
    )
    return frame.to_dict(orient="records")


def _visa(db: _Warehouse, ds: str) -> list[dict]:
    eligible = db.query(
        "select destination, user_key, score, rule_version from marts.visa_eligibility where ds = ?", [ds]
    )
    changes = db.query("select destination, user_key, change from marts.visa_eligibility_changes where ds = ?", [ds])
    return visa_rows(eligible, changes)


def _model(cfg: Settings, version: str | None, here: Path) -> dict | None:
    from sesame.registry import Registry

    registry = Registry(cfg.models)
    if version and "," not in version:
        entry = registry.get(version)
    elif registry.has_champion():
        entry = registry.champion()
    else:
        return None
    card = entry.card
    calibration = card.get("calibration", [])
    return {
        "version": entry.version,
        "champion": registry.has_champion() and registry.champion().version == entry.version,
        "train_ds": card.get("train_ds"),
        "trained_at": card.get("trained_at"),
        "model": card.get("model"),
        "label": card.get("label") or {},
        "segments": card.get("segments", []),
        "population": card.get("population", {}),
        "developed_on": card.get("developed_on", {}),
        "performance": [
            {
                "segment": seg,
                "sample": name.replace("_", " "),
                **{k: card[name][seg].get(k) for k in ("rows", "bads", "bad_rate", "auc", "ks", "gini")},
            }
            for seg in card.get("segments", [])
            for name in ("development", "out_of_time")
            if seg in card.get(name, {})
        ],
        "calibration": calibration,
        "calibration_summary": card.get("calibration_summary", {}),
        "what_scores_mean": what_scores_mean(calibration),
        "gates": [{"gate": k, **v} for k, v in card.get("gates", {}).items()],
        "fairness": fairness_rows(card),
        "features_by_segment": card.get("features_by_segment", {}),
        "card_html": _relative(entry.path / "card.html", here),
    }


def what_scores_mean(calibration: list[dict], thresholds=(700, 750)) -> list[dict]:
    """For each visa threshold and segment: the bad rate the threshold claims and the bad rate observed out of time
    among users scoring at least that much, with its 95% Wilson interval."""
    from sesame.metrics import claimed_bad_rate, wilson_interval

    out = []
    for t in thresholds:
        for seg in dict.fromkeys(b["segment"] for b in calibration):
            above = [b for b in calibration if b["segment"] == seg and b["band_low"] >= t]
            rows, bads = sum(b["rows"] for b in above), sum(b["bads"] for b in above)
            lo, hi = wilson_interval(bads, rows) if rows else (None, None)
            out.append(
                {
                    "threshold": t,
                    "segment": seg,
                    "claimed_at_threshold": float(claimed_bad_rate(t)),
                    "rows": rows,
                    "bads": bads,
                    "observed": bads / rows if rows else None,
                    "observed_low": lo,
                    "observed_high": hi,
                }
            )
    return out


# ------------------------------------------------------------------ rendering and writing


def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda v, digits=0: (
        "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:,.{digits}f}"
    )
    env.filters["pct"] = lambda v, digits=1: (
        "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v * 100:.{digits}f}%"
    )
    return env


def render(facts: dict) -> str:
    return _environment().get_template("night_report.html.j2").render(**facts)


def write_report(cfg: Settings, ds: str, run_id: str, alert: dict | None = None) -> Path:
    """Render the run's report, make it the night's index.html and list it in reports/index.html."""
    facts = collect(cfg, ds, run_id, alert)
    page = render(facts)
    path = report_path(cfg, ds, run_id)
    write_atomic(path, page)
    write_atomic(path.parent / "index.html", page)
    write_atomic(
        path.parent / "status.json",
        json.dumps({"ds": ds, "run_id": run_id, "status": facts["status"], "report": path.name}),
    )
    write_listing(cfg)
    return path


def write_listing(cfg: Settings) -> Path:
    """reports/index.html: every night with a report, newest first, with the status of its latest run."""
    nights = []
    for folder in sorted((p for p in cfg.reports.glob("*") if p.is_dir()), reverse=True):
        status = _read_json(folder / "status.json") or {}
        runs = sorted(p.name for p in folder.glob("*.html") if p.name != "index.html")
        nights.append(
            {
                "ds": folder.name,
                "status": status.get("status", "unknown"),
                "latest": f"{folder.name}/index.html",
                "runs": [f"{folder.name}/{r}" for r in runs],
            }
        )
    path = cfg.reports / "index.html"
    write_atomic(path, _environment().get_template("report_index.html.j2").render(nights=nights))
    return path
