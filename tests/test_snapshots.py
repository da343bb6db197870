"""Write-audit-publish for snapshots: immutable folders, atomic LATEST, a killed publish changes nothing,
retention never removes what LATEST names, and the reader verifies checksums."""
from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from sesame import snapshots


def _table(n, start=0):
    return pa.table({"user_id": [f"U{i}" for i in range(start, start + n)], "score": list(range(start, start + n))})


CHECKS = [{"name": "all", "passed": True}]


def _publish(root, ds, run, n=10):
    rel = snapshots.write_snapshot(root, "sesame_scores", ds, run, _table(n), "m1", CHECKS)
    snapshots.flip_latest(root, "sesame_scores", rel)
    return rel


def test_publish_and_read_back(tmp_path):
    rel = _publish(tmp_path, "2026-11-20", "r1", n=1200)
    assert json.loads((tmp_path / "sesame_scores" / "LATEST").read_text())["snapshot"] == rel
    table = snapshots.open_latest("sesame_scores", root=tmp_path).to_table()
    assert table.num_rows == 1200
    with pytest.raises(snapshots.SnapshotError, match="immutable"):
        snapshots.write_snapshot(tmp_path, "sesame_scores", "2026-11-20", "r1", _table(3), "m1", CHECKS)


def test_same_rows_give_identical_files(tmp_path):
    a = snapshots.write_snapshot(tmp_path, "sesame_scores", "2026-11-20", "r1", _table(50), "m1", CHECKS)
    b = snapshots.write_snapshot(tmp_path, "sesame_scores", "2026-11-20", "r2", _table(50), "m1", CHECKS)
    files = lambda rel: [(f["path"], f["rows"], f["sha256"]) for f in  # noqa: E731
                         snapshots.read_manifest(tmp_path / "sesame_scores" / rel)["files"]]
    assert files(a) == files(b)


def test_tampered_snapshot_is_refused(tmp_path):
    rel = _publish(tmp_path, "2026-11-20", "r1")
    part = tmp_path / "sesame_scores" / rel / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(snapshots.SnapshotError, match="sha256"):
        snapshots.open_latest("sesame_scores", root=tmp_path)


def test_killed_while_writing_leaves_latest_and_its_snapshot_intact(tmp_path, monkeypatch):
    good = _publish(tmp_path, "2026-11-20", "r1")
    before = (tmp_path / "sesame_scores" / "LATEST").read_text()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "replace", killed)  # dies just before the snapshot folder would appear
    with pytest.raises(KeyboardInterrupt):
        snapshots.write_snapshot(tmp_path, "sesame_scores", "2026-11-21", "r2", _table(20), "m1", CHECKS)
    monkeypatch.undo()
    assert (tmp_path / "sesame_scores" / "LATEST").read_text() == before
    assert not (tmp_path / "sesame_scores" / "ds=2026-11-21").exists()
    snapshots.verify(tmp_path / "sesame_scores" / good)
    # re-running the night publishes correctly
    rel = _publish(tmp_path, "2026-11-21", "r3", n=20)
    assert snapshots.open_latest("sesame_scores", root=tmp_path).to_table().num_rows == 20
    assert rel.startswith("ds=2026-11-21/")


def test_killed_before_latest_moves(tmp_path, monkeypatch):
    _publish(tmp_path, "2026-11-20", "r1")
    before = (tmp_path / "sesame_scores" / "LATEST").read_text()
    snapshots.write_snapshot(tmp_path, "sesame_scores", "2026-11-21", "r2", _table(20), "m1", CHECKS)
    # the process dies here, before flip_latest: readers still get the previous night, whole
    assert (tmp_path / "sesame_scores" / "LATEST").read_text() == before
    assert snapshots.open_latest("sesame_scores", root=tmp_path).to_table().num_rows == 10


def test_failed_checks_are_never_published(tmp_path):
    rel = snapshots.write_snapshot(tmp_path, "sesame_scores", "2026-11-20", "r1", _table(5), "m1",
                                   [{"name": "x", "passed": False}])
    with pytest.raises(snapshots.SnapshotError, match="failed checks"):
        snapshots.flip_latest(tmp_path, "sesame_scores", rel)
    assert not (tmp_path / "sesame_scores" / "LATEST").exists()


def test_backfilled_older_night_does_not_move_latest_back(tmp_path):
    _publish(tmp_path, "2026-11-21", "r1")
    _publish(tmp_path, "2026-11-19", "r2")
    assert json.loads((tmp_path / "sesame_scores" / "LATEST").read_text())["ds"] == "2026-11-21"


def test_retention_keeps_latest(tmp_path):
    for day in range(10, 20):
        _publish(tmp_path, f"2026-11-{day}", "r1")
    removed = snapshots.apply_retention(tmp_path, "sesame_scores", keep_nights=3)
    kept = sorted(p.name for p in (tmp_path / "sesame_scores").glob("ds=*"))
    assert kept == ["ds=2026-11-17", "ds=2026-11-18", "ds=2026-11-19"] and len(removed) == 7
    # LATEST's night survives even when it is older than the kept window
    (tmp_path / "sesame_scores" / "LATEST").write_text(json.dumps({"snapshot": "ds=2026-11-17/run=r1", "ds": "2026-11-17"}))
    snapshots.apply_retention(tmp_path, "sesame_scores", keep_nights=1)
    assert (tmp_path / "sesame_scores" / "ds=2026-11-17").exists()
