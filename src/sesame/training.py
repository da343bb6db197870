"""Training: choose observation dates, build the development and out-of-time samples under the performance
definition, fit one scorecard per segment, measure discrimination and calibration out of time, write the model
card, and promote the model only through the gates. The Spark side (features and outcomes per observation date)
lives in spark_jobs/training_set.py; this module works on the resulting table in pandas.

Performance definition (README "The score"): bad = a credit product newly reaching `bad_dpd` days past due within
`performance_days` after the observation date. Users already there at the observation date are outside both
samples. No-file users count only if they open a credit product within the window (the others are
indeterminate). One observation per user in development: each user's observation date is drawn by a hash of the
user id among the development dates they appear on, so overlapping performance windows never count a person twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import zlib

import numpy as np
import pandas as pd

from sesame import FACTORS, metrics
from sesame.config import Settings
from sesame.drift import development_profile
from sesame.features import DIRECTION_OF, FACTOR_OF, FEATURES, REASON_CODE_OF
from sesame.registry import Registry
from sesame.scale import BASE_ODDS, BASE_SCORE, PDO, SCORE_MAX, SCORE_MIN
from sesame.segments import NO_CREDIT_FILE, SEGMENTS, SegmentedScorecard

FAIRNESS_THRESHOLDS = (700, 750)
VERDICTS = ("passed", "failed", "not_tested", "accepted")


def observation_dates(delivered: list[str], train_ds: str, cfg: Settings) -> list[str]:
    """Dates whose performance window has ended by the training night and whose feature windows are full,
    every `obs_step_days`, counting back from the latest such date."""
    if not delivered:
        return []
    earliest = dt.date.fromisoformat(min(delivered)) + dt.timedelta(days=cfg.maturity_days)
    d = dt.date.fromisoformat(train_ds) - dt.timedelta(days=cfg.performance_days)
    dates = []
    while d >= earliest:
        dates.append(d.isoformat())
        d -= dt.timedelta(days=cfg.obs_step_days)
    return sorted(dates)


def split_out_of_time(table: pd.DataFrame, cfg: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = sorted(table["obs_date"].unique())
    if len(dates) < 2:
        raise ValueError(
            f"need at least two observation dates for out-of-time validation, got {dates}: "
            "simulate or deliver a longer history"
        )
    held = dates[-min(cfg.oot_dates, len(dates) - 1) :]
    oot = table["obs_date"].isin(held)
    return table[~oot], table[oot]


def eligible(table: pd.DataFrame, cfg: Settings) -> tuple[pd.DataFrame, dict]:
    """The rows the performance definition can judge, and how many rows each rule left out."""
    seasoned = table["history_days"] >= cfg.min_history_days
    in_default = seasoned & table["current_default"].astype(bool)
    indeterminate = seasoned & ~in_default & (table["segment"] == NO_CREDIT_FILE) & (table["opened"] == 0)
    keep = seasoned & ~in_default & ~indeterminate
    counts = {
        "rows": int(len(table)),
        "thin_file": int((~seasoned).sum()),
        "current_default": int(in_default.sum()),
        "indeterminate_no_product_opened": int(indeterminate.sum()),
        "judged": int(keep.sum()),
    }
    return table[keep], counts


def one_per_user(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per user: among the observation dates a user has, the one a hash of the user id picks (stable
    across runs and independent of the outcome)."""
    frame = frame.sort_values(["user_id", "obs_date"])
    rank = frame.groupby("user_id").cumcount()
    count = frame.groupby("user_id")["obs_date"].transform("size")
    pick = frame["user_id"].map(lambda u: zlib.crc32(str(u).encode())) % count
    return frame[rank == pick]


def fit_segment(dev: pd.DataFrame, inputs: list[str], segment: str, cfg: Settings):
    from sesame.night import NightFailed
    from sesame.scorecard import Scorecard

    bads = int(dev["bad"].sum())
    if bads < cfg.min_segment_bads:
        raise NightFailed(
            f"rule training.segment_bads: {segment}: {bads} bads in {len(dev)} development rows, "
            f"fewer than SESAME_MIN_SEGMENT_BADS={cfg.min_segment_bads}; simulate or deliver more users or a longer "
            "history"
        )
    model = Scorecard(
        factors={c: FACTOR_OF[c] for c in inputs},
        reason_codes={c: REASON_CODE_OF[c] for c in inputs},
        directions={c: DIRECTION_OF[c] for c in inputs},
        min_bin_n_event=cfg.scorecard_min_bin_bads,
        C=cfg.scorecard_c,
    )
    return model.fit(dev[inputs], dev["bad"].astype(int))


def fit(dev: pd.DataFrame, inputs: list[str], cfg: Settings) -> tuple[SegmentedScorecard, dict]:
    """One scorecard per segment, and how each was developed. A segment with fewer than `min_segment_bads`
    development bads of its own (the no-file segment of a small or young platform) gets a scorecard developed on
    every judged user over the characteristics that segment has, rather than none at all; the card says so, and
    its own out-of-time rows still judge its calibration."""
    models, development = {}, {}
    for seg in SEGMENTS:
        own = dev[dev["segment"] == seg]
        bads = int(own["bad"].sum())
        if bads >= cfg.min_segment_bads:
            models[seg] = fit_segment(own, inputs, f"segment {seg}", cfg)
            development[seg] = f"its own {len(own)} development rows ({bads} bads)"
        else:
            available = [c for c in inputs if own[c].notna().any()]
            models[seg] = fit_segment(dev, available, "every segment pooled", cfg)
            development[seg] = (
                f"every judged user ({len(dev)} rows, {int(dev['bad'].sum())} bads) over the {len(available)} "
                f"characteristics this segment has: it has {bads} development bads of its own, fewer than "
                f"SESAME_MIN_SEGMENT_BADS={cfg.min_segment_bads}"
            )
    return SegmentedScorecard(models), development


def clipped_shares(scores) -> dict:
    scores = np.asarray(scores)
    return {"at_max": float(np.mean(scores >= SCORE_MAX)), "at_min": float(np.mean(scores <= SCORE_MIN))}


def evaluate(model, frame: pd.DataFrame, segment: str) -> dict:
    sc = model.models[segment]
    X = frame[model.inputs(segment)]
    p_bad = sc.predict_proba(X)[:, 1]
    scores = sc.score(X)
    y = frame["bad"].astype(int).to_numpy()
    bands = metrics.bad_rate_by_band(scores, y)
    two_classes = len(set(y.tolist())) == 2
    return {
        "rows": int(len(frame)),
        "bads": int(y.sum()),
        "bad_rate": float(y.mean()) if len(y) else float("nan"),
        "auc": metrics.auc(y, p_bad) if two_classes else float("nan"),
        "ks": metrics.ks(y, p_bad) if two_classes else float("nan"),
        "gini": metrics.gini(y, p_bad) if two_classes else float("nan"),
        "bad_rate_by_band": bands.to_dict(orient="records"),
        "bad_rate_monotonic": metrics.monotonic_bad_rate(bands),
        "score_quantiles": {str(q): float(np.quantile(scores, q)) for q in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)},
        "clipped": clipped_shares(scores),
    }


def calibration_by_social_band(model, frame: pd.DataFrame, segment: str) -> list[dict]:
    """Observed against claimed bad rate in each quartile of the social factor's points: the social cap is imposed
    by refitting the other coefficients, and this shows calibration survived it."""
    sc = model.models[segment]
    explained = sc.explain(frame[model.inputs(segment)])
    social = explained["social_connections_points"].to_numpy()
    y = frame["bad"].astype(int).to_numpy()
    claimed = metrics.claimed_bad_rate(explained["score"].to_numpy())
    edges = np.unique(np.quantile(social, [0, 0.25, 0.5, 0.75, 1.0]))
    band = np.digitize(social, edges[1:-1], right=True) if len(edges) > 2 else np.zeros(len(social), dtype=int)
    out = []
    for b in sorted(set(band.tolist())):
        rows = band == b
        bads = int(y[rows].sum())
        lo, hi = metrics.wilson_interval(bads, int(rows.sum()))
        out.append(
            {
                "segment": segment,
                "social_points_low": int(social[rows].min()),
                "social_points_high": int(social[rows].max()),
                "rows": int(rows.sum()),
                "bads": bads,
                "observed_bad_rate": bads / int(rows.sum()),
                "observed_low": lo,
                "observed_high": hi,
                "claimed_bad_rate": float(claimed[rows].mean()),
            }
        )
    return out


def fairness(frame: pd.DataFrame, scores, p_bad, on_year: int, cfg: Settings) -> dict:
    """Approval-rate ratios at the visa thresholds and AUC by group, over groups of at least the minimum size. A
    ratio that cannot be measured (fewer than two such groups, or nobody approved) is `not_tested`, never
    `passed`."""
    y = frame["bad"].astype(int).to_numpy()
    groups = {
        "gender": frame["gender"].astype(str).to_numpy(),
        "age_band": metrics.age_band(frame["birth_year"], on_year).to_numpy(),
    }
    out = {}
    for name, g in groups.items():
        known = pd.Series(g)
        known = known[(known != "nan") & (known != "None")]
        sizes = known.value_counts()
        large = sizes[sizes >= cfg.gate_min_group_size].index
        big = pd.Series(g).isin(large).to_numpy()
        approval = []
        for t in FAIRNESS_THRESHOLDS:
            a = metrics.approval_ratio(np.asarray(scores)[big], g[big], t)
            if len(large) < 2:
                a["verdict"] = "not_tested"
                a["why"] = f"{len(large)} group(s) of at least {cfg.gate_min_group_size} people (sizes {dict(sizes)})"
            elif not np.isfinite(a["ratio"]):
                a["verdict"] = "not_tested"
                a["why"] = f"nobody in these groups scores {t} or more"
            else:
                a["verdict"] = "passed" if a["ratio"] >= cfg.gate_min_fairness_ratio else "failed"
            approval.append(a)
        out[name] = {
            "group_sizes": {str(k): int(v) for k, v in sizes.items()},
            "approval": approval,
            "auc_by_group": metrics.auc_by_group(y, p_bad, g),
        }
    return out


def _gate(verdict: str, detail: str, **figures) -> dict:
    assert verdict in VERDICTS
    return {"verdict": verdict, "passed": verdict in ("passed", "accepted"), "detail": detail, **figures}


def gates(card: dict, champion_auc_on_oot: dict | None, cfg: Settings) -> dict:
    """Each gate with its verdict (passed, failed, not_tested, accepted) and figures; a challenger becomes champion
    only when every gate passed or was accepted by an operator."""
    result = {}
    for seg in card["segments"]:
        oot = card["out_of_time"][seg]
        result[f"bad_rate_monotonic:{seg}"] = _gate(
            "passed" if oot["bad_rate_monotonic"] else "failed", "bad rate falls as the score band rises (out of time)"
        )
        table = [b for b in card["calibration"] if b["segment"] == seg]
        verdict, why = metrics.calibration_verdict(
            table,
            card["calibration_summary"][seg],
            (cfg.gate_calibration_slope_min, cfg.gate_calibration_slope_max),
            cfg.gate_calibration_min_bads,
        )
        result[f"calibration:{seg}"] = _gate(verdict, why, slope=card["calibration_summary"][seg]["slope"])
        violations = card["features_by_segment"][seg]["monotone_violations"]
        result[f"points_monotone:{seg}"] = _gate(
            "failed" if violations else "passed",
            ("points run against the registry's direction: " + ", ".join(violations))
            if violations
            else "every characteristic's points are monotone in the registry's direction of risk",
        )
        if champion_auc_on_oot is None or champion_auc_on_oot.get(seg) is None:
            result[f"auc_vs_champion:{seg}"] = _gate("passed", "no comparable champion yet")
        else:
            champ = champion_auc_on_oot[seg]
            passed = oot["auc"] >= champ - cfg.gate_auc_tolerance
            result[f"auc_vs_champion:{seg}"] = _gate(
                "passed" if passed else "failed",
                f"challenger AUC {oot['auc']:.4f} vs champion {champ:.4f} on the same out-of-time sample "
                f"(tolerance {cfg.gate_auc_tolerance})",
                challenger=oot["auc"],
                champion=champ,
            )
    approvals = [(attr, a) for attr, f in card["fairness"].items() for a in f["approval"]]
    failed = [f"{attr} at {a['threshold']}: {a['ratio']:.3f}" for attr, a in approvals if a["verdict"] == "failed"]
    untested = [f"{attr} at {a['threshold']}: {a['why']}" for attr, a in approvals if a["verdict"] == "not_tested"]
    ratios = [a["ratio"] for _, a in approvals if a["verdict"] in ("passed", "failed")]
    detail = (
        f"lowest approval-rate ratio {min(ratios):.3f}" if ratios else "no ratio could be measured"
    ) + f" (minimum {cfg.gate_min_fairness_ratio})"
    if failed:
        verdict, detail = "failed", detail + "; below the minimum: " + "; ".join(failed)
    elif untested:
        verdict = "accepted" if cfg.accept_untested_fairness else "not_tested"
        detail += (
            "; not tested: "
            + "; ".join(untested)
            + (
                "; accepted by the operator (SESAME_ACCEPT_UNTESTED_FAIRNESS)"
                if cfg.accept_untested_fairness
                else "; set SESAME_ACCEPT_UNTESTED_FAIRNESS=1 to accept after review"
            )
        )
    else:
        verdict = "passed"
    result["fairness_ratio"] = _gate(verdict, detail, lowest_ratio=min(ratios) if ratios else None)
    return result


def label_definition(cfg: Settings) -> dict:
    return {
        "bad_dpd": cfg.bad_dpd,
        "performance_days": cfg.performance_days,
        "definition": (
            f"Bad: any credit product newly reaching {cfg.bad_dpd}+ days past due within {cfg.performance_days} "
            f"days after the observation date. Users already {cfg.bad_dpd}+ days past due (or charged off) at the "
            "observation date are outside the sample (at night: exclusion CURRENT_DEFAULT). Users without a credit "
            f"file count only if they open a credit product within the {cfg.performance_days} days (the bad event "
            "is then on that product); those who open none are indeterminate and left out. One observation per "
            "user in development (the date drawn by a hash of the user id)."
        ),
    }


def model_card(
    model: SegmentedScorecard,
    inputs: list[str],
    dev: pd.DataFrame,
    oot: pd.DataFrame,
    population: dict,
    train_ds: str,
    cfg: Settings,
) -> dict:
    from sesame.scorecard import monotone_violations

    on_year = dt.date.fromisoformat(train_ds).year
    card = {
        "train_ds": train_ds,
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": "Segmented scorecards: monotonic optimal binning in the registry's direction of risk, weight of "
        "evidence, logistic regression, social factor capped by a constrained refit",
        "scaling": {
            "base_score": int(BASE_SCORE),
            "base_odds": int(BASE_ODDS),
            "pdo": int(PDO),
            "min": SCORE_MIN,
            "max": SCORE_MAX,
        },
        "label": label_definition(cfg),
        "segments": list(model.segments),
        "population": population,
        "data_window": {
            "development_dates": sorted(dev["obs_date"].unique().tolist()),
            "out_of_time_dates": sorted(oot["obs_date"].unique().tolist()),
            "min_history_days": cfg.min_history_days,
        },
        "features": inputs,
        "development": {},
        "out_of_time": {},
        "calibration": [],
        "calibration_summary": {},
        "calibration_by_social_band": [],
        "features_by_segment": {},
        "development_profile": {},
    }
    for seg in model.segments:
        sc = model.models[seg]
        d, o = dev[dev["segment"] == seg], oot[oot["segment"] == seg]
        used = [c["name"] for c in sc.characteristics_]
        card["development"][seg] = evaluate(model, d, seg)
        card["out_of_time"][seg] = evaluate(model, o, seg)
        scores = sc.score(o[model.inputs(seg)])
        card["calibration"] += [{"segment": seg, **b} for b in metrics.calibration_table(scores, o["bad"])]
        card["calibration_summary"][seg] = metrics.calibration_summary(scores, o["bad"])
        card["calibration_by_social_band"] += calibration_by_social_band(model, o, seg)
        card["features_by_segment"][seg] = {
            "used": used,
            "by_factor": {f: [c for c in used if FACTOR_OF[c] == f] for f in FACTORS},
            "dropped": dict(sc.dropped_),
            "monotone_violations": monotone_violations(sc, {c: DIRECTION_OF[c] for c in used}),
        }
        card["development_profile"][seg] = development_profile(sc, d[model.inputs(seg)])
    p_bad = model.predict_proba(oot[inputs], oot["segment"])[:, 1]
    card["fairness"] = fairness(oot, model.score(oot[inputs], oot["segment"]), p_bad, on_year, cfg)
    return card


def version_for(train_ds: str, model_json: str) -> str:
    return f"sc-{train_ds.replace('-', '')}-{hashlib.sha256(model_json.encode()).hexdigest()[:8]}"


def champion_auc(registry: Registry, oot: pd.DataFrame) -> tuple[dict | None, str | None]:
    """The champion's AUC per segment on the challenger's out-of-time sample; None for a champion of an earlier,
    unsegmented format (it cannot score the segments, so there is nothing to compare)."""
    if not registry.has_champion():
        return None, None
    entry = registry.champion()
    try:
        champ = entry.load()
    except ValueError:
        return None, entry.version
    out = {}
    for seg in champ.segments:
        part = oot[oot["segment"] == seg]
        y = part["bad"].astype(int)
        if y.nunique() == 2:
            out[seg] = metrics.auc(y, champ.models[seg].predict_proba(part[champ.inputs(seg)])[:, 1])
    return out, entry.version


def train(table: pd.DataFrame, train_ds: str, cfg: Settings, registry: Registry) -> dict:
    """Fit, evaluate, register and (through the gates) promote. Returns the card."""
    judged, population = eligible(table, cfg)
    inputs = [f.name for f in FEATURES]
    dev_all, oot = split_out_of_time(judged, cfg)
    dev = one_per_user(dev_all)
    population["development_rows"] = {s: int((dev["segment"] == s).sum()) for s in SEGMENTS}
    population["development_rows_before_one_per_user"] = int(len(dev_all))
    population["out_of_time_rows"] = {s: int((oot["segment"] == s).sum()) for s in SEGMENTS}
    model, development = fit(dev, inputs, cfg)
    card = model_card(model, inputs, dev, oot, population, train_ds, cfg)
    card["developed_on"] = development
    champ_auc, champ_version = champion_auc(registry, oot)
    if champ_version:
        card["champion_at_training"] = champ_version
    card["gates"] = gates(card, champ_auc, cfg)
    model_json = model.to_json()
    version = version_for(train_ds, model_json)
    card["version"] = version
    registry.register(version, model_json, card, card_html(card))
    card["promoted"] = all(g["passed"] for g in card["gates"].values())
    if card["promoted"]:
        registry.promote(version, reason="passed all gates")
    return card


def card_html(card: dict) -> str:
    """A self-contained HTML model card."""
    from sesame.report import plot_calibration

    def table(rows: list[dict]) -> str:
        if not rows:
            return "<p>none</p>"
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    perf = [
        {
            "segment": seg,
            "sample": name.replace("_", " "),
            **{k: card[name][seg][k] for k in ("rows", "bads", "bad_rate", "auc", "ks", "gini")},
        }
        for seg in card["segments"]
        for name in ("development", "out_of_time")
    ]
    summary = [{"segment": seg, **s} for seg, s in card["calibration_summary"].items()]
    fair_rows = [
        {
            "attribute": attr,
            "threshold": a["threshold"],
            "approval rates": a["rates"],
            "ratio": a["ratio"],
            "verdict": a["verdict"],
        }
        for attr, f in card["fairness"].items()
        for a in f["approval"]
    ]
    auc_rows = [{"attribute": attr, "AUC by group": f["auc_by_group"]} for attr, f in card["fairness"].items()]
    gate_rows = [{"gate": k, "verdict": v["verdict"], "detail": v["detail"]} for k, v in card["gates"].items()]
    features = [
        {"segment": seg, "factor": f, "characteristics": ", ".join(cs)}
        for seg, info in card["features_by_segment"].items()
        for f, cs in info["by_factor"].items()
    ]
    dropped = [
        {"segment": seg, "characteristic": k, "reason": v}
        for seg, info in card["features_by_segment"].items()
        for k, v in info["dropped"].items()
    ]
    charts = "".join(
        f"<h3>{html.escape(seg)}</h3>" + plot_calibration([b for b in card["calibration"] if b["segment"] == seg], seg)
        for seg in card["segments"]
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Model card {html.escape(card["version"])}</title>
<style>body{{font-family:sans-serif;max-width:64em;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}svg.chart{{width:100%;height:auto}}</style></head><body>
<h1>Model card {html.escape(card["version"])}</h1>
<p>{html.escape(card["model"])}. Trained on the night of {card["train_ds"]} at {card["trained_at"]}.</p>
<h2>Performance definition</h2><p>{html.escape(card["label"]["definition"])}</p>
<h2>Population</h2>{table([card["population"]])}
<h2>Developed on</h2>{table([{"segment": k, "scorecard developed on": v} for k, v in card["developed_on"].items()])}
<h2>Data window</h2>{table([card["data_window"]])}
<h2>Discrimination by segment</h2>{table(perf)}
<h2>Calibration out of time: observed against claimed bad rate</h2>
<p>Each band's observed bad rate with its 95% Wilson interval, beside the bad rate its scores claim through the
odds scaling (600 at 19:1, 50 points to double the odds), over the {card["label"]["performance_days"]}-day
performance window.</p>{charts}
{table(card["calibration"])}{table(summary)}
<h2>Calibration by social band (the social factor is capped)</h2>{table(card["calibration_by_social_band"])}
<h2>Fairness (out of time; protected attributes are never model inputs)</h2>{table(fair_rows)}{table(auc_rows)}
<h2>Gates</h2>{table(gate_rows)}
<h2>Characteristics by segment and factor</h2>{table(features)}
<h2>Dropped characteristics</h2>{table(dropped)}
</body></html>"""


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, dict):
        return html.escape(", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()))
    return html.escape(str(v))


# ------------------------------------------------------------------ stages of the sesame_train DAG


def ingest_history(cfg: Settings, ds: str) -> None:
    """Every delivered day up to the training night, ingested in one Spark pass where not done yet."""
    from sesame.night import spark_job

    spark_job("ingest", ["--ds", ds, "--catch-up", "--ingested-on", "history"], cfg)


def build_training_set(cfg: Settings, ds: str) -> list[str]:
    from sesame.deliveries import delivered_days
    from sesame.night import NightFailed, spark_job

    dates = observation_dates(delivered_days(cfg, ds), ds, cfg)
    if len(dates) < 2:
        raise NightFailed(
            f"rule training.history: only {len(dates)} observation dates with {cfg.maturity_days} days of "
            f"history before them and a {cfg.performance_days}-day performance window ended by {ds}; "
            f"need at least {cfg.maturity_days + cfg.performance_days + cfg.obs_step_days} days of "
            "deliveries: deliver or simulate a longer history"
        )
    args = ["--ds", ds]
    for d in dates:
        args += ["--obs", d]
    spark_job("training_set", args, cfg)
    return dates


def training_table(cfg: Settings, ds: str) -> pd.DataFrame:
    """Labels from lake/training joined point in time to the features through the feature store."""
    from sesame import feature_store

    population = pd.read_parquet(cfg.zone("training", ds=ds))
    population["event_timestamp"] = pd.to_datetime(population["obs_date"]).dt.tz_localize("UTC")
    feature_store.apply(cfg)
    table = feature_store.historical_features(population, cfg)
    if len(table) != len(population):
        # the point-in-time join leaves out users with no features as of their observation date
        missing = len(population) - len(table)
        print(f"training set: {missing} of {len(population)} labelled users had no features at their observation date")
    return table.sort_values(["obs_date", "user_id"]).reset_index(drop=True)


def fit_from_lake(cfg: Settings, ds: str) -> dict:
    return train(training_table(cfg, ds), ds, cfg, Registry(cfg.models))
