"""What a Spark job's tasks cost, read from its event log (spark.eventLog.enabled, uncompressed): the time its tasks
ran, on CPU and in garbage collection, in all and by the `StepClock` step that started each Spark job (the local
property sesame.spark.STEP_PROPERTY), and how busy that kept the cores. Steps that run side by side overlap in wall
time; their tasks' times do not, so these say what each step costs, not only how long it was running."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sesame.spark import STEP_PROPERTY

# A Spark job started outside any timed step (reading the sources' folders, finding the last scores).
OUTSIDE_STEPS = "outside the steps"


def event_files(folder: Path) -> list[Path]:
    """The event log files of the one application that logged to `folder`, in order: a single file, or Spark's
    rolling log (eventlog_v2_<app>/events_<n>_<app>)."""
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(("appstatus", "."))),
        key=lambda p: [int(n) if n.isdigit() else n for n in re.split(r"(\d+)", p.name)],
    )
    if not files:
        raise FileNotFoundError(f"{folder}: no Spark event log (spark.eventLog.enabled and spark.eventLog.dir)")
    if any(p.suffix in (".zstd", ".lz4", ".snappy", ".lzf") for p in files):
        raise ValueError(f"{folder}: the event log is compressed; log with spark.eventLog.compress=false")
    return files


def task_account(folder: Path) -> dict:
    """{"cores", "app_seconds", "task_seconds", "cpu_seconds", "gc_seconds", "busy": the share of the cores' time
    (cores x app_seconds) tasks ran, "by_step": {step: {"task_seconds", "cpu_seconds", "gc_seconds"}}}."""
    stage_step: dict[int, str] = {}
    by_step: dict[str, dict[str, float]] = {}
    cores, started, ended = 0, None, None
    for path in event_files(folder):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                event = json.loads(line)
                kind = event["Event"]
                if kind == "SparkListenerJobStart":
                    step = (event.get("Properties") or {}).get(STEP_PROPERTY) or OUTSIDE_STEPS
                    for stage in event["Stage IDs"]:  # a stage runs in the first job that lists it
                        stage_step.setdefault(stage, step)
                elif kind == "SparkListenerTaskEnd":
                    metrics = event.get("Task Metrics") or {}
                    spent = by_step.setdefault(
                        stage_step.get(event["Stage ID"], OUTSIDE_STEPS),
                        {"task_seconds": 0.0, "cpu_seconds": 0.0, "gc_seconds": 0.0},
                    )
                    spent["task_seconds"] += metrics.get("Executor Run Time", 0) / 1e3
                    spent["cpu_seconds"] += metrics.get("Executor CPU Time", 0) / 1e9
                    spent["gc_seconds"] += metrics.get("JVM GC Time", 0) / 1e3
                elif kind == "SparkListenerExecutorAdded":
                    cores += event["Executor Info"]["Total Cores"]
                elif kind == "SparkListenerApplicationStart":
                    started = event["Timestamp"]
                elif kind == "SparkListenerApplicationEnd":
                    ended = event["Timestamp"]
    if started is None or ended is None:
        raise ValueError(f"{folder}: the event log has no application start or end (did the job finish?)")
    total = {
        key: sum(spent[key] for spent in by_step.values()) for key in ("task_seconds", "cpu_seconds", "gc_seconds")
    }
    app_seconds = (ended - started) / 1e3
    return {
        "cores": cores,
        "app_seconds": round(app_seconds, 1),
        **{key: round(value, 1) for key, value in total.items()},
        "busy": round(total["task_seconds"] / (cores * app_seconds), 3) if cores and app_seconds > 0 else None,
        "by_step": {step: {k: round(v, 1) for k, v in spent.items()} for step, spent in by_step.items()},
    }
