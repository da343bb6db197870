"""The benchmark profiles: each measures one thing (machine, wall time, peak memory, throughput) and returns the
figures a profile keeps in benchmarks/<profile>.json. Rendering BENCHMARKS.md from them is benchmarks.render's;
`python -m benchmarks` runs profiles, keeps their figures and renders.

Every step runs as a child process whose whole process tree (the Spark driver JVM, its Python workers) is
sampled for resident memory, so each figure is that step's own. Each profile keeps its measured figures in
benchmarks/<profile>.json; BENCHMARKS.md is rendered from all of them, so one profile can be re-run alone:

    python -m benchmarks                          # every profile
    python -m benchmarks feature_history          # one profile; the others keep their last figures

Profiles: `simulator` (1,000,000 users, one day), `night` (one whole night for 1,000,000 users after 90 days of
history), `night_volume` (the same at the target's sizing), `feature_history` (the
nightly feature job for 100,000 users after 90 and after 360 days), `engines` (Spark against DuckDB per stage of
that job), `scoring` (Spark against in-process scoring), `service` (the
score service under load). `feature_history`, `engines` and `scoring` share one simulated and ingested lake of
361 days for 100,000 users; `night` (and `engines`, once `night` has run) a 1,000,000-user lake of 91 days;
`night_volume` its own lake, simulated with `--activity 2.4 --contacts 5`; `catch_up_year` a lake of a year at that
volume for 100,000 users (SESAME_BENCH_YEAR_USERS).

SESAME_BENCH_DIR keeps the simulated data between runs (default: a temporary folder, removed afterwards);
SESAME_BENCH_USERS and SESAME_BENCH_HISTORY_USERS change the sizes; SESAME_BENCH_NIGHT_HISTORY measures the
1,000,000-user night after fewer days of history, SESAME_BENCH_VOLUME_HISTORY the sized night's (both 90).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil

from benchmarks import RESULTS, with_spark_conf
from benchmarks.event_log import task_account
from benchmarks.targets import NIGHT_SIMULATED_DAYS, catch_up_minutes
from sesame.config import Settings, days_before, ds_partitions
from sesame.online_store import local_redis
from sesame.progress import track

END = dt.date(2026, 11, 23)


# Reading a process's PSS walks its memory map in the kernel: about 0.1 s for a Spark driver (a JVM reserves
# gigabytes of address space), which sampled every 0.5 s took a fifth of one of the two cores from the job measured.
# Samples are spaced by at least this many times what the last one cost, so the sampler takes at most a few percent.
SAMPLE_SPACING = 25


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run a command; its wall time and the peak memory (PSS) of its whole process tree, sampled every 0.5 s or
    more (SAMPLE_SPACING)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        wait = 0.5
        while not done.wait(wait):
            began = time.perf_counter()
            try:
                tree = [root, *root.children(recursive=True)]
                # proportional set size: pages shared by forked Python workers counted once, not per worker
                peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            wait = max(0.5, SAMPLE_SPACING * (time.perf_counter() - began))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed (exit {proc.returncode}):\n{output[-4000:]}")
    return {"seconds": round(wall, 1), "peak_gb": round(peak / 1024**3, 2), "output": output}


def figures(result: dict) -> dict:
    """What a profile keeps of a measured step: its wall time and peak memory (not its output)."""
    return {"seconds": result["seconds"], "peak_gb": result["peak_gb"]}


def job_steps(output: str) -> dict:
    """What a Spark job printed of its steps (a line `{"steps": {...}, "in_steps": ...}`: spark_jobs/features.py):
    {"steps": the wall time of each step, "in_steps": the time while any step ran}, or nothing for a job that
    prints none."""
    for line in reversed(output.splitlines()):
        if line.startswith('{"steps"'):
            return json.loads(line)
    return {}


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


def ensure_ingested(cfg: Settings, night: str) -> None:
    """Ingest the night's own deliveries unless they are (a lake prepared up to the night before has not)."""
    if not cfg.zone("accounting", ds=night).exists():
        spark_job(cfg, "ingest", "--ds", night)


def ensure_features(cfg: Settings, night: str) -> None:
    """Run the night's feature job unless it has run (its feature table is written last, after the daily
    aggregates, windows and state), then dbt's features unless they are there."""
    ensure_ingested(cfg, night)
    if not cfg.zone("features", "user_features", ds=night).exists():
        spark_job(cfg, "features", "--ds", night)
    if not cfg.zone("features", "dbt_user_features", ds=night).exists():
        from sesame.night import dbt_features

        # dbt's features need the home's user-key secret, which `sesame setup` writes once; the settings are read
        # again after it, as they read the secret's file when made
        measure(sesame_cli("setup"), {**os.environ, "SESAME_HOME": str(cfg.home)})
        dbt_features(dataclasses.replace(cfg), night, "bench")


def history_users() -> int:
    return int(os.environ.get("SESAME_BENCH_HISTORY_USERS", "100000"))


def history_home(work: Path) -> Path:
    return work / f"history-{history_users()}"


def history_lake(work: Path) -> tuple[Settings, int, dict[str, str], dict[str, dict]]:
    """A simulated and ingested lake of 361 days for the history profiles, with the windows and state of the
    night before each measured night rebuilt from the history (the first-run path). Reused when present."""
    users = history_users()
    cfg = Settings(home=history_home(work))
    env = {**os.environ, "SESAME_HOME": str(cfg.home)}
    first = END - dt.timedelta(days=HISTORY_DAYS - 1)
    nights = {"90": (first + dt.timedelta(days=89)).isoformat(), "360": END.isoformat()}
    steps: dict[str, dict] = {}
    if not (cfg.raw / "_simulation.json").exists():
        steps["simulate"] = measure(
            sesame_cli(
                "simulate",
                "--users",
                str(users),
                "--days",
                str(HISTORY_DAYS),
                "--end-ds",
                END.isoformat(),
                "--seed",
                "7",
            ),
            env,
        )
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
        "users": users,
        "nights": nights,
        "delivered": delivered,
        "steps": {k: figures(v) for k, v in steps.items()},
        "runs": {label: [figures(r) for r in rs] for label, rs in runs.items()},
        "median_seconds": medians,
        "ratio": round(medians["360"] / medians["90"], 2),
        "steps_note": earlier.get("steps_note", ""),
    }


def engines_profile(work: Path) -> dict:
    """Spark against DuckDB per stage of the feature job, same lake, same night (benchmarks.engines): on each
    1,000,000-user lake whose night before is prepared (the `night` and `night_volume` profiles' lakes; the
    night's own features are made first if its night has not run), and on the 100,000-user history lake when it
    exists or no larger lake is ready. Lakes not measured this time keep their last figures, dated."""
    from benchmarks.engines import compare

    today = dt.date.today().isoformat()
    lakes = []
    for label, lake in (("night", night_lake(work)), ("night_volume", volume_lake(work))):
        if has_state(lake.cfg, lake.before):
            ensure_features(lake.cfg, lake.night)
            stages = compare(lake.cfg, lake.night)
            lakes.append(
                {"users": lake.users, "lake": label, "night": lake.night, "stages": stages, "measured_on": today}
            )
    if not lakes or history_home(work).exists():
        cfg, users, nights, _ = history_lake(work)
        ensure_features(cfg, nights["360"])
        stages = compare(cfg, nights["360"])
        lakes.insert(
            0, {"users": users, "lake": "history", "night": nights["360"], "stages": stages, "measured_on": today}
        )
    measured = {(lake["users"], lake.get("lake")) for lake in lakes}
    earlier = kept_results("engines")
    kept = [
        {**lake, "measured_on": lake.get("measured_on", earlier.get("measured_on"))}
        for lake in earlier.get("lakes", [])
        if (lake["users"], lake.get("lake")) not in measured
    ]
    return {"lakes": sorted(kept + lakes, key=lambda lake: (lake["users"], lake.get("lake") or ""))}


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
    from benchmarks.engines import best_of
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
    return {
        "rows": rows,
        "model_version": champion.version,
        "characteristics": len(champion.inputs),
        "in_process_seconds": round(in_process_s, 2),
        "spark_transform_seconds": round(spark_s, 2),
        "spark_job": figures(job),
    }


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


def volume_lake(work: Path, users: int | None = None, history: int | None = None) -> NightLake:
    """The 1,000,000-user home at the target's sizing, simulated for SESAME_BENCH_VOLUME_HISTORY days of history
    (default 90) and the night; `users` and `history` give another lake of the same volume per user."""
    users = users or int(os.environ.get("SESAME_BENCH_USERS", "1000000"))
    history = history or int(os.environ.get("SESAME_BENCH_VOLUME_HISTORY", "90"))
    # the history is in the home's name: a lake simulated for another history is a different lake
    return NightLake(
        Settings(home=work / f"night-{users}-volume-{history}d"),
        users,
        history,
        history + 1,
        SIZING_ACTIVITY,
        SIZING_CONTACTS,
    )


def simulate_lake(lake: NightLake, env: dict[str, str]) -> dict:
    """Simulate the lake's days at its volume (seed 7, ending on END)."""
    volume = (
        []
        if (lake.activity, lake.contacts) == (1.0, 1.0)
        else ["--activity", str(lake.activity), "--contacts", str(lake.contacts)]
    )
    days = ["--users", str(lake.users), "--days", str(lake.simulated_days), "--end-ds", END.isoformat()]
    return measure(sesame_cli("simulate", *days, "--seed", "7", *volume), env)


def catch_up(cfg: Settings, ends: list[str]) -> dict[str, dict]:
    """Ingest a home's history by catch-up passes (`ingest --catch-up`), one ending on each of `ends`; the figures
    of each pass run, by the pass's last day (passes already done are skipped)."""
    return {
        end: figures(spark_job(cfg, "ingest", "--ds", end, "--catch-up"))
        for end in ends
        if not cfg.zone("accounting", ds=end).exists()
    }


def replay_home(lake: NightLake, first: str) -> Settings:
    """A home to ingest the lake's deliveries again from the day `first`: the lake's raw deliveries and its
    validated days before `first` are links into the lake (read, never written), its accounting of those days a
    copy."""
    cfg = Settings(home=lake.cfg.home.with_name(f"{lake.cfg.home.name}-replay"))
    shutil.rmtree(cfg.home, ignore_errors=True)
    cfg.raw.parent.mkdir(parents=True)
    cfg.raw.symlink_to(lake.cfg.raw, target_is_directory=True)
    for source in (p.name for p in lake.cfg.zone("validated").iterdir() if p.is_dir()):
        cfg.zone("validated", source).mkdir(parents=True)
        for day in ds_partitions(lake.cfg.zone("validated", source)):
            if day < first:
                link = cfg.zone("validated", source, ds=day)
                link.symlink_to(lake.cfg.zone("validated", source, ds=day), target_is_directory=True)
    for day in ds_partitions(lake.cfg.zone("accounting")):
        if day < first:
            shutil.copytree(lake.cfg.zone("accounting", ds=day), cfg.zone("accounting", ds=day))
    return cfg


def check_same_accounting(replayed: Settings, lake: NightLake, first: str, last: str) -> int:
    """Raise unless the replay accounts for every record of the days first..last exactly as the lake's own catch-up
    did (delivered, accepted, quarantined and duplicates per source and day); returns the records delivered."""
    columns = ["ds", "source", "delivered", "accepted", "quarantined", "duplicates"]
    ours = pd.read_parquet(replayed.zone("accounting"))[columns]
    theirs = pd.read_parquet(lake.cfg.zone("accounting"))[columns]
    ours, theirs = (
        f[(f["ds"].astype(str) >= first) & (f["ds"].astype(str) <= last)].astype({"ds": str}) for f in (ours, theirs)
    )
    key = ["ds", "source"]
    ours, theirs = (f.sort_values(key).reset_index(drop=True) for f in (ours, theirs))
    if not ours.equals(theirs):
        raise AssertionError(f"the replay of {first}..{last} accounts differently from the lake's catch-up")
    return int(ours["delivered"].sum())


def catch_up_profile(work: Path) -> dict:
    """Catch-up at the target's sizing: the `night_volume` lake's 90 days of history (1,000,000 users, about 2.3
    million payments and orders a day) ingested by passes of CATCH_UP_DAYS days. The lake is ingested once, when
    it is made; a lake already ingested is ingested again whole in a home that shares its deliveries
    (`replay_home`), and the replay must account for every record exactly as the lake's catch-up did."""
    return measure_catch_up(volume_lake(work), "catch_up")


# The year's catch-up is measured at a tenth of the target's users: a year of deliveries at the target's sizing is
# about 120 GB of raw files (330 MB a delivery day, most of it the daily profile snapshot), hours to simulate.
YEAR_USERS = 100_000


def catch_up_year_profile(work: Path) -> dict:
    """Catch-up of a year: 365 days of history at the target's volume per user (`--activity 2.4 --contacts 5`) for
    SESAME_BENCH_YEAR_USERS users (default YEAR_USERS), ingested by passes of CATCH_UP_DAYS days as `catch_up`
    ingests 90: whether a pass costs the same at the end of a year as after its first 60 days (each day is checked
    against 60 days of earlier keys, so a pass should not grow with the history behind it)."""
    users = int(os.environ.get("SESAME_BENCH_YEAR_USERS", str(YEAR_USERS)))
    return measure_catch_up(volume_lake(work, users, 365), "catch_up_year")


def measure_catch_up(lake: NightLake, profile: str) -> dict:
    """A lake's history ingested by catch-up passes (`catch_up_profile`); passes not run this time keep the
    figures `profile` kept for them."""
    env = {**os.environ, "SESAME_HOME": str(lake.cfg.home)}
    if not (lake.cfg.raw / "_simulation.json").exists():
        simulate_lake(lake, env)
    ends = lake.catch_up_ends()
    replayed, records = None, None
    if lake.cfg.zone("accounting", ds=lake.before).exists():
        replayed = replay_home(lake, lake.day(0))
        try:
            measured = catch_up(replayed, ends)
            records = check_same_accounting(replayed, lake, lake.day(0), lake.before)
        finally:
            shutil.rmtree(replayed.home, ignore_errors=True)
    else:
        measured = catch_up(lake.cfg, ends)
    earlier = kept_results(profile).get("passes", {})
    passes = {}
    for i, end in enumerate(ends):
        first = lake.day(0) if i == 0 else days_before(ends[i - 1], -1)
        figures_of = measured.get(end) or earlier.get(end)
        if figures_of:
            days = (dt.date.fromisoformat(end) - dt.date.fromisoformat(first)).days + 1
            passes[end] = {**figures_of, "first_day": first, "days": days}
    return {
        "users": lake.users,
        "history_days": lake.history,
        "activity": lake.activity,
        "contacts": lake.contacts,
        "pass_days": CATCH_UP_DAYS,
        "passes": passes,
        "complete": len(passes) == len(ends),
        "replayed": replayed is not None,
        "records": records,
        "driver_memory": lake.cfg.spark_driver_memory,
        "lookback_days": lake.cfg.dedupe_lookback_days,
        "note": kept_results(profile).get("note", ""),
    }


def catch_up_pass_profile(work: Path) -> dict:
    """The `catch_up` lake's last pass (15 days, each checked against 60 days of earlier keys) run again on its
    own, in a home that shares the lake's deliveries and earlier validated days (`replay_home`): minutes
    instead of the hour the 90 days take, so that a change to ingestion is measured against the same pass measured
    with the lake. The pass must account for every record exactly as it did then."""
    lake = volume_lake(work)
    ends = lake.catch_up_ends()
    if not lake.cfg.zone("accounting", ds=lake.before).exists():
        catch_up(lake.cfg, ends)
    first, end = days_before(ends[-2], -1), ends[-1]
    cfg = replay_home(lake, first)
    try:
        run = figures(spark_job(cfg, "ingest", "--ds", end, "--catch-up"))
        records = check_same_accounting(cfg, lake, first, end)
    finally:
        shutil.rmtree(cfg.home, ignore_errors=True)
    whole = kept_results("catch_up")
    earlier = whole.get("passes", {}).get(end)
    return {
        "users": lake.users,
        "first_day": first,
        "last_day": end,
        "days": (dt.date.fromisoformat(end) - dt.date.fromisoformat(first)).days + 1,
        **run,
        "with_the_lake": earlier,
        "lake_catch_up_minutes": round(catch_up_minutes(whole), 1) if whole.get("complete") else None,
        "records": records,
        "note": kept_results("catch_up_pass").get("note", ""),
    }


def features_volume_profile(work: Path) -> dict:
    """The nightly `features` Spark job alone at the target's sizing: the `night_volume` lake's night, its
    deliveries ingested, from the night before's windows and state (rebuilt from the history when missing), as
    the night's `features` stage runs it (spark-submit, local mode, the default driver). The night's own daily
    tables are removed first, so that each run makes them as the night does."""
    lake = volume_lake(work)
    cfg = lake.cfg
    steps = {}
    if not has_state(cfg, lake.before):
        catch_up(cfg, lake.catch_up_ends())
        steps["rebuild_night_before"] = figures(spark_job(cfg, "features", "--ds", lake.before, "--rebuild"))
    ensure_ingested(cfg, lake.night)
    runs = []
    for _ in range(int(os.environ.get("SESAME_BENCH_FEATURE_RUNS", "1"))):
        for table in ("daily", "daily_transfers"):
            shutil.rmtree(cfg.zone("features", table, ds=lake.night), ignore_errors=True)
        logs = work / "event-logs" / f"features-{len(runs) + 1}"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        run = spark_job(logged_events(cfg, logs), "features", "--ds", lake.night)
        runs.append({**figures(run), **job_steps(run["output"]), "spark": task_account(logs)})
    earlier = kept_results("features_volume")
    return {
        "users": lake.users,
        "history_days": lake.history,
        "night": lake.night,
        "runs": runs,
        "steps": {**earlier.get("steps", {}), **steps},
        "previous_stage_seconds": PREVIOUS_FEATURES_STAGE_SECONDS,
        "note": earlier.get("note", ""),
    }


def logged_events(cfg: Settings, folder: Path) -> Settings:
    """`cfg` with its Spark jobs writing their event log, uncompressed, into `folder` (benchmarks.event_log)."""
    logging = (
        f"spark.eventLog.enabled=true,spark.eventLog.dir={folder.resolve().as_uri()},spark.eventLog.compress=false"
    )
    return with_spark_conf(cfg, logging)


# The night_volume profile's `features` stage before this job was tuned (measured on 2026-11-26).
PREVIOUS_FEATURES_STAGE_SECONDS = 294.5


# What a re-measured night keeps of the measurement before it.
PREVIOUS_NIGHT_FIGURES = ("measured_on", "seconds", "peak_gb", "stages", "online_store")


def night_champion(work: Path):
    """(home's name, champion) for a measured night: the champion of SESAME_BENCH_CHAMPION_HOME when set (any home
    where one was trained, such as `make run`'s), else the history lake's, trained there if need be."""
    from sesame.registry import Registry

    home = os.environ.get("SESAME_BENCH_CHAMPION_HOME")
    if home:
        return Path(home).name, Registry(Settings(home=Path(home)).models).champion()
    history_cfg, _, nights, _ = history_lake(work)
    return history_cfg.home.name, history_champion(history_cfg, nights["360"])


def measure_night(work: Path, lake: NightLake, profile: str) -> dict:
    """One whole night (`sesame night`: Airflow, ingest, checks, features, feature store, scoring, dbt, audit,
    publish, report) in `lake`'s home.

    The history up to the night before is ingested by catch-up passes and that night's windows and state
    rebuilt from it, as a platform adopted with history would start. The model is another home's champion
    (`night_champion`; a scorecard is portable: bins and points); drift is computed but does not gate, because that
    model was developed on another population's year."""
    cfg, night, before = lake.cfg, lake.night, lake.before
    env = {**os.environ, "SESAME_HOME": str(cfg.home)}
    earlier = kept_results(profile)
    sizes = (lake.users, lake.history, lake.activity, lake.contacts)
    # preparation reused from an earlier run keeps the figures it was measured with
    same_lake = (
        earlier.get("users"),
        earlier.get("history_days"),
        earlier.get("activity", 1.0),
        earlier.get("contacts", 1.0),
    ) == sizes
    kept = earlier.get("steps", {}) if same_lake else {}
    steps: dict[str, dict] = {}
    if not (cfg.raw / "_simulation.json").exists():
        steps["simulate"] = simulate_lake(lake, env)
    if not cfg.zone("accounting", ds=before).exists():
        passes = catch_up(cfg, lake.catch_up_ends()).values()
        steps["ingest_history"] = {
            "seconds": round(sum(p["seconds"] for p in passes), 1),
            "peak_gb": max(p["peak_gb"] for p in passes),
        }
    if not has_state(cfg, before):
        steps["rebuild_night_before"] = spark_job(cfg, "features", "--ds", before, "--rebuild")
    # whose champion the home scores with, known when it was copied in (this run or the lake's earlier one)
    champion_from = earlier.get("champion_from") if same_lake else None
    if not (cfg.models / "registry.json").exists():
        from sesame.registry import Registry

        champion_from, source = night_champion(work)
        registry = Registry(cfg.models)
        registry.register(
            source.version, source.model_json, source.card, (source.path / "card.html").read_text(encoding="utf-8")
        )
        registry.promote(source.version, reason=f"benchmark: the champion of {champion_from}")
    measure(sesame_cli("setup"), env)
    started = time.time()
    # the online store a home of this size uses: Redis, written in bulk (the online_store profile)
    with local_redis(work / f"{cfg.home.name}-redis-server") as url:
        run = measure(sesame_cli("night", "--ds", night, "--accept-drift"), {**env, "SESAME_ONLINE_STORE": url})
    logs = [p for p in cfg.run_logs(night).glob("*.json") if p.stat().st_mtime >= started]
    stages = json.loads(max(logs, key=lambda p: p.stat().st_mtime).read_text())["stages"]
    accounting = pd.read_parquet(cfg.zone("accounting"))
    tonight = accounting[accounting["ds"].astype(str) == night]
    known = accounting[accounting["ds"].astype(str) <= night]
    scored = pd.read_parquet(cfg.zone("scores", ds=night), columns=["user_id"])
    return {
        "users": lake.users,
        "history_days": lake.history,
        "simulated_days": lake.simulated_days,
        "activity": lake.activity,
        "contacts": lake.contacts,
        "night": night,
        "seconds": run["seconds"],
        "peak_gb": run["peak_gb"],
        "scored": len(scored),
        "stages": {s["stage"]: s["seconds"] for s in stages},
        "delivered": {r.source: int(r.delivered) for r in tonight.itertuples()},
        "social_edges_so_far": int(known.loc[known["source"] == "social_edges", "accepted"].sum()),
        "steps": {**kept, **{k: figures(v) for k, v in steps.items()}},
        "steps_note": earlier.get("steps_note", "") if kept else "",
        "online_store": "redis",
        "champion_from": champion_from,
        # the night as last measured on an earlier day, for the stage table's comparison (a night measured again
        # the same day keeps the comparison it had)
        "previous": (
            earlier.get("previous")
            if earlier.get("measured_on") == dt.date.today().isoformat()
            else {k: earlier.get(k) for k in PREVIOUS_NIGHT_FIGURES}
            if "stages" in earlier
            else None
        ),
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


ONLINE_WRITE_CHILD = """
import json, sys, time
from sesame import feature_store
from sesame.config import Settings
cfg = Settings()
started = time.perf_counter()
feature_store.apply(cfg)
applied = time.perf_counter()
feature_store.materialize(sys.argv[1], cfg)
print(json.dumps({"apply_seconds": round(applied - started, 1), "write_seconds": round(time.perf_counter() - applied, 1)}))
"""


def online_feature_tables(cfg: Settings, users: int, night: str) -> None:
    """Two nights of both feature tables for `users` users, as the engines write them: every characteristic of
    the registry, one value in ten missing; one user in fifty has no row on the later night (the earlier one
    serves). Values are random: the write's cost depends on users, features and types, not on values."""
    import numpy as np

    from sesame.features import FEATURES

    rng = np.random.default_rng(7)
    ids = np.array([f"U{i:07d}" for i in range(users)])
    for ds, keep in ((days_before(night, 1), np.ones(users, bool)), (night, rng.random(users) >= 0.02)):
        for table, engine in (("user_features", "spark"), ("dbt_user_features", "dbt")):
            folder = cfg.zone("features", table, ds=ds)
            if folder.exists():
                continue
            frame = pd.DataFrame({"user_id": ids[keep], "feature_timestamp": pd.Timestamp(ds, tz="UTC")})
            if engine == "spark":
                frame["history_days"] = rng.integers(0, 3000, keep.sum())
            for feature in (f for f in FEATURES if f.engine == engine):
                values = rng.gamma(2.0, 50.0, keep.sum()).round(4)
                values[rng.random(keep.sum()) < 0.1] = np.nan
                frame[feature.name] = values
            folder.mkdir(parents=True)
            frame.to_parquet(folder / "part-0.parquet", index=False)


def online_store_profile(work: Path) -> dict:
    """The night's `feature_store` stage (Feast apply, then the night written into the online store) for
    1,000,000 users (SESAME_BENCH_USERS), once into SQLite through Feast's own online write and once into Redis
    in bulk, each in a home of its own; then Feast's lookups of the same users from both stores compared."""
    import numpy as np

    users = int(os.environ.get("SESAME_BENCH_USERS", "1000000"))
    night = END.isoformat()
    homes = {store: Settings(home=work / f"online-{users}-{store}") for store in ("sqlite", "redis")}
    for cfg in homes.values():
        online_feature_tables(cfg, users, night)
    runs = {}
    with local_redis(work / f"online-{users}-redis-server") as url:
        for store, cfg in homes.items():
            shutil.rmtree(cfg.feature_store_home, ignore_errors=True)
            env = {
                **os.environ,
                "SESAME_HOME": str(cfg.home),
                "SESAME_ONLINE_STORE": url if store == "redis" else store,
            }
            result = measure([sys.executable, "-c", ONLINE_WRITE_CHILD, night], env)
            runs[store] = {**figures(result), **json.loads(result["output"].strip().splitlines()[-1])}
        import redis

        runs["redis"]["server_gb"] = round(redis.Redis.from_url(url).info("memory")["used_memory"] / 1024**3, 2)
        sample = sorted(np.random.default_rng(11).choice(users, 2000, replace=False))
        ids = [f"U{i:07d}" for i in sample]
        looked_up = {}
        for store, cfg in homes.items():
            from sesame import feature_store

            reading = dataclasses.replace(cfg, online_store=url if store == "redis" else store)
            looked_up[store] = feature_store.online_features(ids, reading).set_index("user_id").sort_index()
    sqlite, redis_rows = looked_up["sqlite"], looked_up["redis"][looked_up["sqlite"].columns]
    agree = bool(sqlite.index.equals(redis_rows.index) and sqlite.equals(redis_rows))
    return {
        "users": users,
        "features": int(len(sqlite.columns)),
        "runs": runs,
        "lookups_compared": len(ids),
        "lookups_agree": agree,
        "missing_values_in_sample": int(sqlite.isna().sum().sum()),
    }


def service_profile(work: Path) -> dict:
    """Single lookups against a 1,000,000-user snapshot over loopback (benchmarks.service_load)."""
    from benchmarks.service_load import RESULT_FILE, service_benchmark

    service_benchmark(work / "service")
    return json.loads(RESULT_FILE.read_text(encoding="utf-8"))


# Runs of the warm-up job each way in the `job_start` profile.
JOB_START_RUNS = 3


def job_start_profile(work: Path) -> dict:
    """What a Spark job costs before its data matters: the warm-up job (spark_jobs/warm_up.py, a few thousand
    generated rows through the usual operators) submitted as a night submits its jobs, with the installation's
    class archive (sesame.spark.class_archive) and without it, alternately, JOB_START_RUNS times each."""
    from sesame.spark import JVM_OPTIONS, class_archive

    archive = class_archive()
    if archive is None or not archive.exists():
        raise RuntimeError("this installation has no class archive: `sesame setup` (make setup) makes it")
    home = work / "job-start"
    ways = {
        "without": Settings(home=home, spark_conf=f"spark.driver.extraJavaOptions={JVM_OPTIONS}"),
        "with": Settings(home=home),
    }
    runs: dict[str, list[dict]] = {way: [] for way in ways}
    try:
        for _ in range(JOB_START_RUNS):
            for way, cfg in ways.items():
                runs[way].append(figures(spark_job(cfg, "warm_up")))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {"runs": runs, "archive_mb": round(archive.stat().st_size / 1e6)}


PROFILES = {
    "simulator": simulator_profile,
    "feature_history": feature_history_profile,
    "engines": engines_profile,
    "scoring": scoring_profile,
    "night": night_profile,
    "night_volume": night_volume_profile,
    "service": service_profile,
    "online_store": online_store_profile,
    "catch_up": catch_up_profile,
    "catch_up_year": catch_up_year_profile,
    "catch_up_pass": catch_up_pass_profile,
    "features_volume": features_volume_profile,
    "job_start": job_start_profile,
}
