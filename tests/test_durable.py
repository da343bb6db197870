"""Durable and exclusive: what a rename publishes is on disk first, one night or training run at a time per
SESAME_HOME, and a run id is checked before it becomes a folder name."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sesame import durable, snapshots
from sesame.cli import main as sesame
from tests.service_snapshots import scores_table


@pytest.mark.parametrize("run_id", ["20261202T153834386803Z", "republish", "a" * 48])
def test_run_ids_of_letters_and_digits_pass(run_id):
    assert durable.checked_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["", "../../published", "a" * 49, "run-1", "run 1", "ds=2026-01-01", None])
def test_run_ids_that_could_escape_a_folder_are_refused(run_id):
    from sesame.night import NightFailed, run_id_for

    with pytest.raises(ValueError, match="run_id.format"):
        durable.checked_run_id(run_id)
    with pytest.raises(NightFailed, match="run_id.format"):
        run_id_for("manual__2026-01-01T00:00:00", {"run_id": run_id or "../x"})


@contextlib.contextmanager
def held_by_another_process(home, what="sesame night --ds 2026-11-23"):
    """A process of its own holding the SESAME_HOME lock until the block ends; yields it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from sesame import durable\n"
            "with durable.exclusive(Path(sys.argv[1]), sys.argv[2]):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(home),
            what,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_second_night_exits_2_naming_the_running_one(home):
    err = io.StringIO()
    with held_by_another_process(home) as holder:
        with contextlib.redirect_stderr(err):
            assert sesame(["night", "--ds", "2026-11-24"]) == 2
            assert sesame(["train", "--ds", "2026-11-24"]) == 2
            assert sesame(["backfill", "--start", "2026-11-20", "--end", "2026-11-24"]) == 2
    message = err.getvalue()
    assert message.count("`sesame night --ds 2026-11-23`") == 3 and f"pid {holder.pid}" in message
    with durable.exclusive(home, "the next run"):  # released when the holder finished
        pass


def test_a_scheduled_stage_never_works_beside_a_night_started_by_hand(home, monkeypatch):
    """While `sesame night` holds the home, a stage of a run the scheduler started raises Busy (Airflow retries it)
    and the scheduled night's sensor keeps waiting; the stages of the holder's own run (they inherit its token)
    run under its lock."""
    from sesame import night
    from sesame.config import Settings

    cfg = Settings()
    monkeypatch.delenv(durable.LOCK_TOKEN_ENV, raising=False)
    with held_by_another_process(home) as holder:
        with pytest.raises(durable.Busy, match=f"sesame night --ds 2026-11-23.*pid {holder.pid}"):
            with night.stage(cfg, "2026-11-24", "scheduled1", "ingest"):
                raise AssertionError("the stage ran beside the night started by hand")
        assert f"pid {holder.pid}" in night.waiting_for_the_home(cfg)
        token = json.loads((home / durable.LOCK_FILE).read_text())["token"]
        monkeypatch.setenv(durable.LOCK_TOKEN_ENV, token)  # a task of the holder's own `airflow dags test`
        assert night.waiting_for_the_home(cfg) is None
        with night.stage(cfg, "2026-11-23", "manual1", "ingest"):
            ran = True
        assert ran
    monkeypatch.delenv(durable.LOCK_TOKEN_ENV)
    assert night.waiting_for_the_home(cfg) is None  # the holder is gone
    with night.stage(cfg, "2026-11-24", "scheduled1", "ingest"):
        pass
    log = json.loads((home / "runs" / "2026-11-24" / "scheduled1.json").read_text())
    assert [s["status"] for s in log["stages"]] == ["ok"]  # the refused try never reached the run log


def test_a_night_started_by_hand_refuses_while_the_scheduler_has_a_run_under_way(home, capsys):
    """Read from Airflow's metadata database (the columns of its dag_run table): a scheduled run queued or running
    refuses `sesame night`; a finished one, or a run of `airflow dags test` (started by sesame night under the
    lock, and left `running` for good if it was killed) does not."""
    import sqlite3

    from sesame.config import Settings

    cfg = Settings()
    cfg.airflow_home.mkdir(parents=True)
    db = sqlite3.connect(cfg.airflow_home / "airflow.db")
    db.execute(
        "CREATE TABLE dag_run (id INTEGER PRIMARY KEY, dag_id TEXT, run_id TEXT, state TEXT, "
        "start_date TIMESTAMP, triggered_by TEXT)"
    )
    db.executemany(
        "INSERT INTO dag_run (dag_id, run_id, state, start_date, triggered_by) VALUES (?, ?, ?, ?, ?)",
        [
            ("sesame_nightly", "manual__killed", "running", "2026-11-20 01:00:00", "TEST"),
            ("sesame_nightly", "scheduled__2026-11-22", "success", "2026-11-23 00:00:05", "TIMETABLE"),
        ],
    )
    db.commit()
    from sesame.cli import airflow_runs_in_progress

    assert airflow_runs_in_progress(cfg) == []
    db.execute(
        "INSERT INTO dag_run (dag_id, run_id, state, start_date, triggered_by) VALUES "
        "('sesame_nightly', 'scheduled__2026-11-23', 'running', '2026-11-24 00:00:05', 'TIMETABLE')"
    )
    db.commit()
    db.close()
    assert sesame(["night", "--ds", "2026-11-24"]) == 2
    err = capsys.readouterr().err
    assert "sesame_nightly run scheduled__2026-11-23 (running since 2026-11-24 00:00:05)" in err
    with durable.exclusive(home, "the next run"):  # the refusal released the lock
        pass


def test_a_killed_holder_leaves_no_stale_lock(home):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from sesame import durable\n"
            "with durable.exclusive(Path(sys.argv[1]), 'sesame night --ds 2026-11-23'):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(home),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(durable.Busy, match=f"pid {holder.pid}"):
            with durable.exclusive(home, "second"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.time() + 10
    while True:
        try:
            with durable.exclusive(home, "after the kill"):
                break
        except durable.Busy:
            assert time.time() < deadline, "the lock outlived the killed process"
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has died; only its parent's wait is missing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_night_takes_its_spark_and_dbt_children_with_it():
    """The night's children (spark-submit, dbt, airflow dags test) are started with durable.dies_with_parent: when
    the night is killed -9 they die too, instead of writing on beside a re-run. Without it, the child survives."""
    children = {}
    for guarded in (True, False):
        parent = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import subprocess, sys, time; from sesame import durable\n"
                "child = subprocess.Popen(['sleep', '60'], preexec_fn=durable.dies_with_parent if sys.argv[1] == '1' "
                "else None)\nprint(child.pid, flush=True); time.sleep(60)",
                "1" if guarded else "0",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        children[guarded] = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    try:
        deadline = time.time() + 10
        while _alive(children[True]) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(children[True]), "the guarded child outlived its killed parent"
        assert _alive(children[False])  # the control: an unguarded child goes on
    finally:
        for pid in children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _record_fsyncs_and_renames(monkeypatch) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", str(Path(dst).resolve())))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_a_snapshot_and_its_pointer_are_on_disk_before_their_names_appear(tmp_path, monkeypatch):
    root = (tmp_path / "published").resolve()
    events = _record_fsyncs_and_renames(monkeypatch)
    table = scores_table("2026-11-23", 2)
    rel = snapshots.write_snapshot(
        root, "sesame_scores", "2026-11-23", "run1", table, "m1", [{"name": "c", "passed": True}]
    )
    folder = root / "sesame_scores" / rel
    renamed = events.index(("rename", str(folder)))
    synced_before = {Path(p).name for kind, p in events[:renamed] if kind == "fsync"}
    assert {"part-00000.parquet", "_manifest.json"} <= synced_before
    assert ("fsync", str(folder.parent)) in events[renamed:]  # the new name itself is durable

    events.clear()
    snapshots.publish_night(root, "2026-11-23", "run1", {"sesame_scores": rel})
    for pointer in (root / "NIGHT", root / "sesame_scores" / "LATEST"):
        renamed = events.index(("rename", str(pointer)))
        assert any(kind == "fsync" and Path(p).name.startswith(f".{pointer.name}.tmp") for kind, p in events[:renamed])
        assert ("fsync", str(pointer.parent)) in events[renamed:]
