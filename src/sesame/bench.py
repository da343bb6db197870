"""`make bench`: run the benchmark profiles and write BENCHMARKS.md (machine, versions, wall time, peak memory,
throughput).

Every step runs as a child process whose whole process tree (the Spark driver JVM, its Python workers) is
sampled for resident memory, so each figure is that step's own. Each profile keeps its measured figures in
benchmarks/<profile>.json; BENCHMARKS.md is rendered from all of them, so one profile can be re-run alone:

    python -m sesame.bench                        # every profile
    python -m sesame.bench feature_history        # one profile; the others keep their last figures

Profiles: `simulator` (1,000,000 users, one day), `night` (one whole night for 1,000,000 users after 90 days of
history), `night_volume` (the same at the target's sizing), `feature_history` (the
nightly feature job for 100,000 users after 90 and after 360 days), `engines` (Spark against DuckDB per stage of
that job), `scoring` (Spark against in-process scoring), `service` (the
score service under load). `feature_history`, `engines` and `scoring` share one simulated and ingested lake of
361 days for 100,000 users; `night` (and `engines`, once `night` has run) a 1,000,000-user lake of 91 days;
`night_volume` its own lake, simulated with `--activity 2.4 --contacts 5`.

SESAME_BENCH_DIR keeps the simulated data between runs (default: a temporary folder, removed afterwards);
SESAME_BENCH_USERS and SESAME_BENCH_HISTORY_USERS change the sizes; SESAME_BENCH_NIGHT_HISTORY measures the
1,000,000-user night after fewer days of history, SESAME_BENCH_VOLUME_HISTORY the sized night's (both 90).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd
import psutil

from sesame.config import REPO_ROOT, Settings, days_before
from sesame.progress import track

RESULTS = REPO_ROOT / "benchmarks"
END = dt.date(2026, 11, 23)


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run a command; its wall time and the peak memory (PSS) of its whole process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.wait(0.5):
            try:
                tree = [root, *root.children(recursive=True)]
                # proportional set size: pages shared by forked Python workers counted once, not per worker
                peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
            except psutil.Error:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed (exit {proc.returncode}):\n{output[-4000:]}")
    return {"seconds": round(wall, 1), "peak_gb": round(peak / 1024 ** 3, 2), "output": output}


def figures(result: dict) -> dict:
    """What a profile keeps of a measured step: its wall time and peak memory (not its output)."""
    return {"seconds": result["seconds"], "peak_gb": result["peak_gb"]}


def kept_results(profile: str) -> dict:
    """The figures a profile last wrote (benchmarks/<profile>.json), or nothing."""
    path = RESULTS / f"{profile}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def sesame_cli(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "sesame"), *args]


def spark_job(cfg: Settings, job: str, *args: str) -> dict:
    from sesame.spark import submit_command

    cmd, env = submit_command(job, list(args), cfg)
    return measure(cmd, env)


def machine() -> dict:
    versions = {p: metadata.version(p) for p in ("pyspark", "apache-airflow", "dbt-core", "duckdb", "feast",
                                                   "great-expectations", "scikit-learn", "optbinning", "pandas")}
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3
    return {"cpus": os.cpu_count(), "memory_gb": round(mem_gb, 1), "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions}


# ------------------------------------------------------------------ profiles

SIMULATOR_CHILD = """
import datetime as dt, json, sys
from pathlib import Path
from sesame.simulate import simulate
summary = simulate(Path(sys.argv[1]), users=int(sys.argv[2]), days=1, end_ds=dt.date(2026, 11, 23), seed=7)
print(json.dumps(summary["rows"]))
"""


def simulator_profile(work: Path) -> dict:
    users = int(os.environ.get("SESAME_BENCH_USERS", "1000000"))
    out = work / "simulator"
    result = measure([sys.executable, "-c", SIMULATOR_CHILD, str(out), str(users)])
    shutil.rmtree(out, ignore_errors=True)
    rows = json.loads(result["output"].strip().splitlines()[-1])
    return {"users": users, "seconds": result["seconds"], "peak_gb": result["peak_gb"], "rows": rows}


HISTORY_DAYS = 361


def has_state(cfg: Settings, night: str) -> bool:
    """Whether every state table of the night exists (a night's features can then start from it)."""
    from spark_jobs.state import STATES

    return all(cfg.zone("features", "state", name, ds=night).exists() for name in STATES)


def ensure_features(cfg: Settings, night: str) -> None:
    """Run the night's feature job unless it has run (its feature table is written last, after the daily
    aggregates, windows and state), then dbt's features unless they are there."""
    if not cfg.zone("features", "user_features", ds=night).exists():
        spark_job(cfg, "features", "--ds", night)
    if not cfg.zone("features", "dbt_user_features", ds=night).exists():
        from sesame.night import dbt_features

        dbt_features(cfg, night, "bench")


def history_lake(work: Path) -> tuple[Settings, int, dict[str, str], dict[str, dict]]:
    """A simulated and ingested lake of 361 days for the history profiles, with the windows and state of the
    night before each measured night rebuilt from the history (the first-run path). Reused when present."""
    users = int(os.environ.get("SESAME_BENCH_HISTORY_USERS", "100000"))
    cfg = Settings(home=work / f"history-{users}")
    env = {**os.environ, "SESAME_HOME": str(cfg.home)}
    first = END - dt.timedelta(days=HISTORY_DAYS - 1)
    nights = {"90": (first + dt.timedelta(days=89)).isoformat(), "360": END.isoformat()}
    steps: dict[str, dict] = {}
    if not (cfg.raw / "_simulation.json").exists():
        steps["simulate"] = measure(sesame_cli("simulate", "--users", str(users), "--days", str(HISTORY_DAYS),
                                               "--end-ds", END.isoformat(), "--seed", "7"), env)
    if not cfg.zone("accounting", ds=END.isoformat()).exists():
        steps["ingest"] = spark_job(cfg, "ingest", "--ds", END.isoformat(), "--catch-up")
    for label, night in nights.items():
        before = days_before(night, 1)
        if not has_state(cfg, before):
            steps[f"rebuild_{label}"] = spark_job(cfg, "features", "--ds", before, "--rebuild")
    return cfg, users, nights, steps


def feature_history_profile(work: Path) -> dict:
    """The nightly feature stage for the same users after 90 and after 360 days of history.

    One simulation of 361 days serves both: the night on day 90 sees only the deliveries up to it (point in
    time), exactly as a platform that started 90 days earlier would. Each measured night starts from the
    state of the night before; the two nights are measured alternately, three times each, so that background
    load falls on both alike."""
    cfg, users, nights, steps = history_lake(work)
    earlier = kept_results("feature_history")
    # preparation reused from an earlier run keeps the figures it was measured with
    steps = {**earlier.get("steps", {}), **steps}
    runs: dict[str, list[dict]] = {label: [] for label in nights}
    for _ in track(range(3), "feature nights (90 and 360 days)", unit="pair"):
        for label, night in nights.items():
            runs[label].append(spark_job(cfg, "features", "--ds", night))
    delivered = {}
    for label, night in nights.items():
        accounting = pd.read_parquet(cfg.zone("accounting", ds=night))
        delivered[label] = {r.source: int(r.delivered) for r in accounting.itertuples()}
    medians = {label: statistics.median(r["seconds"] for r in rs) for label, rs in runs.items()}
    return {
        "users": users, "nights": nights, "delivered": delivered,
        "steps": {k: figures(v) for k, v in steps.items()},
        "runs": {label: [figures(r) for r in rs] for label, rs in runs.items()},
        "median_seconds": medians, "ratio": round(medians["360"] / medians["90"], 2),
        "steps_note": earlier.get("steps_note", ""),
    }


def engines_profile(work: Path) -> dict:
    """Spark against DuckDB per stage of the feature job, same lake, same night (sesame.bench_engines): on the
    100,000-user history lake, and on the 1,000,000-user lake once the night profile has run its night."""
    from sesame.bench_engines import compare

    cfg, users, nights, _ = history_lake(work)
    night = nights["360"]
    ensure_features(cfg, night)
    lakes = [{"users": users, "night": night, "stages": compare(cfg, night)}]
    big = night_lake(work)
    if big.cfg.zone("features", "daily", ds=big.night).exists() and has_state(big.cfg, big.before):
        lakes.append({"users": big.users, "night": big.night, "stages": compare(big.cfg, big.night)})
    return {"lakes": lakes}


def history_champion(cfg: Settings, night: str):
    """The champion of the history lake, trained there on the year before `night` if none is registered yet."""
    from sesame import training
    from sesame.registry import NoChampion, Registry

    ensure_features(cfg, night)
    try:
        return Registry(cfg.models).champion()
    except NoChampion:
        # a few observation dates are enough for a model; the lake holds a year, so the shortest window allowed
        os.environ["SESAME_PERFORMANCE_DAYS"] = "180"  # read by the training-set job too
        cfg = Settings(home=cfg.home, obs_step_days=28)
        os.environ["SESAME_HOME"] = str(cfg.home)  # the feature store definitions read it
        from sesame.night import dbt_features

        dbt_features(cfg, night, "bench", nights=training.build_training_set(cfg, night))
        training.fit_from_lake(cfg, night)
        return Registry(cfg.models).champion()


def scoring_profile(work: Path) -> dict:
    """Scoring the night's users with the champion: Spark (mapInPandas, the night's score job) against the
    same segmented scorecard in process, on the same features. A champion is trained on the lake first if none exists."""
    from sesame.bench_engines import best_of
    from sesame.spark import get_session
    from spark_jobs.score import score_frame

    cfg, _, nights, _ = history_lake(work)
    night = nights["360"]
    champion = history_champion(cfg, night)
    from sesame.features import night_features
    from spark_jobs.features import model_input

    features = night_features(cfg, night)
    rows = len(features)
    model = champion.load()

    def in_process() -> None:
        model.explain(features[champion.inputs], features["segment"].to_numpy())

    in_process_s = best_of(in_process, 3)
    job = spark_job(cfg, "score", "--ds", night)
    spark = get_session("sesame-bench-scoring", cfg)
    try:
        frame = model_input(spark, cfg, night).cache()
        frame.count()
        scored = score_frame(frame, champion.model_json, champion.version, champion.inputs)
        spark_s = best_of(lambda: scored.write.format("noop").mode("overwrite").save(), 3)
    finally:
        spark.stop()
    return {"rows": rows, "model_version": champion.version, "characteristics": len(champion.inputs),
            "in_process_seconds": round(in_process_s, 2), "spark_transform_seconds": round(spark_s, 2),
            "spark_job": figures(job)}


NIGHT_SIMULATED_DAYS = 91
# The simulator's volume knobs that give the target's sizing at 1,000,000 users: about 2.3 million payments and
# orders on the measured night (2.3 a user; 1.0 at the default activity) and 20 million social edges (20 a
# user; 5 at the default degree). Calibrated on 20,000 users.
SIZING_ACTIVITY, SIZING_CONTACTS = 2.4, 5.0


# Days of history ingested per catch-up pass: one pass over 90 days at the target's sizing would cache and
# shuffle 200 million records at once; a pass of 15 keeps each within memory and a few GB of spill.
CATCH_UP_DAYS = 15


@dataclass(frozen=True)
class NightLake:
    """A home simulated for one measured night: its sizes, and the night measured (the last simulated day, or
    an earlier one when fewer days of history are asked for)."""
    cfg: Settings
    users: int
    history: int
    simulated_days: int
    activity: float = 1.0
    contacts: float = 1.0

    def day(self, offset: int) -> str:
        first = END - dt.timedelta(days=self.simulated_days - 1)
        return (first + dt.timedelta(days=offset)).isoformat()

    @property
    def night(self) -> str:
        return self.day(self.history)

    @property
    def before(self) -> str:
        return self.day(self.history - 1)

    def catch_up_ends(self) -> list[str]:
        """The last day of each catch-up pass that ingests the history, CATCH_UP_DAYS a pass."""
        return [self.day(i) for i in range(CATCH_UP_DAYS - 1, self.history - 1, CATCH_UP_DAYS)] + [self.before]


def night_lake(work: Path) -> NightLake:
    """The 1,000,000-user home of 91 simulated days at the simulator's default volume."""
    users = int(os.environ.get("SESAME_BENCH_USERS", "1000000"))
    history = int(os.environ.get("SESAME_BENCH_NIGHT_HISTORY", "90"))
    return NightLake(Settings(home=work / f"night-{users}"), users, history, NIGHT_SIMULATED_DAYS)


def volume_lake(work: Path) -> NightLake:
    """The 1,000,000-user home at the target's sizing, simulated for SESAME_BENCH_VOLUME_HISTORY days of history
    (default 90) and the night."""
    users = int(os.environ.get("SESAME_BENCH_USERS", "1000000"))
    history = int(os.environ.get("SESAME_BENCH_VOLUME_HISTORY", "90"))
    # the history is in the home's name: a lake simulated for another history is a different lake
    return NightLake(Settings(home=work / f"night-{users}-volume-{history}d"), users, history, history + 1,
                     SIZING_ACTIVITY, SIZING_CONTACTS)


def measure_night(work: Path, lake: NightLake, profile: str) -> dict:
    """One whole night (`sesame night`: Airflow, ingest, checks, features, feature store, scoring, dbt, audit,
    publish, report) in `lake`'s home.

    The history up to the night before is ingested by catch-up passes and that night's windows and state
    rebuilt from it, as a platform adopted with history would start. The model is the history lake's champion
    (a scorecard is portable: bins and points); drift is computed but does not gate, because that model was
    developed on another population's year."""
    cfg, night, before = lake.cfg, lake.night, lake.before
    env = {**os.environ, "SESAME_HOME": str(cfg.home)}
    earlier = kept_results(profile)
    sizes = (lake.users, lake.history, lake.activity, lake.contacts)
    # preparation reused from an earlier run keeps the figures it was measured with
    same_lake = (earlier.get("users"), earlier.get("history_days"), earlier.get("activity", 1.0),
                 earlier.get("contacts", 1.0)) == sizes
    kept = earlier.get("steps", {}) if same_lake else {}
    steps: dict[str, dict] = {}
    if not (cfg.raw / "_simulation.json").exists():
        volume = [] if (lake.activity, lake.contacts) == (1.0, 1.0) else [
            "--activity", str(lake.activity), "--contacts", str(lake.contacts)]
        steps["simulate"] = measure(sesame_cli("simulate", "--users", str(lake.users), "--days",
                                               str(lake.simulated_days), "--end-ds", END.isoformat(),
                                               "--seed", "7", *volume), env)
    if not cfg.zone("accounting", ds=before).exists():
        passes = [spark_job(cfg, "ingest", "--ds", end, "--catch-up") for end in lake.catch_up_ends()
                  if not cfg.zone("accounting", ds=end).exists()]
        steps["ingest_history"] = {"seconds": round(sum(p["seconds"] for p in passes), 1),
                                   "peak_gb": max(p["peak_gb"] for p in passes)}
    if not has_state(cfg, before):
        steps["rebuild_night_before"] = spark_job(cfg, "features", "--ds", before, "--rebuild")
    if not (cfg.models / "registry.json").exists():
        from sesame.registry import Registry

        history_cfg, _, nights, _ = history_lake(work)
        source = history_champion(history_cfg, nights["360"])
        registry = Registry(cfg.models)
        registry.register(source.version, source.model_json, source.card,
                          (source.path / "card.html").read_text(encoding="utf-8"))
        registry.promote(source.version, reason=f"benchmark: the champion of {history_cfg.home.name}")
    measure(sesame_cli("setup"), env)
    started = time.time()
    run = measure(sesame_cli("night", "--ds", night, "--accept-drift"), env)
    logs = [p for p in cfg.run_logs(night).glob("*.json") if p.stat().st_mtime >= started]
    stages = json.loads(max(logs, key=lambda p: p.stat().st_mtime).read_text())["stages"]
    accounting = pd.read_parquet(cfg.zone("accounting"))
    tonight = accounting[accounting["ds"].astype(str) == night]
    known = accounting[accounting["ds"].astype(str) <= night]
    scored = pd.read_parquet(cfg.zone("scores", ds=night), columns=["user_id"])
    return {
        "users": lake.users, "history_days": lake.history, "simulated_days": lake.simulated_days,
        "activity": lake.activity, "contacts": lake.contacts, "night": night,
        "seconds": run["seconds"], "peak_gb": run["peak_gb"], "scored": len(scored),
        "stages": {s["stage"]: s["seconds"] for s in stages},
        "delivered": {r.source: int(r.delivered) for r in tonight.itertuples()},
        "social_edges_so_far": int(known.loc[known["source"] == "social_edges", "accepted"].sum()),
        "steps": {**kept, **{k: figures(v) for k, v in steps.items()}},
        "steps_note": earlier.get("steps_note", "") if kept else "",
    }


def night_profile(work: Path) -> dict:
    """One night for 1,000,000 users after 90 days of history (SESAME_BENCH_NIGHT_HISTORY: fewer), at the
    simulator's default volume."""
    return measure_night(work, night_lake(work), "night")


def night_volume_profile(work: Path) -> dict:
    """One night for 1,000,000 users at the target's sizing (2.3 million payments and orders, 20 million social
    edges) after 90 days of history (SESAME_BENCH_VOLUME_HISTORY: another length). Preparing its lake is
    hours on two cores: 91 days of deliveries, about 150 million payments and 60 million orders."""
    return measure_night(work, volume_lake(work), "night_volume")


def service_profile(work: Path) -> dict:
    """Single lookups against a 1,000,000-user snapshot over loopback (sesame.service.loadtest)."""
    from sesame.service.loadtest import RESULT_FILE, service_benchmark

    service_benchmark(work / "service")
    return json.loads(RESULT_FILE.read_text(encoding="utf-8"))


PROFILES = {"simulator": simulator_profile, "feature_history": feature_history_profile,
            "engines": engines_profile, "scoring": scoring_profile, "night": night_profile,
            "night_volume": night_volume_profile, "service": service_profile}


# ------------------------------------------------------------------ report

# the targets the issue sets, and the sizing of the 1,000,000-user night
NIGHT_MINUTES, NIGHT_GB, SIZING_EVENTS, SIZING_EDGES = 15, 12, 2.3e6, 20e6
HISTORY_RATIO_TARGET, ENGINES_RATIO_TARGET = 1.2, 3


def night_events(r: dict) -> int:
    """Payments and orders delivered on the measured night."""
    return r["delivered"].get("payments", 0) + r["delivered"].get("orders", 0)


def night_met(r: dict) -> bool:
    return r["seconds"] / 60 < NIGHT_MINUTES and r["peak_gb"] < NIGHT_GB


def night_at_sizing(r: dict) -> bool:
    """Whether the night was about as heavy as the target's sizing (within 5%)."""
    return night_events(r) >= 0.95 * SIZING_EVENTS and r["social_edges_so_far"] >= 0.95 * SIZING_EDGES


def worst_engine_ratio(lake: dict) -> tuple[str, float]:
    name = max(lake["stages"], key=lambda n: lake["stages"][n]["ratio"])
    return name, lake["stages"][name]["ratio"]


def _summary(results: dict[str, dict]) -> str:
    """One line per target: what was measured and whether it was met."""
    rows = []

    def row(target: str, measured: str, verdict: str | bool) -> None:
        if isinstance(verdict, bool):
            verdict = "met" if verdict else "not met"
        rows.append(f"| {target} | {measured} | {verdict} |")

    nights = [results[k] for k in ("night", "night_volume") if k in results]
    if nights:
        measured = "; ".join(
            f"after {r['history_days']} days, {night_events(r) / 1e6:.2f}M payments and orders, "
            f"{r['social_edges_so_far'] / 1e6:.1f}M edges: {r['seconds'] / 60:.1f} min, {r['peak_gb']:.2f} GB"
            for r in nights)
        complete = any(r["history_days"] >= 90 and night_at_sizing(r) for r in nights)
        verdict = ("met" if all(night_met(r) for r in nights) else "not met") + (
            "" if complete else " in each night measured; 90 days of history at the full sizing not measured together")
        row(f"one night, 1,000,000 users, under {NIGHT_MINUTES} min and {NIGHT_GB} GB", measured, verdict)
    if "feature_history" in results:
        ratio = results["feature_history"]["ratio"]
        row(f"feature job after 360 vs 90 days, at most {HISTORY_RATIO_TARGET}", f"{ratio:.2f}",
            ratio <= HISTORY_RATIO_TARGET)
    if "engines" in results:
        worst = [(lake["users"], *worst_engine_ratio(lake)) for lake in results["engines"]["lakes"]]
        text = "; ".join(f"{users:,} users: worst {ratio:.1f} ({name})" for users, name, ratio in worst)
        row(f"Spark/DuckDB per feature stage, at most {ENGINES_RATIO_TARGET}", text,
            all(ratio <= ENGINES_RATIO_TARGET for _, _, ratio in worst))
    if "service" in results:
        from sesame.service.loadtest import TARGET_P99_MS, target_met

        fixed = results["service"]["fixed_rate"]
        row(f"score service p99 under {TARGET_P99_MS:.0f} ms at 1,000 requests/s", f"{fixed['p99_ms']:.2f} ms",
            target_met(results["service"]))
    if not rows:
        return ""
    return "## Targets\n\n| target | measured | verdict |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def _simulator_section(r: dict) -> str:
    records = sum(r["rows"].values())
    return f"""## Simulator: {r['users']:,} users, one day of deliveries

| measure | value | target |
|---|---|---|
| wall time | {r['seconds']:.1f} s | under 5 minutes |
| peak memory (process tree) | {r['peak_gb']:.2f} GB | |
| records written | {records:,} | |
| throughput | {records / r['seconds']:,.0f} records/s | |

Rows per source: {', '.join(f'{k} {v:,}' for k, v in r['rows'].items())}. The first day of a simulation also
delivers a year of bill history and the whole social graph so far, so it is the heaviest day.
"""


def _steps_table(steps: dict[str, dict]) -> str:
    """The rows of a preparation table: step, wall time, peak memory."""
    return "\n".join(f"| {name} | {s['seconds']:.1f} s | {s['peak_gb']:.2f} GB |" for name, s in steps.items())


def _feature_history_section(r: dict) -> str:
    runs = r["runs"]
    seconds = {label: ", ".join(f"{x['seconds']:.1f}" for x in rs) for label, rs in runs.items()}
    lines = "\n".join(
        f"| {label} days | {r['nights'][label]} | {seconds[label]} | "
        f"{r['median_seconds'][label]:.1f} s | {max(x['peak_gb'] for x in runs[label]):.2f} GB | "
        f"{r['delivered'][label].get('payments', 0) + r['delivered'][label].get('orders', 0):,} |"
        for label in runs)
    steps = _steps_table(r["steps"])
    verdict = "met" if r["ratio"] <= HISTORY_RATIO_TARGET else "not met"
    return f"""## Nightly feature stage: {r['users']:,} users after 90 and after 360 days of history

The `features` Spark job of one night (spark-submit, local mode), starting from the night before's windows and
state. Target: the longer history costs at most 1.2 times as much.

| history | night | runs (s) | median | peak memory | payments + orders delivered that night |
|---|---|---|---|---|---|
{lines}

**Ratio 360/90: {r['ratio']:.2f}** (target at most 1.2: {verdict}).

Preparation (not part of the ratio): simulation, ingestion of the whole history in one Spark pass, and a
rebuild of each measured night's previous windows and state from the history (the first-run path, which
computes the daily aggregates of every past day in one pass). These come from the run that built the lake and are
kept when a later run reuses it. {r.get("steps_note", "")}

| step | wall time | peak memory |
|---|---|---|
{steps}
"""


def _engines_section(r: dict) -> str:
    tables = []
    for lake in r["lakes"]:
        lines = "\n".join(f"| {name} | {s['rows']:,} | {s['spark_seconds']:.2f} s | {s['duckdb_seconds']:.2f} s | "
                          f"{s['ratio']:.1f} |" for name, s in lake["stages"].items())
        _, worst = worst_engine_ratio(lake)
        verdict = "met" if worst <= ENGINES_RATIO_TARGET else "not met"
        tables.append(f"""### {lake['users']:,} users, the night {lake['night']}

| stage | rows out | Spark | DuckDB | Spark/DuckDB |
|---|---|---|---|---|
{lines}

Worst ratio: {worst:.1f} (target at most {ENGINES_RATIO_TARGET}: {verdict}).
""")
    return f"""## Spark against DuckDB per stage of the nightly feature job

Each stage computed by the project's Spark transform and by the same logic in DuckDB SQL
(`sesame/bench_engines.py`), on the same Parquet lake; the two results are compared row by row before
timing; best of three runs each, in one process (Spark local mode, warm session, 2 cores). Target: Spark at most
3 times DuckDB.

Tuned so far, from measuring these stages: ingest and the daily aggregates write one file per delivery day
instead of one per shuffle partition (a year of a source was 2,888 files, now 361); the driver lists a zone's day
folders itself instead of starting a Spark job for it; contacts and the court list are night state instead of a
read of every delivery ever made; PageRank joins the rank vector as a broadcast and materializes every 2
iterations instead of 5 (every 10 ran the driver out of memory). Before these, on the 100,000-user lake, Spark
took 19.2 s for the graph, 11.7 s for the social stage and 3.5 s for the windows (that run shared the cores with
a simulation at low priority). {_engines_verdict(r["lakes"])}

""" + "\n".join(tables)


def _engines_verdict(lakes: list[dict]) -> str:
    worst = {lake["users"]: worst_engine_ratio(lake) for lake in lakes}
    if all(ratio <= ENGINES_RATIO_TARGET for _, ratio in worst.values()):
        return ""
    duck = [s["duckdb_seconds"] for lake in lakes for s in lake["stages"].values()]
    worst_text = ", ".join(f"{ratio:.1f} ({name}) at {users:,} users" for users, (name, ratio) in worst.items())
    return f"""

**Target not met**: the worst ratio is {worst_text}. DuckDB finishes each stage here in {min(duck):.2f} to
{max(duck):.2f} s, while Spark spends a fixed few tenths of a second on any query (planning, code generation,
scheduling tasks) before its data matters; the `daily` stage is little else. So the ratio falls as the data grows,
but not to 3 with 2 cores. PageRank is worst because it pays that fixed cost in every iteration (a join and an
aggregation each). What would meet it: for the graph, building the 90-day transfer graph in Spark and iterating
PageRank over it as a sparse matrix on the driver (a graph of a million nodes fits in memory many times over);
for the other stages, more rows per core than this machine holds (Spark's cost per query is fixed, DuckDB's grows
with the rows), or running the nightly aggregates in DuckDB where one machine suffices, keeping Spark for the
cluster path."""


def _scoring_section(r: dict) -> str:
    per_s = lambda s: f"{r['rows'] / s:,.0f} rows/s"  # noqa: E731
    return f"""## Scoring throughput: {r['rows']:,} users, champion with {r['characteristics']} characteristics

| how | wall time | throughput |
|---|---|---|
| in process (`Scorecard.explain`, pandas) | {r['in_process_seconds']:.2f} s | {per_s(r['in_process_seconds'])} |
| Spark transform (`score_frame`, mapInPandas, warm session, local mode) | {r['spark_transform_seconds']:.2f} s | {per_s(r['spark_transform_seconds'])} |
| the night's score job (spark-submit: start, read, score, write) | {r['spark_job']['seconds']:.1f} s | {per_s(r['spark_job']['seconds'])} |

Peak memory of the score job: {r['spark_job']['peak_gb']:.2f} GB.
"""


def _night_section(r: dict) -> str:
    from sesame.feature_store import feature_refs

    stages = "\n".join(f"| {name} | {seconds:.1f} s |" for name, seconds in r["stages"].items())
    steps = _steps_table(r["steps"])
    events = night_events(r)
    minutes, gb = r["seconds"] / 60, r["peak_gb"]
    verdict = "met" if night_met(r) else "not met"
    history = r["history_days"]
    longest = max(r["stages"], key=r["stages"].get)
    caveat = ""
    if history < 90:
        ingest = r["steps"].get("ingest_history", {}).get("seconds")
        took = (f" Ingesting them took {ingest:,.0f} s by catch-up ({ingest / history:,.0f} s a day; the "
                "first delivery carries the whole social graph and a year of bills), so 90 days of this night's "
                "volume are hours of preparation on this machine." if ingest else "")
        caveat = (f"\n**After {history} days of history, not the 90 the target names.**{took} What more "
                  "history changes in a night: ingestion checks tonight's keys against those accepted in the "
                  f"last {Settings().dedupe_lookback_days} days ({history} here), the 90-day transfer graph holds "
                  f"{history} days of transfers, and the 90- and 365-day windows and the state tables are "
                  "fuller. The `night` profile measures a whole night after 90 days (at the simulator's default "
                  "volume), and the feature-stage profile below the nightly feature job after 90 and after 360 "
                  "days.\n")
    edges = r["social_edges_so_far"]
    at_sizing = night_at_sizing(r)
    knobs = r.get("activity", 1.0), r.get("contacts", 1.0)
    volume = "" if knobs == (1.0, 1.0) else f" with `--activity {knobs[0]:g} --contacts {knobs[1]:g}`"
    return f"""## One night for {r['users']:,} users after {history} days of history{
" at the target's sizing" if at_sizing else ""}
{caveat}
`sesame night --ds {r['night']} --accept-drift` (Airflow `dags test`, Spark local mode) from the night before's
windows and state: {r['scored']:,} users scored; {events:,} payments and orders and
{r['delivered'].get('users', 0):,} user profiles delivered that night
({', '.join(f'{k} {v:,}' for k, v in r['delivered'].items())}); {r['social_edges_so_far']:,} social edges
delivered so far. The target's sizing assumes about 2.3 million payments and orders that night and 20 million
social edges: the simulation{volume} gives {events / 2.3e6:.0%} and {edges / 20e6:.0%} of that{
"" if at_sizing else (", so this night is lighter than the target's and does not show it met at that size; "
                      "the `night_volume` profile measures a night at that sizing")}.

| measure | value | target |
|---|---|---|
| wall time, end to end | {minutes:.1f} min | under 15 minutes |
| peak memory (PSS of the process tree) | {gb:.2f} GB | under 12 GB |

Target: {verdict} for this night. Stages, from the night's run log:

| stage | wall time |
|---|---|
{stages}

The longest stage is {longest} ({r['stages'][longest]:.0f} s, {r['stages'][longest] / r['seconds']:.0%} of the
night); the rest of the wall time outside the stages is Airflow starting and finishing the run. `feature_store`
is Feast writing the night into the SQLite online store (six feature views; Feast keeps one row per user and
feature, {len(feature_refs())} per user, each converted and written in Python).

Preparation (not part of the night): simulation of {r.get("simulated_days", NIGHT_SIMULATED_DAYS)} days{volume}, \
ingestion of the history by
catch-up, rebuild of the night before's windows and state. The model is the champion trained on the
100,000-user history lake (the scoring profile), copied into this home; drift is computed but not gated
(`--accept-drift`), since that model was developed on another population. {r.get("steps_note", "")}

| step | wall time | peak memory |
|---|---|---|
{steps}
"""


def _service_section(r: dict) -> str:
    from sesame.service.loadtest import render_section

    return render_section(r)


SECTIONS = {"simulator": _simulator_section, "night": _night_section, "night_volume": _night_section,
            "feature_history": _feature_history_section,
            "engines": _engines_section, "scoring": _scoring_section, "service": _service_section}

NOT_MEASURED = {
    "night": "One night for 1,000,000 users after 90 days of history (target: under 15 minutes, under 12 GB).",
    "night_volume": "One night for 1,000,000 users at the target's sizing (2.3 million payments and orders, "
                    "20 million social edges).",
    "engines": "The same feature aggregates in DuckDB SQL, Spark/DuckDB per stage (target at most 3).",
    "scoring": "Scoring throughput in Spark against in-process scikit-learn.",
}


def render() -> str:
    results = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    m = machine()
    parts = [f"""# Benchmarks

Written by `make bench` (`python -m sesame.bench [profile ...]`). Machine: {m['cpus']} cores,
{m['memory_gb']} GB, Python {m['python']}, {m['platform']}.
Versions: {', '.join(f'{k} {v}' for k, v in m['versions'].items())}.
"""]
    summary = _summary(results)
    if summary:
        parts.append(summary)
    for name, section in SECTIONS.items():
        if name in results:
            text = section(results[name])
            parts.append(text if "Measured on" in text else f"{text}\nMeasured on {results[name]['measured_on']}.\n")
    missing = [text for key, text in NOT_MEASURED.items() if key not in results]
    if missing:
        parts.append("## Not measured yet\n\n" + "\n".join(f"- {t}" for t in missing) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run benchmark profiles and write BENCHMARKS.md.")
    parser.add_argument("profiles", nargs="*", metavar="profile", help=f"any of {', '.join(PROFILES)} (default: all)")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite BENCHMARKS.md from the figures kept in benchmarks/*.json")
    args = parser.parse_args(argv)
    if args.render:
        (REPO_ROOT / "BENCHMARKS.md").write_text(render(), encoding="utf-8")
        return 0
    unknown = [p for p in args.profiles if p not in PROFILES]
    if unknown:
        parser.error(f"unknown profile {', '.join(unknown)}; choose from {', '.join(PROFILES)}")
    keep = os.environ.get("SESAME_BENCH_DIR")
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="sesame-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    try:
        for name in args.profiles or list(PROFILES):
            result = PROFILES[name](work)
            result["measured_on"] = dt.date.today().isoformat()
            (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    text = render()
    (REPO_ROOT / "BENCHMARKS.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
