"""The benchmark's bookkeeping: which night a profile measures, and what BENCHMARKS.md claims about it; and the
benchmarks kept apart from the library (never imported by it, never shipped to executors).
(The profiles themselves run under `make bench`; their timings never run in tests.)"""

from __future__ import annotations

import ast
import datetime as dt
import json
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import profiles, render
from sesame.config import Settings
from sesame.spark import code_zip

ROOT = Path(__file__).resolve().parents[1]


def test_measure_finds_the_peak_memory_and_spaces_costly_samples(monkeypatch):
    import psutil

    samples = []
    read = psutil.Process.memory_full_info

    def costly(process):  # as reading a Spark driver's memory map costs
        samples.append(process.pid)
        time.sleep(0.1)
        return read(process)

    monkeypatch.setattr(psutil.Process, "memory_full_info", costly)
    holds = "import time; block = b'x' * (300 * 2**20); print('held', flush=True); time.sleep(3)"
    result = profiles.measure([sys.executable, "-c", holds])
    assert result["output"].strip() == "held" and result["seconds"] >= 3
    assert result["peak_gb"] >= 0.28  # the 300 MB held, counted
    # every 0.5 s would be 6 samples; spaced by 25 times a 0.1 s sample, at most 2
    assert 1 <= len(samples) <= 2


def test_night_lakes_measure_the_night_after_their_history(monkeypatch):
    monkeypatch.delenv("SESAME_BENCH_NIGHT_HISTORY", raising=False)
    monkeypatch.delenv("SESAME_BENCH_VOLUME_HISTORY", raising=False)
    default, sized = profiles.night_lake(Path("w")), profiles.volume_lake(Path("w"))
    assert (default.night, default.before) == ("2026-11-23", "2026-11-22")
    assert default.day(0) == "2026-08-25"  # 91 simulated days: 90 of history, then the night
    assert (sized.night, sized.day(0), sized.history) == ("2026-11-23", "2026-08-25", 90)
    assert (sized.activity, sized.contacts) == (profiles.SIZING_ACTIVITY, profiles.SIZING_CONTACTS)
    assert default.cfg.home != sized.cfg.home
    monkeypatch.setenv("SESAME_BENCH_NIGHT_HISTORY", "30")
    shorter = profiles.night_lake(Path("w"))
    assert (shorter.night, shorter.before) == ("2026-09-24", "2026-09-23")
    monkeypatch.setenv("SESAME_BENCH_VOLUME_HISTORY", "7")
    week = profiles.volume_lake(Path("w"))
    assert (week.day(0), week.history) == ("2026-11-16", 7)
    assert week.cfg.home != sized.cfg.home  # a lake simulated for 7 days is never taken for one of 90
    # the history is ingested in passes of CATCH_UP_DAYS, the last ending the night before the measured one
    ends = sized.catch_up_ends()
    assert ends[-1] == sized.before and ends == sorted(set(ends))
    starts = [sized.day(0)] + [(dt.date.fromisoformat(e) + dt.timedelta(days=1)).isoformat() for e in ends[:-1]]
    spans = [(dt.date.fromisoformat(e) - dt.date.fromisoformat(s)).days + 1 for s, e in zip(starts, ends)]
    assert sum(spans) == 90 and max(spans) == profiles.CATCH_UP_DAYS
    assert week.catch_up_ends() == [week.before]


def test_the_replay_home_reads_the_lake_and_writes_only_its_own_days(tmp_path):
    """The home where the catch-up profiles ingest the lake again: the lake's deliveries and its validated days
    before the first day ingested are links (read, never written: the replay writes its own days beside them), its
    accounting of those days a copy."""
    lake = profiles.NightLake(Settings(home=tmp_path / "lake"), 10, 3, 4)
    lake.cfg.raw.mkdir(parents=True)
    days = ["2026-11-20", "2026-11-21", "2026-11-22"]
    for day in days:
        lake.cfg.zone("validated", "payments", ds=day).mkdir(parents=True)
        (lake.cfg.zone("accounting", ds=day)).mkdir(parents=True)
        (lake.cfg.zone("accounting", ds=day) / "part.parquet").write_text(day)
    home = profiles.replay_home(lake, "2026-11-22")
    assert home.home != lake.cfg.home and home.raw.is_symlink() and home.raw.resolve() == lake.cfg.raw.resolve()
    linked = sorted(p.name for p in home.zone("validated", "payments").iterdir())
    assert linked == ["ds=2026-11-20", "ds=2026-11-21"]
    assert all(p.is_symlink() for p in home.zone("validated", "payments").iterdir())
    copied = home.zone("accounting", ds="2026-11-21")
    assert not copied.is_symlink() and (copied / "part.parquet").read_text() == "2026-11-21"
    assert not home.zone("accounting", ds="2026-11-22").exists()
    again = profiles.replay_home(lake, "2026-11-21")  # made afresh each time
    assert sorted(p.name for p in again.zone("validated", "payments").iterdir()) == ["ds=2026-11-20"]


def _night(events: int, edges: int, history: int = 90, seconds: float = 600.0) -> dict:
    return {
        "users": 1_000_000,
        "history_days": history,
        "simulated_days": history + 1,
        "night": "2026-11-23",
        "seconds": seconds,
        "peak_gb": 6.0,
        "scored": 990_000,
        "stages": {"ingest": 100.0, "features": 200.0},
        "delivered": {"users": 1_000_000, "payments": events // 2, "orders": events - events // 2},
        "social_edges_so_far": edges,
        "steps": {},
        "steps_note": "",
    }


def test_a_night_lighter_than_the_sizing_is_not_reported_as_showing_the_target():
    light = render._night_section(_night(events=990_000, edges=5_000_000))
    assert "lighter than the target's" in light and "at the target's sizing" not in light.splitlines()[0]
    sized = render._night_section(_night(events=2_300_000, edges=19_900_000))
    assert "at the target's sizing" in sized.splitlines()[0] and "lighter" not in sized
    # a sized night over the time budget is not met, whatever its size
    assert "Target: not met" in render._night_section(_night(events=2_300_000, edges=20_000_000, seconds=960.0))
    assert "Target: met" in sized


def test_a_short_history_is_said_in_the_heading_and_the_caveat():
    short = render._night_section(_night(events=2_300_000, edges=20_000_000, history=7))
    assert short.startswith("## One night for 1,000,000 users after 7 days of history")
    assert "not the 90 the target names" in short
    assert "not the 90" not in render._night_section(_night(events=2_300_000, edges=20_000_000))


def test_the_targets_table_does_not_claim_the_night_target_from_two_partial_nights():
    long_light = _night(events=1_000_000, edges=5_000_000, history=90)
    short_sized = _night(events=2_300_000, edges=19_900_000, history=7)
    lake = {"users": 100_000, "night": "2026-11-23", "stages": {"daily": {"ratio": 2.0}, "graph": {"ratio": 7.5}}}
    table = render._summary(
        {
            "night": long_light,
            "night_volume": short_sized,
            "feature_history": {"ratio": 1.3},
            "engines": {"lakes": [lake]},
        }
    )
    night_row = next(line for line in table.splitlines() if "one night" in line)
    assert "not measured together" in night_row
    assert "| feature job after 360 vs 90 days, at most 1.2 | 1.30 | not met |" in table
    assert "worst 7.5 (graph) | not met |" in table

    def rows(seconds: float, events: int = 2_300_000) -> list[str]:
        night = _night(events=events, edges=20_000_000, history=90, seconds=seconds)
        return [line for line in render._summary({"night": night}).splitlines() if "one night" in line]

    # ten minutes meet the 15-minute night, not the 8 minutes of a night at the sizing; 7.5 minutes meet both
    assert [line.rsplit("|", 2)[-2].strip() for line in rows(600.0)] == ["met", "not met"]
    assert [line.rsplit("|", 2)[-2].strip() for line in rows(450.0)] == ["met", "met"]
    assert rows(1000.0)[0].endswith("| not met |")
    assert len(rows(450.0, events=1_000_000)) == 1  # a lighter night says nothing of the sizing's 8 minutes


def test_the_executors_code_holds_the_library_and_the_jobs_only(tmp_path):
    names = zipfile.ZipFile(code_zip(Settings(home=tmp_path))).namelist()
    assert {name.split("/")[0] for name in names} == {"sesame", "spark_jobs"}
    assert "sesame/__init__.py" in names and "spark_jobs/features.py" in names
    assert not [name for name in names if "bench" in name.rsplit("/", 1)[-1]]


def test_the_library_the_jobs_and_the_dags_never_import_the_benchmarks():
    found = []
    for folder in ("src/sesame", "spark_jobs", "dags"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                named = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and not node.level
                    else []
                )
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}"
                    for name in named
                    if name == "benchmarks" or name.startswith("benchmarks.")
                ]
    assert not found, f"the benchmarks measure the library; it must not depend on them: {found}"


def test_a_replay_must_account_for_every_record_as_the_lake_did(tmp_path):
    lake = profiles.NightLake(Settings(home=tmp_path / "lake"), 10, 3, 4)
    replay = Settings(home=tmp_path / "replay")
    rows = {"source": ["payments", "orders"], "delivered": [10, 7], "accepted": [8, 7]}
    rows |= {"quarantined": [1, 0], "duplicates": [1, 0], "ingested_on": ["2026-11-22", "2026-11-22"]}
    for cfg, day in ((lake.cfg, "2026-11-21"), (lake.cfg, "2026-11-22"), (replay, "2026-11-22")):
        cfg.zone("accounting", ds=day).mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(cfg.zone("accounting", ds=day) / "part.parquet")
    # the days outside the replay's range are not compared
    assert profiles.check_same_accounting(replay, lake, "2026-11-22", "2026-11-22") == 17
    pd.DataFrame(rows | {"accepted": [9, 7], "duplicates": [0, 0]}).to_parquet(
        replay.zone("accounting", ds="2026-11-22") / "part.parquet"
    )
    with pytest.raises(AssertionError, match="2026-11-22..2026-11-22 accounts differently"):
        profiles.check_same_accounting(replay, lake, "2026-11-22", "2026-11-22")


def test_a_stage_over_the_ratio_is_said_to_be_bound_by_its_tasks_or_by_the_time_around_them():
    def stage(spark_s: float, duck_s: float, task_s: float) -> dict:
        account = {"cores": 2, "jobs": 1, "stages": 2, "tasks": 8, "task_seconds": task_s, "cpu_seconds": task_s}
        account |= {"gc_seconds": 0.0, "shuffle_mb": 10.0, "spill_mb": 0.0}
        times = {"spark_seconds": spark_s, "duckdb_seconds": duck_s, "ratio": round(spark_s / duck_s, 1)}
        return times | {"rows": 10, "spark_account": account}

    lake = {
        "stages": {
            "busy": stage(10.0, 2.0, 19.0),  # tasks alone: 9.5 s on 2 cores, 4.75 times DuckDB
            "idle": stage(10.0, 2.0, 4.0),  # tasks alone: 2 s; 8 s with no task running
            "fine": stage(5.0, 2.0, 9.0),  # within 3 times: not explained
        }
    }
    rows = {line.split("|")[1].strip(): line for line in render._engines_bounds(lake).splitlines() if "|" in line}
    assert "fine" not in rows
    assert "the work in tasks" in rows["busy"] and "4.8 times DuckDB" in rows["busy"]
    assert "the time outside tasks" in rows["idle"] and "| 8.00 s |" in rows["idle"]
    assert render._engines_bounds({"stages": {"old": {**lake["stages"]["busy"], "spark_account": None}}}) == ""


def test_a_step_clock_adds_a_step_run_again_and_times_a_step_that_fails():
    from sesame.spark import StepClock

    clock, ticks = StepClock(), iter([0.0, 1.5, 10.0, 10.25, 20.0, 23.0])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sesame.spark.time.perf_counter", lambda: next(ticks))
        for _ in range(2):  # one night, then another
            with clock("windows"):
                pass
        with pytest.raises(RuntimeError), clock("state"):
            raise RuntimeError("the write failed")
    assert clock.seconds == {"windows": 1.75, "state": 3.0}


def test_a_step_run_in_parts_side_by_side_is_timed_from_its_first_start_to_its_last_end():
    from sesame.spark import StepClock

    clock = StepClock()
    ticks = iter([0.0, 1.0, 2.0, 3.0, 5.0, 6.0, 6.5, 6.5])  # state part 1 and 2 overlap, graph overlaps both
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sesame.spark.time.perf_counter", lambda: next(ticks))
        first, second, graph = clock("state"), clock("state"), clock("graph")
        first.__enter__()  # 0.0
        second.__enter__()  # 1.0
        graph.__enter__()  # 2.0
        first.__exit__(None, None, None)  # 3.0
        second.__exit__(None, None, None)  # 5.0
        graph.__exit__(None, None, None)  # 6.0
        assert clock.timed("daily", lambda x: x * 2)(21) == 42  # 6.5 - 6.5
    assert clock.seconds == {"state": 5.0, "graph": 4.0, "daily": 0.0}


def test_the_feature_jobs_own_step_times_are_read_from_its_output_and_shown_with_the_rest_of_its_time():
    printed = {"steps": {"daily": 10.0, "windows": 20.0, "graph": 30.0}, "in_steps": 60.0}
    output = "\n".join(["26/12/04 WARN NativeCodeLoader: ...", json.dumps(printed), ""])
    run = {"seconds": 80.0, "peak_gb": 1.0, **profiles.job_steps(output)}
    assert run["steps"] == printed["steps"] and profiles.job_steps("a job that prints no steps\n") == {}
    table = render._job_steps_table(run)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("|")}
    assert "| 30.0 s | 38% |" in rows["graph"] and rows["graph"].split("|")[2].strip()  # described
    assert "| 20.0 s | 25% |" in rows["outside the steps"]  # 80 s, 60 s of them in steps
    assert "side by side" not in table
    # windows and graph side by side: 50 s in steps, not 60
    table = render._job_steps_table({**run, "in_steps": 50.0})
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("|")}
    assert "| 30.0 s | 38% |" in rows["outside the steps"] and "together they took 50.0 s" in table
    # a run measured before the job printed the time in its steps: the steps ran one after another
    table = render._job_steps_table({"seconds": 80.0, "peak_gb": 1.0, "steps": printed["steps"]})
    assert "| 20.0 s | 25% |" in table
    assert render._job_steps_table({"seconds": 80.0, "peak_gb": 1.0}) == ""  # a run measured before steps were


def test_the_job_start_section_shows_every_run_each_way_and_what_the_archive_saves():
    def runs(*seconds):
        return [{"seconds": s, "peak_gb": 1.5} for s in seconds]

    text = render._job_start_section(
        {"runs": {"without": runs(20.0, 22.0, 30.0), "with": runs(15.0, 17.5, 16.0)}, "archive_mb": 190}
    )
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| classes")}
    assert "20.0 s, 22.0 s, 30.0 s | 22.0 s" in rows["classes loaded from the jars"]
    assert "| 16.0 s | 1.50 GB |" in rows["classes mapped from the archive"]
    assert "takes 6.0 s off" in text and "190 MB" in text


def _event_log(folder: Path, files: dict[str, list[dict]]) -> Path:
    for name, events in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return folder


def _task(stage: int, run_ms: int, cpu_ms: int, gc_ms: int = 0) -> dict:
    metrics = {"Executor Run Time": run_ms, "Executor CPU Time": cpu_ms * 10**6, "JVM GC Time": gc_ms}
    return {"Event": "SparkListenerTaskEnd", "Stage ID": stage, "Task Metrics": metrics}


def test_a_jobs_task_time_is_read_from_its_event_log_by_the_step_that_started_each_spark_job(tmp_path):
    from benchmarks.event_log import OUTSIDE_STEPS, task_account
    from sesame.spark import STEP_PROPERTY

    def job(job_id: int, stages: list[int], step: str | None) -> dict:
        props = {"spark.sql.execution.id": "3", **({STEP_PROPERTY: step} if step else {})}
        return {"Event": "SparkListenerJobStart", "Job ID": job_id, "Stage IDs": stages, "Properties": props}

    # a rolling log in two files (events_2 before events_10), as Spark 4 writes by default
    folder = _event_log(
        tmp_path / "log",
        {
            "eventlog_v2_local-1/events_2_local-1": [
                {"Event": "SparkListenerApplicationStart", "Timestamp": 1_000},
                {"Event": "SparkListenerExecutorAdded", "Executor Info": {"Total Cores": 2}},
                job(0, [0, 1], "graph"),
                _task(0, 4_000, 3_000, 500),
                _task(1, 2_000, 1_000),
                # stage 1 again in a later job (skipped there: it ran in job 0) and stage 2 outside any step
                job(1, [1, 2], None),
                _task(2, 1_000, 1_000),
            ],
            "eventlog_v2_local-1/events_10_local-1": [
                job(2, [3], "state"),
                _task(3, 3_000, 2_500),
                _task(3, 2_000, 1_500, 250),
                {"Event": "SparkListenerApplicationEnd", "Timestamp": 11_000},
            ],
            "eventlog_v2_local-1/appstatus_local-1": [],
        },
    )
    account = task_account(folder)
    assert account["by_step"] == {
        "graph": {"task_seconds": 6.0, "cpu_seconds": 4.0, "gc_seconds": 0.5},
        OUTSIDE_STEPS: {"task_seconds": 1.0, "cpu_seconds": 1.0, "gc_seconds": 0.0},
        "state": {"task_seconds": 5.0, "cpu_seconds": 4.0, "gc_seconds": 0.2},
    }
    assert (account["task_seconds"], account["cpu_seconds"], account["gc_seconds"]) == (12.0, 9.0, 0.8)
    assert (account["cores"], account["app_seconds"], account["busy"]) == (2, 10.0, 0.6)  # 12 s of 2 x 10 s

    # a log Spark compressed, none at all, or one of a job that never ended: said, not miscounted
    _event_log(tmp_path / "zstd", {"events_1_local-2.zstd": []})
    with pytest.raises(ValueError, match="compress"):
        task_account(tmp_path / "zstd")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Spark event log"):
        task_account(tmp_path / "empty")
    _event_log(tmp_path / "cut", {"events_1_local-3": [{"Event": "SparkListenerApplicationStart", "Timestamp": 1}]})
    with pytest.raises(ValueError, match="no application start or end"):
        task_account(tmp_path / "cut")


def test_the_feature_jobs_step_table_gives_each_steps_share_of_sparks_tasks():
    from benchmarks.event_log import OUTSIDE_STEPS

    spent = lambda task, cpu: {"task_seconds": task, "cpu_seconds": cpu, "gc_seconds": 0.0}  # noqa: E731
    account = {
        "cores": 2,
        "app_seconds": 75.0,
        "task_seconds": 120.0,
        "cpu_seconds": 90.0,
        "gc_seconds": 6.0,
        "busy": 0.8,
        "by_step": {"graph": spent(70.0, 50.0), "daily": spent(45.0, 37.0), OUTSIDE_STEPS: spent(5.0, 3.0)},
    }
    run = {"seconds": 80.0, "peak_gb": 1.0, "steps": {"daily": 10.0, "windows": 20.0, "graph": 30.0}, "in_steps": 60.0}
    table = render._job_steps_table({**run, "spark": account})
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("|")}
    assert rows["graph"].endswith("| 30.0 s | 38% | 70.0 s (50.0 s) |")
    assert rows["windows"].endswith("| 0.0 s (0.0 s) |")  # no Spark job of its own
    assert rows["outside the steps"].endswith("| 5.0 s (3.0 s) |")
    assert "its tasks ran 120.0 s (90.0 s on CPU, 6.0 s in GC)" in table and "busy 80% of that time" in table
    assert "Spark tasks" not in render._job_steps_table(run)  # a run measured before the job kept its event log
    unknown = render._job_steps_table({**run, "spark": {**account, "cores": 0, "busy": None}})
    assert "busy" not in unknown and "on 0 cores;" in unknown


def _year(users: int, per_day: list[float], complete: bool = True) -> dict:
    """A catch-up of 365 days in passes of 15 (the last of 5), each pass costing per_day[i] seconds a day."""
    import datetime as dt

    first = dt.date(2025, 11, 23)
    passes, day = {}, 0
    for cost in per_day:
        days = min(15, 365 - day)
        start, end = first + dt.timedelta(days=day), first + dt.timedelta(days=day + days - 1)
        passes[end.isoformat()] = {"first_day": start.isoformat(), "days": days, "seconds": cost * days, "peak_gb": 3.0}
        day += days
    return {
        "users": users,
        "activity": 2.4,
        "contacts": 5.0,
        "pass_days": 15,
        "passes": passes,
        "complete": complete,
        "lookback_days": 60,
        "driver_memory": "4g",
        "measured_on": "2026-12-06",
    }


def test_a_year_of_catch_up_below_the_target_users_is_not_a_verdict_on_the_target():
    """The year's catch-up at 100,000 users says how a pass's cost moves with the history behind it, and is never
    read as meeting (or missing) the 3 hours the target sets for 1,000,000 users; at that sizing it is."""
    flat = [40.0] + [10.0] * 3 + [11.0] * 21  # 25 passes: the first heavy, then about flat
    small = render._summary({"catch_up_year": _year(100_000, flat)})
    row = next(line for line in small.splitlines() if "365 days" in line)
    assert row.endswith("| not measured at the target's sizing |")
    assert "median cost per day 10.0 s within the first 60 days, 11.0 s past them" in row
    section = render._catch_up_year_section(_year(100_000, flat))
    assert section.startswith("## Catch-up: 365 days of history at 100,000 users") and "**not measured**" in section
    # at the target's users: 25 passes of 30 s a day are 182.5 min, over the 3 hours; 29 s a day are under
    verdicts = {cost: render._summary({"catch_up_year": _year(1_000_000, [cost] * 25)}) for cost in (30.0, 29.0)}
    assert "| not met |" in verdicts[30.0] and "| met |" in verdicts[29.0]
    partial = render._summary({"catch_up_year": _year(1_000_000, [20.0] * 25, complete=False)})
    assert "not every pass measured" in partial and "not measured at the target's sizing" in partial
