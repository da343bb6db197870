"""`make bench`: run the benchmark profiles and write BENCHMARKS.md (machine, versions, wall time, peak memory,
throughput).

Every step runs as a child process whose whole process tree (the Spark driver JVM, its Python workers) is
sampled for resident memory, so each figure is that step's own. Each profile keeps its measured figures in
benchmarks/<profile>.json; BENCHMARKS.md is rendered from all of them, so one profile can be re-run alone:

    python -m sesame.bench                        # every profile
    python -m sesame.bench feature_history        # one profile; the others keep their last figures

Profiles: `simulator` (1,000,000 users, one day), `feature_history` (the nightly feature job for 100,000 users
after 90 and after 360 days), `engines` (Spark against DuckDB per stage of that job), `scoring` (Spark against
in-process scoring), `service` (the score service under load). Three of them share one simulated and ingested
lake of 361 days.

SESAME_BENCH_DIR keeps the simulated data between runs (default: a temporary folder, removed afterwards);
SESAME_BENCH_USERS and SESAME_BENCH_HISTORY_USERS change the sizes.
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
from importlib import metadata
from pathlib import Path

import pandas as pd
import psutil

from sesame.config import REPO_ROOT, Settings
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
    if not (cfg.lake / "accounting" / f"ds={END.isoformat()}").exists():
        steps["ingest"] = spark_job(cfg, "ingest", "--ds", END.isoformat(), "--catch-up")
    for label, night in nights.items():
        before = (dt.date.fromisoformat(night) - dt.timedelta(days=1)).isoformat()
        if not cfg.zone("features", "state", "bill_dpd", ds=before).exists():
            steps[f"rebuild_{label}"] = spark_job(cfg, "features", "--ds", before, "--rebuild")
    return cfg, users, nights, steps


def feature_history_profile(work: Path) -> dict:
    """The nightly feature stage for the same users after 90 and after 360 days of history.

    One simulation of 361 days serves both: the night on day 90 sees only the deliveries up to it (point in
    time), exactly as a platform that started 90 days earlier would. Each measured night starts from the
    state of the night before; the two nights are measured alternately, three times each, so that background
    load falls on both alike."""
    cfg, users, nights, steps = history_lake(work)
    earlier = RESULTS / "feature_history.json"
    if earlier.exists():  # preparation reused from an earlier run keeps the figures it was measured with
        steps = {**json.loads(earlier.read_text()).get("steps", {}), **steps}
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
        "steps": {k: {"seconds": v["seconds"], "peak_gb": v["peak_gb"]} for k, v in steps.items()},
        "runs": {label: [{"seconds": r["seconds"], "peak_gb": r["peak_gb"]} for r in rs] for label, rs in runs.items()},
        "median_seconds": medians, "ratio": round(medians["360"] / medians["90"], 2),
    }


def engines_profile(work: Path) -> dict:
    """Spark against DuckDB per stage of the feature job, same lake, same night (sesame.bench_engines)."""
    from sesame.bench_engines import compare

    cfg, users, nights, _ = history_lake(work)
    night = nights["360"]
    if not cfg.zone("features", "state", "bill_dpd", ds=night).exists():
        spark_job(cfg, "features", "--ds", night)
    return {"users": users, "night": night, "stages": compare(cfg, night)}


def scoring_profile(work: Path) -> dict:
    """Scoring the night's users with the champion: Spark (mapInPandas, the night's score job) against the
    same Scorecard in process, on the same features. A champion is trained on the lake first if none exists."""
    from sesame import training
    from sesame.bench_engines import best_of
    from sesame.registry import NoChampion, Registry
    from sesame.spark import get_session
    from spark_jobs.score import score_frame

    cfg, _, nights, _ = history_lake(work)
    night = nights["360"]
    if not cfg.zone("features", "user_features", ds=night).exists():
        spark_job(cfg, "features", "--ds", night)
    cfg = Settings(home=cfg.home, obs_step_days=28)  # a few observation dates are enough for a model
    try:
        champion = Registry(cfg.models).champion()
    except NoChampion:
        os.environ["SESAME_HOME"] = str(cfg.home)  # the feature store definitions read it
        training.build_training_set(cfg, night)
        training.fit_from_lake(cfg, night)
        champion = Registry(cfg.models).champion()
    features = pd.read_parquet(cfg.zone("features", "user_features", ds=night))
    rows = len(features)
    model = champion.load()

    def in_process() -> None:
        model.explain(features[champion.inputs])

    in_process_s = best_of(in_process, 3)
    job = spark_job(cfg, "score", "--ds", night)
    spark = get_session("sesame-bench-scoring", cfg)
    try:
        frame = spark.read.parquet(str(cfg.zone("features", "user_features", ds=night))).cache()
        frame.count()
        scored = score_frame(frame, champion.model_json, champion.version, champion.inputs)
        spark_s = best_of(lambda: scored.write.format("noop").mode("overwrite").save(), 3)
    finally:
        spark.stop()
    return {"rows": rows, "model_version": champion.version, "characteristics": len(champion.inputs),
            "in_process_seconds": round(in_process_s, 2), "spark_transform_seconds": round(spark_s, 2),
            "spark_job": {"seconds": job["seconds"], "peak_gb": job["peak_gb"]}}


def service_profile(work: Path) -> dict:
    """Single lookups against a 1,000,000-user snapshot over loopback (sesame.service.loadtest)."""
    from sesame.service.loadtest import RESULT_FILE, service_benchmark

    service_benchmark(work / "service")
    return json.loads(RESULT_FILE.read_text(encoding="utf-8"))


PROFILES = {"simulator": simulator_profile, "feature_history": feature_history_profile,
            "engines": engines_profile, "scoring": scoring_profile, "service": service_profile}


# ------------------------------------------------------------------ report

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


def _feature_history_section(r: dict) -> str:
    runs = r["runs"]
    seconds = {label: ", ".join(f"{x['seconds']:.1f}" for x in rs) for label, rs in runs.items()}
    lines = "\n".join(
        f"| {label} days | {r['nights'][label]} | {seconds[label]} | "
        f"{r['median_seconds'][label]:.1f} s | {max(x['peak_gb'] for x in runs[label]):.2f} GB | "
        f"{r['delivered'][label].get('payments', 0) + r['delivered'][label].get('orders', 0):,} |"
        for label in runs)
    steps = "\n".join(f"| {name} | {s['seconds']:.1f} s | {s['peak_gb']:.2f} GB |" for name, s in r["steps"].items())
    verdict = "met" if r["ratio"] <= 1.2 else "not met"
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
    lines = "\n".join(f"| {name} | {s['rows']:,} | {s['spark_seconds']:.2f} s | {s['duckdb_seconds']:.2f} s | "
                      f"{s['ratio']:.1f} |" for name, s in r["stages"].items())
    worst = max(s["ratio"] for s in r["stages"].values())
    return f"""## Spark against DuckDB per stage: {r['users']:,} users, the night {r['night']}

Each stage of the nightly feature job computed by the project's Spark transform and by the same logic in DuckDB
SQL (`sesame/bench_engines.py`), on the same Parquet lake; the two results are compared row by row before
timing; best of three runs each, in one process (Spark local mode, warm session). Target: Spark at most 3 times
DuckDB.

| stage | rows out | Spark | DuckDB | Spark/DuckDB |
|---|---|---|---|---|
{lines}

Worst ratio: {worst:.1f} (target at most 3: {"met" if worst <= 3 else "not met"}).
"""


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


def _service_section(r: dict) -> str:
    from sesame.service.loadtest import render_section

    return render_section(r)


SECTIONS = {"simulator": _simulator_section, "feature_history": _feature_history_section,
            "engines": _engines_section, "scoring": _scoring_section, "service": _service_section}

NOT_MEASURED = {
    "night_1m": "One night for 1,000,000 users after 90 days of history (target: under 15 minutes, under 12 GB).",
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
    args = parser.parse_args(argv)
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
