"""Write-audit-publish for snapshots: immutable folders, atomic LATEST, a killed publish changes nothing,
retention never removes what LATEST names, and the reader verifies checksums."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from sesame import snapshots
from tests.service_snapshots import scores_table, visa_table


def _table(n, start=0, dataset="sesame_scores"):
    """A table of n users as the dataset's contract has it (start shifts the scores, so that nights differ)."""
    scores = scores_table("2026-11-20", n, shift=start)
    return scores if dataset == "sesame_scores" else visa_table("2026-11-20", scores)


CHECKS = [{"name": "all", "passed": True}]


def _publish(root, ds, run, n=10):
    rel = snapshots.write_snapshot(root, "sesame_scores", ds, run, _table(n), "m1", CHECKS)
    snapshots.publish_night(root, ds, run, {"sesame_scores": rel})
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

    def files(rel):
        return [
            (f["path"], f["rows"], f["sha256"])
            for f in snapshots.read_manifest(tmp_path / "sesame_scores" / rel)["files"]
        ]

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
    # the process dies here, before NIGHT moves: readers still get the previous night, whole
    assert (tmp_path / "sesame_scores" / "LATEST").read_text() == before
    assert snapshots.open_latest("sesame_scores", root=tmp_path).to_table().num_rows == 10


def test_failed_checks_are_never_published(tmp_path):
    rel = snapshots.write_snapshot(
        tmp_path, "sesame_scores", "2026-11-20", "r1", _table(5), "m1", [{"name": "x", "passed": False}]
    )
    with pytest.raises(snapshots.SnapshotError, match="failed checks"):
        snapshots.publish_night(tmp_path, "2026-11-20", "r1", {"sesame_scores": rel})
    assert not (tmp_path / "sesame_scores" / "LATEST").exists() and not (tmp_path / "NIGHT").exists()


def test_backfilled_older_night_does_not_move_latest_back(tmp_path):
    _publish(tmp_path, "2026-11-21", "r1")
    _publish(tmp_path, "2026-11-19", "r2")
    assert json.loads((tmp_path / "sesame_scores" / "LATEST").read_text())["ds"] == "2026-11-21"
    assert snapshots.latest(tmp_path, "sesame_scores")["ds"] == "2026-11-21"
    # ...but it is published: NIGHT records it
    assert snapshots.is_published(tmp_path, "2026-11-19", "r2") and not snapshots.is_published(tmp_path, "2026-11-20")


def test_retention_keeps_latest(tmp_path):
    for day in range(10, 20):
        _publish(tmp_path, f"2026-11-{day}", "r1")
    removed = snapshots.apply_retention(tmp_path, "sesame_scores", keep_nights=3)
    kept = sorted(p.name for p in (tmp_path / "sesame_scores").glob("ds=*"))
    assert kept == ["ds=2026-11-17", "ds=2026-11-18", "ds=2026-11-19"] and len(removed) == 7
    # the current night survives even when it is older than the kept window
    pointer = json.loads((tmp_path / "NIGHT").read_text())
    pointer.update(ds="2026-11-17", datasets={"sesame_scores": {"snapshot": "ds=2026-11-17/run=r1"}})
    (tmp_path / "NIGHT").write_text(json.dumps(pointer))
    snapshots.apply_retention(tmp_path, "sesame_scores", keep_nights=1)
    assert (tmp_path / "sesame_scores" / "ds=2026-11-17").exists()


def _night(root, ds, run, n):
    """Both datasets of a night, written and published together."""
    written = {
        name: snapshots.write_snapshot(root, name, ds, run, _table(n, start=n, dataset=name), "m1", CHECKS)
        for name in ("sesame_scores", "visa_eligibility")
    }
    snapshots.publish_night(root, ds, run, written)
    return written


def test_a_reader_of_a_half_moved_night_gets_one_night_whole(tmp_path, monkeypatch):
    """Killed at each step of publishing night 2: a reader sees night 1 whole until NIGHT moves, then night 2 whole;
    never the scores of one night with the visa list of the other."""
    _night(tmp_path, "2026-11-20", "r1", 10)
    written = {
        name: snapshots.write_snapshot(
            tmp_path, name, "2026-11-21", "r2", _table(20, start=20, dataset=name), "m1", CHECKS
        )
        for name in ("sesame_scores", "visa_eligibility")
    }
    rows_of = {
        night: {name: snapshots.read_manifest(tmp_path / name / rel)["row_count"] for name, rel in runs.items()}
        for night, runs in (("2026-11-20", {n: "ds=2026-11-20/run=r1" for n in written}), ("2026-11-21", written))
    }
    assert all(rows_of["2026-11-20"][n] != rows_of["2026-11-21"][n] for n in written)
    real_write = snapshots.write_atomic
    for steps_done in range(4):  # NIGHT, then the two LATEST files
        calls = []

        def dies(path, text, calls=calls, steps_done=steps_done):
            if len(calls) == steps_done:
                raise KeyboardInterrupt(f"killed before writing {path.name}")
            calls.append(path)
            real_write(path, text)

        monkeypatch.setattr(snapshots, "write_atomic", dies)
        if steps_done < 3:
            with pytest.raises(KeyboardInterrupt):
                snapshots.publish_night(tmp_path, "2026-11-21", "r2", written)
        else:
            snapshots.publish_night(tmp_path, "2026-11-21", "r2", written)
        monkeypatch.undo()
        pointer, datasets = snapshots.open_night(tmp_path)
        rows = {name: d.to_table().num_rows for name, d in datasets.items()}
        assert pointer["ds"] == ("2026-11-20" if steps_done == 0 else "2026-11-21")
        assert rows == rows_of[pointer["ds"]]
        assert {name: snapshots.latest(tmp_path, name)["ds"] for name in rows} == {name: pointer["ds"] for name in rows}
        assert snapshots.is_published(tmp_path, "2026-11-21") == (steps_done > 0)
        (tmp_path / "NIGHT").write_text(
            json.dumps(  # back to night 1 for the next kill
                {
                    **pointer,
                    "ds": "2026-11-20",
                    "run_id": "r1",
                    "datasets": {
                        n: {"snapshot": "ds=2026-11-20/run=r1", "row_count": rows_of["2026-11-20"][n]} for n in rows
                    },
                    "nights": {"2026-11-20": pointer["nights"]["2026-11-20"]},
                }
            )
        )


def test_a_night_is_published_only_with_snapshots_of_that_night(tmp_path):
    written = _night(tmp_path, "2026-11-20", "r1", 10)
    with pytest.raises(snapshots.SnapshotError, match="not of night 2026-11-21"):
        snapshots.publish_night(tmp_path, "2026-11-21", "r2", written)
    assert snapshots.night_pointer(tmp_path)["ds"] == "2026-11-20"


def test_a_night_published_again_keeps_its_earlier_run_published(tmp_path):
    _night(tmp_path, "2026-11-20", "r1", 10)
    _night(tmp_path, "2026-11-20", "r2", 10)
    assert snapshots.night_pointer(tmp_path)["run_id"] == "r2"
    assert snapshots.is_published(tmp_path, "2026-11-20", "r1") and snapshots.is_published(tmp_path, "2026-11-20", "r2")
    assert not snapshots.is_published(tmp_path, "2026-11-20", "r3")


# ------------------------------------------------------------------------------------------- contracts
def test_every_published_dataset_has_a_contract_the_writer_enforces(tmp_path):
    from sesame import contracts

    published = [
        "sesame_scores",
        "visa_eligibility",
        "visa_eligibility_changes",
        "score_exclusions",
        "reason_code_dictionary",
    ]
    for name in published:
        contract = contracts.load(name, major=1)
        assert contract["dataset"] == name and contract["schema_version"].startswith("1.")
        assert contract["key"] and all(c["type"] in contracts.TYPES and c["description"] for c in contract["columns"])
    good = _table(5)
    rel = snapshots.write_snapshot(
        tmp_path,
        "sesame_scores",
        "2026-11-20",
        "r1",
        good,
        "m1",
        CHECKS,
        provenance={"code_version": {"git_commit": "abc"}},
    )
    manifest = snapshots.read_manifest(tmp_path / "sesame_scores" / rel)
    assert manifest["schema_version"] == "1.0" and manifest["contract"] == "contracts/sesame_scores/v1.json"
    assert manifest["provenance"] == {"code_version": {"git_commit": "abc"}}

    wrong = {
        "a column missing": (good.drop_columns(["tier"]), "columns"),
        "another type": (
            good.set_column(good.schema.get_field_index("score"), "score", good.column("score").cast(pa.int64())),
            "column score is int64",
        ),
        "a null user id": (
            good.set_column(1, "user_id", pa.array([None, "U2", "U3", "U4", "U5"], pa.string())),
            "column user_id has 1 nulls",
        ),
        "a user twice": (pa.concat_tables([good, good.slice(0, 1)]), "key ['user_id']"),
    }
    for run, (table, says) in enumerate(wrong.values()):
        with pytest.raises(snapshots.SnapshotError, match="contracts/sesame_scores/v1.json") as refused:
            snapshots.write_snapshot(tmp_path, "sesame_scores", "2026-11-21", f"bad{run}", table, "m1", CHECKS)
        assert says in str(refused.value)
        assert not (tmp_path / "sesame_scores" / "ds=2026-11-21" / f"run=bad{run}").exists()


def test_a_reader_asking_for_another_major_version_is_refused(tmp_path):
    _publish(tmp_path, "2026-11-20", "r1")
    assert snapshots.open_latest("sesame_scores", tmp_path, major=1).to_table().num_rows == 10
    with pytest.raises(snapshots.SnapshotError, match="schema version 1.0; this reader understands major version 2"):
        snapshots.open_latest("sesame_scores", tmp_path, major=2)
    # a later night published under a version 2 contract: version 1 readers are refused, not misled
    folder = tmp_path / "sesame_scores" / snapshots.latest(tmp_path, "sesame_scores")["snapshot"]
    manifest = snapshots.read_manifest(folder)
    (folder / "_manifest.json").write_text(json.dumps({**manifest, "schema_version": "2.0"}))
    with pytest.raises(snapshots.SnapshotError, match="schema version 2.0"):
        snapshots.open_latest("sesame_scores", tmp_path, major=1)
    assert snapshots.open_latest("sesame_scores", tmp_path, major=2).to_table().num_rows == 10
