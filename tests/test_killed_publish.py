"""kill -9 at every durable step of publishing a night (each rename: the snapshot folders, the warehouse file, NIGHT,
each LATEST): a reader meanwhile gets the previous night or the new one whole, and the night run again publishes
the same content as a night that was never interrupted."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import duckdb
import pyarrow.parquet as pq

from sesame import night, snapshots
from sesame.config import Settings
from tests.service_snapshots import scores_table, visa_table

BEFORE, TONIGHT = "2026-11-23", "2026-11-24"

# publish() in a process of its own that kills itself (SIGKILL, nothing flushed or cleaned) at its k-th rename
CHILD = """
import os, signal, sys
from pathlib import Path
from sesame import night
from sesame.config import Settings

home, ds, run_id, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
renames, real = [0], os.replace

def replace(src, dst):
    if renames[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    renames[0] += 1
    return real(src, dst)

os.replace = replace
night.publish(Settings(home=Path(home)), ds, run_id)
print(renames[0])
"""


def _tables(ds: str) -> dict:
    scores = scores_table(ds, 300, shift=0 if ds == BEFORE else 9)
    return {"sesame_scores": scores, "visa_eligibility": visa_table(ds, scores)}


def _stage(cfg: Settings, ds: str, run_id: str) -> None:
    """What the stages before publish leave: the audited datasets, the staged warehouse, the night's lake scores."""
    audited = night.audited_dir(cfg, run_id)
    audited.mkdir(parents=True)
    for name, table in _tables(ds).items():
        pq.write_table(table, audited / f"{name}.parquet")
    staged = night.staged_warehouse(cfg, run_id)
    staged.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(staged)) as con:
        con.execute("create table night as select ? as ds", [ds])
    cfg.zone("scores", ds=ds).mkdir(parents=True, exist_ok=True)


def _publish(cfg: Settings, ds: str, run_id: str, kill_at: int = -1) -> subprocess.CompletedProcess:
    _stage(cfg, ds, run_id)
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(cfg.home), ds, run_id, str(kill_at)], capture_output=True, text=True
    )


def _what_readers_see(cfg: Settings) -> str:
    """The night every reader gets now, checked whole: NIGHT's datasets, each LATEST, the warehouse."""
    pointer, datasets = snapshots.open_night(cfg.published)
    ds = pointer["ds"]
    for name, table in _tables(ds).items():
        assert datasets[name].to_table().equals(table), f"{name} is not night {ds} whole"
        assert snapshots.latest(cfg.published, name)["ds"] == ds
    with duckdb.connect(str(cfg.warehouse_path), read_only=True) as con:
        warehouse = con.execute("select ds from night").fetchone()[0]
    # the warehouse is swapped just before NIGHT moves: killed between the two, analysts are a night ahead of the
    # services until the night runs again, never behind
    assert warehouse in (ds, TONIGHT)
    return ds


def test_a_publish_killed_at_any_step_leaves_one_whole_night_and_its_rerun_publishes_the_same(tmp_path):
    base = Settings(home=tmp_path / "base")
    assert _publish(base, BEFORE, "first").returncode == 0
    uninterrupted = Settings(home=tmp_path / "uninterrupted")
    shutil.copytree(base.home, uninterrupted.home)
    done = _publish(uninterrupted, TONIGHT, "straight")
    assert done.returncode == 0, done.stderr
    renames = int(done.stdout.split()[-1])
    assert renames >= 6  # two snapshot folders, the warehouse, NIGHT, two LATEST files
    assert _what_readers_see(uninterrupted) == TONIGHT
    seen = set()
    for k in range(renames):
        cfg = Settings(home=tmp_path / f"killed-at-{k}")
        shutil.copytree(base.home, cfg.home)
        killed = _publish(cfg, TONIGHT, f"killed{k}", kill_at=k)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        seen.add(_what_readers_see(cfg))
        assert snapshots.is_published(cfg.published, TONIGHT) == (_what_readers_see(cfg) == TONIGHT)
        rerun = _publish(cfg, TONIGHT, f"rerun{k}")
        assert rerun.returncode == 0, rerun.stderr
        assert _what_readers_see(cfg) == TONIGHT
        for name in ("sesame_scores", "visa_eligibility"):
            assert (
                snapshots.open_latest(name, cfg.published)
                .to_table()
                .equals(snapshots.open_latest(name, uninterrupted.published).to_table())
            )
    assert seen == {BEFORE, TONIGHT}  # killed before NIGHT moved, and after
