"""Training: choose observation dates, fit a Scorecard, evaluate it out of time, write its model card, and
promote it only through the gates. The Spark side (features and labels per observation date) lives in
spark_jobs/training_set.py; this module works on the resulting table in pandas.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html

import numpy as np
import pandas as pd

from sesame import FACTORS
from sesame.config import Settings
from sesame.features import FACTOR_OF, FEATURES, REASON_CODE_OF
from sesame import metrics
from sesame.drift import development_profile
from sesame.registry import Registry

FAIRNESS_THRESHOLDS = (700, 750)


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
        raise ValueError(f"need at least two observation dates for out-of-time validation, got {dates}: "
                         "simulate or deliver a longer history")
    held = dates[-min(cfg.oot_dates, len(dates) - 1):]
    oot = table["obs_date"].isin(held)
    return table[~oot], table[oot]


def fit(dev: pd.DataFrame, inputs: list[str]):
    from sesame.scorecard import Scorecard

    model = Scorecard(factors={c: FACTOR_OF[c] for c in inputs}, reason_codes={c: REASON_CODE_OF[c] for c in inputs},
                      on_reversed="drop")
    return model.fit(dev[inputs], dev["bad"].astype(int))


def evaluate(model, frame: pd.DataFrame, inputs: list[str], on_year: int, cfg: Settings) -> dict:
    p_bad = model.predict_proba(frame[inputs])[:, 1]
    scores = model.score(frame[inputs])
    y = frame["bad"].astype(int).to_numpy()
    bands = metrics.bad_rate_by_band(scores, y)
    out = {
        "rows": int(len(frame)), "bad_rate": float(y.mean()),
        "auc": metrics.auc(y, p_bad), "ks": metrics.ks(y, p_bad), "gini": metrics.gini(y, p_bad),
        "bad_rate_by_band": bands.to_dict(orient="records"),
        "bad_rate_monotonic": metrics.monotonic_bad_rate(bands),
        "score_quantiles": {str(q): float(np.quantile(scores, q)) for q in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)},
        "fairness": fairness(frame, scores, p_bad, y, on_year, cfg),
    }
    return out


def fairness(frame: pd.DataFrame, scores, p_bad, y, on_year: int, cfg: Settings) -> dict:
    groups = {"gender": frame["gender"].astype(str).to_numpy(),
              "age_band": metrics.age_band(frame["birth_year"], on_year).to_numpy()}
    out = {}
    for name, g in groups.items():
        sizes = pd.Series(g).value_counts()
        big = pd.Series(g).isin(sizes[sizes >= cfg.gate_min_group_size].index).to_numpy()
        out[name] = {
            "group_sizes": {str(k): int(v) for k, v in sizes.items()},
            "approval": [metrics.approval_ratio(np.asarray(scores)[big], g[big], t) for t in FAIRNESS_THRESHOLDS],
            "auc_by_group": metrics.auc_by_group(y, p_bad, g),
        }
    return out


def gates(card: dict, champion_card: dict | None, champion_auc_on_oot: float | None, cfg: Settings) -> dict:
    """Each gate with its verdict; a challenger becomes champion only when all pass."""
    oot = card["metrics"]["out_of_time"]
    result = {"bad_rate_monotonic": {"passed": oot["bad_rate_monotonic"],
                                     "detail": "bad rate falls as the score band rises (out of time)"}}
    ratios = [a["ratio"] for f in oot["fairness"].values() for a in f["approval"] if not np.isnan(a["ratio"])]
    worst = min(ratios) if ratios else float("nan")
    result["fairness_ratio"] = {"passed": bool(ratios) and worst >= cfg.gate_min_fairness_ratio,
                                "detail": f"lowest approval-rate ratio {worst:.3f} (minimum {cfg.gate_min_fairness_ratio})"}
    if champion_auc_on_oot is None:
        result["auc_vs_champion"] = {"passed": True, "detail": "no champion yet"}
    else:
        passed = oot["auc"] >= champion_auc_on_oot - cfg.gate_auc_tolerance
        result["auc_vs_champion"] = {
            "passed": bool(passed),
            "detail": f"challenger AUC {oot['auc']:.4f} vs champion {champion_auc_on_oot:.4f} on the same "
                      f"out-of-time sample (tolerance {cfg.gate_auc_tolerance})"}
    return result


def model_card(model, inputs: list[str], dev: pd.DataFrame, oot: pd.DataFrame, train_ds: str, cfg: Settings) -> dict:
    on_year = dt.date.fromisoformat(train_ds).year
    used = [c for c in inputs if c not in getattr(model, "dropped_", {})]
    return {
        "train_ds": train_ds,
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": "Scorecard: monotonic optimal binning, weight of evidence, logistic regression",
        "scaling": {"base_score": 600, "base_odds": 19, "pdo": 50, "min": 350, "max": 950},
        "label": f"{cfg.bad_dpd}+ days past due within {cfg.performance_days} days after the observation date",
        "data_window": {"development_dates": sorted(dev["obs_date"].unique().tolist()),
                        "out_of_time_dates": sorted(oot["obs_date"].unique().tolist()),
                        "min_history_days": cfg.min_history_days},
        "features": inputs,
        "features_used": used,
        "features_by_factor": {f: [c for c in used if FACTOR_OF[c] == f] for f in FACTORS},
        "dropped": getattr(model, "dropped_", {}),
        "metrics": {"development": evaluate(model, dev, inputs, on_year, cfg),
                    "out_of_time": evaluate(model, oot, inputs, on_year, cfg)},
        "development_profile": development_profile(model, dev[inputs]),
    }


def version_for(train_ds: str, model_json: str) -> str:
    return f"sc-{train_ds.replace('-', '')}-{hashlib.sha256(model_json.encode()).hexdigest()[:8]}"


def train(table: pd.DataFrame, train_ds: str, cfg: Settings, registry: Registry) -> dict:
    """Fit, evaluate, register and (through the gates) promote. Returns the card."""
    table = table[table["history_days"] >= cfg.min_history_days]
    inputs = [f.name for f in FEATURES]
    dev, oot = split_out_of_time(table, cfg)
    model = fit(dev, inputs)
    card = model_card(model, inputs, dev, oot, train_ds, cfg)
    champion_auc = None
    if registry.has_champion():
        champ = registry.champion()
        champ_model = champ.load()
        champ_inputs = champ.inputs
        champion_auc = metrics.auc(oot["bad"].astype(int), champ_model.predict_proba(oot[champ_inputs])[:, 1])
        card["psi_vs_champion"] = metrics.psi(champ_model.score(oot[champ_inputs]), model.score(oot[inputs]))
        card["champion_at_training"] = champ.version
    card["gates"] = gates(card, None, champion_auc, cfg)
    model_json = model.to_json()
    version = version_for(train_ds, model_json)
    card["version"] = version
    registry.register(version, model_json, card, card_html(card))
    if all(g["passed"] for g in card["gates"].values()):
        registry.promote(version, reason="passed all gates")
        card["promoted"] = True
    else:
        card["promoted"] = False
    return card


def card_html(card: dict) -> str:
    """A self-contained HTML model card."""
    def table(rows: list[dict]) -> str:
        if not rows:
            return "<p>none</p>"
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    oot = card["metrics"]["out_of_time"]
    dev = card["metrics"]["development"]
    perf = [{"sample": name, "rows": m["rows"], "bad rate": m["bad_rate"], "AUC": m["auc"], "KS": m["ks"],
             "Gini": m["gini"]} for name, m in (("development", dev), ("out of time", oot))]
    fair_rows = [{"attribute": attr, "threshold": a["threshold"], "approval rates": a["rates"], "ratio": a["ratio"]}
                 for attr, f in oot["fairness"].items() for a in f["approval"]]
    auc_rows = [{"attribute": attr, "AUC by group": f["auc_by_group"]} for attr, f in oot["fairness"].items()]
    gate_rows = [{"gate": k, "passed": v["passed"], "detail": v["detail"]} for k, v in card["gates"].items()]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Model card {html.escape(card['version'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style></head><body>
<h1>Model card {html.escape(card['version'])}</h1>
<p>{html.escape(card['model'])}. Trained on the night of {card['train_ds']} at {card['trained_at']}.
Label: {html.escape(card['label'])}.</p>
<h2>Data window</h2>{table([card['data_window']])}
<h2>Performance</h2>{table(perf)}
<h2>Bad rate by score band (out of time)</h2>{table(oot['bad_rate_by_band'])}
<h2>Fairness (out of time; protected attributes are never model inputs)</h2>{table(fair_rows)}{table(auc_rows)}
<h2>Gates</h2>{table(gate_rows)}
<h2>Characteristics by factor</h2>{table([{'factor': k, 'characteristics': ', '.join(v)} for k, v in card['features_by_factor'].items()])}
<h2>Dropped characteristics</h2>{table([{'characteristic': k, 'reason': v} for k, v in card['dropped'].items()])}
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

    spark_job("ingest", ["--ds", ds, "--catch-up"], cfg)


def build_training_set(cfg: Settings, ds: str) -> list[str]:
    from sesame.deliveries import delivered_days
    from sesame.night import NightFailed, spark_job

    dates = observation_dates(delivered_days(cfg, ds), ds, cfg)
    if len(dates) < 2:
        raise NightFailed(f"rule training.history: only {len(dates)} observation dates with {cfg.maturity_days} days of "
                          f"history before them and a {cfg.performance_days}-day performance window ended by {ds}; "
                          f"need at least {cfg.maturity_days + cfg.performance_days + cfg.obs_step_days} days of "
                          "deliveries: deliver or simulate a longer history")
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
