"""Durable and exclusive: what a rename publishes is on disk first, one night or training run at a time per
SESAME_HOME, and a run id is checked before it becomes a folder name."""
from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from tests.service_snapshots import scores_table
from sesame import durable, snapshots
from sesame.cli import main as sesame


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


def test_a_second_night_exits_2_naming_the_running_one(home):
    err = io.StringIO()
    with durable.exclusive(home, "sesame night --ds 2026-11-23"):
        with contextlib.redirect_stderr(err):
            assert sesame(["night", "--ds", "2026-11-24"]) == 2
            assert sesame(["train", "--ds", "2026-11-24"]) == 2
            assert sesame(["backfill", "--start", "2026-11-20", "--end", "2026-11-24"]) == 2
    message = err.getvalue()
    assert message.count("`sesame night --ds 2026-11-23`") == 3 and f"pid {os.getpid()}" in message
    with durable.exclusive(home, "the next run"):  # released when the holder finished
        pass


def test_a_killed_holder_leaves_no_stale_lock(home):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from sesame import durable\n"
         "with durable.exclusive(Path(sys.argv[1]), 'sesame night --ds 2026-11-23'):\n"
         "    print('held', flush=True); time.sleep(60)", str(home)], stdout=subprocess.PIPE, text=True)
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
            [sys.executable, "-c", "import subprocess, sys, time; from sesame import durable\n"
             "child = subprocess.Popen(['sleep', '60'], preexec_fn=durable.dies_with_parent if sys.argv[1] == '1' "
             "else None)\nprint(child.pid, flush=True); time.sleep(60)", "1" if guarded else "0"],
            stdout=subprocess.PIPE, text=True)
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
    rel = snapshots.write_snapshot(root, "sesame_scores", "2026-11-23", "run1", table, "m1",
                                   [{"name": "c", "passed": True}])
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
