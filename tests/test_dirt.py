"""Dirt on request: each kind on its own, on a tiny simulation, and the counts in `_dirt.json` checked
against what is actually in the written files by a small pandas re-implementation of ingestion's
rules (reading, declared-column checks, deduplication by natural key, late records)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sesame import identity
from sesame.deliveries import write_delivery
from sesame.dirt import DELIVERY_KINDS, DIRT_FILE, PROFILES, RECORD_KINDS, DirtInjector, applies, parse_dirty
from sesame.schemas import SOURCES, Source
from sesame.simulate import SIMULATION_FILE, SUCCESS_MARKER, generate, simulate

END = date(2025, 3, 31)
USERS, DAYS, SEED = 200, 3, 5
DS = [(END - timedelta(days=DAYS - 1 - i)).isoformat() for i in range(DAYS)]
RATE = 0.05


# ---- a small stand-in for ingestion ----------------------------------------------------------------


def _records(path: Path, src: Source) -> list[dict | None]:
    """The delivered records, None for one that cannot be read (as Spark's corrupt records)."""
    if src.format == "parquet":
        return pq.read_table(path).to_pylist()
    lines = [ln for ln in path.read_text(encoding="utf-8").split("\n") if ln.strip()]
    if src.format == "jsonl":
        out = []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            out.append(rec if isinstance(rec, dict) else None)
        return out
    header = lines[0].split(",")
    out = []
    for line in lines[1:]:
        assert '"' not in line  # the simulator never needs quoting
        fields = line.split(",")
        out.append(dict(zip(header, [f if f != "" else None for f in fields])) if len(fields) == len(header) else None)
    return out


def _cast(value, typ: str):
    if value is None:
        return None
    try:
        if typ == "string":
            return str(value)
        if typ == "int":
            number = float(value)
            return int(number) if number == int(number) else None
        if typ == "double":
            return float(value)
        if typ == "date":
            return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        if typ == "timestamp":
            return datetime.strptime(str(value).strip(), "%Y-%m-%dT%H:%M:%S")
    except (TypeError, ValueError):
        return None
    raise AssertionError(typ)


def _reason(rec: dict | None, src: Source) -> str | None:
    """The first declared rule a record breaks (in ingestion's order), None for a good record."""
    if rec is None:
        return "malformed_record"
    for col in src.columns:
        raw = rec.get(col.name)
        present = raw is not None and str(raw).strip() != ""
        value = _cast(raw, col.type) if present else None
        if col.required and not present:
            return f"required_null:{col.name}"
        if present and value is None:
            return f"bad_type:{col.name}"
        if col.allowed is not None and value is not None and str(value) not in col.allowed:
            return f"not_allowed:{col.name}"
        if col.min is not None and value is not None and value < col.min:
            return f"below_min:{col.name}"
        if col.max is not None and value is not None and value > col.max:
            return f"above_max:{col.name}"
        if col.pattern is not None and value is not None and not re.fullmatch(col.pattern, str(value)):
            return f"bad_format:{col.name}"
        if col.checksum is not None and value is not None and not identity.is_valid(str(value)):
            return f"bad_checksum:{col.name}"
    return None


def _key(rec: dict, src: Source) -> tuple:
    return tuple(str(_cast(rec[k], src.column(k).type)) for k in src.key)


def _event_day(rec: dict, src: Source) -> str:
    return str(_cast(rec[src.event_col], src.column(src.event_col).type))[:10]


def _control_rule(folder: Path, src: Source) -> str | None:
    """The control-totals rule the delivery breaks, if any: its file against the marker's totals."""
    (totals,) = json.loads((folder / SUCCESS_MARKER).read_text())["files"]
    data = (folder / src.file).read_bytes()
    if len(data) != totals["bytes"]:
        return "control.bytes"
    if hashlib.sha256(data).hexdigest() != totals["sha256"]:
        return "control.sha256"
    return None


def ingest_like(raw: Path, name: str) -> dict[str, dict]:
    """Per delivered day: delivered / accepted / quarantined / duplicates, reasons, late, added columns;
    or the rule that rejects the delivery as a whole; or incomplete."""
    src = SOURCES[name]
    seen: set[tuple] = set()
    out = {}
    for folder in sorted((raw / name).glob("ds=*")):
        ds = folder.name[3:]
        if not (folder / SUCCESS_MARKER).exists():
            out[ds] = {"complete": False}
            continue
        path = folder / src.file
        rule = _control_rule(folder, src)
        if rule:
            out[ds] = {"rejected": rule}
            continue
        try:
            records = _records(path, src)
        except Exception:  # noqa: BLE001 - an unreadable Parquet file
            out[ds] = {"rejected": "file.readable"}
            continue
        header = list(records[0]) if records and records[0] else []
        if src.format == "csv":
            header = path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        elif src.format == "parquet":
            header = pq.read_schema(path).names
        else:
            for rec in records:
                header += [k for k in (rec or {}) if k not in header]
        if any(c.required and c.name not in header for c in src.columns):
            out[ds] = {"rejected": "schema.required_columns"}
            continue
        reasons: dict[str, int] = {}
        duplicates, accepted, late = 0, 0, 0
        today: set[tuple] = set()
        for rec in records:
            reason = _reason(rec, src)
            if reason:
                reasons[reason] = reasons.get(reason, 0) + 1
                continue
            key = _key(rec, src)
            if key in today or (not src.full_snapshot and key in seen):
                duplicates += 1
                continue
            today.add(key)
            accepted += 1
            if src.event_col and ds != DS[0] and _event_day(rec, src) < ds:
                late += 1
        if not src.full_snapshot:
            seen |= today
        (totals,) = json.loads((folder / SUCCESS_MARKER).read_text())["files"]
        if totals["records"] != len(records):
            out[ds] = {"rejected": "control.records"}
            continue
        out[ds] = {
            "delivered": len(records),
            "accepted": accepted,
            "quarantined": sum(reasons.values()),
            "duplicates": duplicates,
            "quarantine_reasons": dict(sorted(reasons.items())),
            "late": late,
            "added_columns": [c for c in header if c not in src.column_names],
        }
    return out


def _dirt(raw: Path, name: str, ds: str) -> dict:
    return json.loads((raw / name / f"ds={ds}" / DIRT_FILE).read_text())


def _check_against_files(raw: Path) -> dict[str, int]:
    """Every delivery's expectations hold in its files; returns the records affected per kind."""
    affected: dict[str, int] = {}
    for name in SOURCES:
        got = ingest_like(raw, name)
        for ds in DS:
            report = _dirt(raw, name, ds)
            exp = report["expected"]
            for kind, info in report["kinds"].items():
                affected[kind] = affected.get(kind, 0) + info["records"]
            if not exp["complete"]:
                assert got[ds] == {"complete": False}, (name, ds)
            elif exp["rejected"]:
                assert got[ds] == {"rejected": exp["rejected"]}, (name, ds)
            else:
                want = {
                    k: exp[k]
                    for k in (
                        "delivered",
                        "accepted",
                        "quarantined",
                        "duplicates",
                        "quarantine_reasons",
                        "late",
                        "added_columns",
                    )
                }
                if ds == DS[0]:
                    want.pop("late")
                    got[ds].pop("late")
                assert got[ds] == want, (name, ds)
                assert exp["delivered"] == exp["accepted"] + exp["quarantined"] + exp["duplicates"]
    return affected


# ---- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames():
    """One clean simulation, kept in memory, dirtied differently by each test."""
    return list(generate(USERS, DAYS, END, seed=SEED))


def _write_dirty(frames, tmp_path: Path, dirty) -> tuple[Path, DirtInjector]:
    injector = DirtInjector(dirty, SEED, DS)
    for name, ds, frame in frames:
        injector.apply(name, ds, frame.copy(deep=True)).write(tmp_path)
    return tmp_path, injector


# ---- parsing ---------------------------------------------------------------------------------------


def test_parse_profiles_overrides_and_targets():
    assert parse_dirty("default") == PROFILES["default"]
    assert parse_dirty("") == parse_dirty("none") == {}
    spec = parse_dirty("default, late=0.05,renamed_column=orders@2025-03-31+bills,missing_delivery")
    assert spec["late"] == 0.05 and spec["duplicate"] == PROFILES["default"]["duplicate"]
    assert spec["renamed_column"] == "orders@2025-03-31+bills" and spec["missing_delivery"] == 1
    assert parse_dirty("added_column=2,truncated_file=0.1") == {"added_column": 2, "truncated_file": 0.1}
    assert not any(k in PROFILES["default"] for k in DELIVERY_KINDS)
    for bad in ("spaghetti=0.1", "duplicate", "late=1.5", "malformed=x", "renamed_column=nowhere", "added_column=2.5"):
        with pytest.raises(ValueError):
            parse_dirty(bad)


def test_targets_must_be_simulated_days():
    with pytest.raises(ValueError, match="not a simulated day"):
        DirtInjector("renamed_column=orders@2020-01-01", SEED, DS)


# ---- each kind on its own ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", RECORD_KINDS)
def test_record_kind_counts_match_the_files(frames, tmp_path, kind):
    raw, injector = _write_dirty(frames, tmp_path, {kind: RATE})
    affected = _check_against_files(raw)
    assert affected.get(kind, 0) > 0
    assert injector.summary()["records"][kind] == affected[kind]
    assert set(affected) == {kind}
    for name in SOURCES:
        kinds = _dirt(raw, name, DS[-1])["kinds"]
        assert (kind in kinds) == applies(kind, name), name


def test_late_records_move_to_later_days_and_keep_their_event_day(frames, tmp_path):
    raw, _ = _write_dirty(frames, tmp_path, {"late": 0.1})
    _check_against_files(raw)
    orders = [_dirt(raw, "orders", ds)["kinds"]["late"] for ds in DS]
    assert orders[0]["records"] == 0 and orders[-1]["held_back"] == 0  # nothing arrives first, or leaves last
    assert sum(o["held_back"] for o in orders) == sum(o["records"] for o in orders) > 0


def test_all_record_kinds_together_do_not_overlap(frames, tmp_path):
    raw, _ = _write_dirty(frames, tmp_path, {k: RATE for k in RECORD_KINDS})
    affected = _check_against_files(raw)
    assert set(affected) == set(RECORD_KINDS)


@pytest.mark.parametrize("source", ["payments", "orders", "bills"])
def test_truncated_file_is_cut_in_half_after_its_control_totals(frames, tmp_path, source):
    """Damage in transit: the marker describes the intact file, the file is half of it, whatever its format; the
    late records of the day before skip the rejected day, and every other count stays exact."""
    raw, _ = _write_dirty(
        frames, tmp_path / "dirty", {"truncated_file": f"{source}@{DS[1]}", "duplicate": RATE, "late": 0.1}
    )
    _check_against_files(raw)
    report = _dirt(raw, source, DS[1])
    assert report["expected"]["rejected"] == "control.bytes"
    assert report["kinds"]["truncated_file"]["records"] == report["expected"]["delivered"] > 0
    assert "late" not in report["kinds"]
    folder = raw / source / f"ds={DS[1]}"
    (totals,) = json.loads((folder / SUCCESS_MARKER).read_text())["files"]
    assert (folder / SOURCES[source].file).stat().st_size == totals["bytes"] // 2
    # the totals are those of the day's file as generated, written whole
    (frame,) = [f for n, d, f in frames if (n, d) == (source, DS[1])]
    intact = write_delivery(tmp_path / "intact", source, DS[1], frame)
    assert totals == {
        "path": SOURCES[source].file,
        "records": len(frame),
        "bytes": intact.stat().st_size,
        "sha256": hashlib.sha256(intact.read_bytes()).hexdigest(),
    }
    held = _dirt(raw, source, DS[0])["kinds"]["late"]["held_back"]
    assert _dirt(raw, source, DS[2])["kinds"]["late"]["records"] == held
    assert held > 0 or source == "bills"  # a tenth of a day's few bills here rounds down to none


def test_truncating_an_empty_json_lines_file_leaves_nothing_to_cut(frames, tmp_path):
    (frame,) = [f for n, d, f in frames if (n, d) == ("orders", DS[2])]
    injector = DirtInjector({"truncated_file": f"orders@{DS[2]}"}, SEED, DS)
    injector.apply("orders", DS[2], frame.iloc[:0]).write(tmp_path)
    report = _dirt(tmp_path, "orders", DS[2])
    assert report["expected"]["rejected"] is None and report["expected"]["delivered"] == 0
    folder = tmp_path / "orders" / f"ds={DS[2]}"
    (totals,) = json.loads((folder / SUCCESS_MARKER).read_text())["files"]
    assert totals["bytes"] == (folder / "orders.jsonl").stat().st_size == 0


def test_added_renamed_and_missing_deliveries(frames, tmp_path):
    raw, injector = _write_dirty(
        frames,
        tmp_path,
        {
            "added_column": f"orders@{DS[0]}+bills@{DS[1]}",
            "renamed_column": f"payments@{DS[2]}+social_edges",
            "missing_delivery": f"users@{DS[1]}",
        },
    )
    _check_against_files(raw)
    assert _dirt(raw, "orders", DS[0])["expected"]["added_columns"] == ["channel"]
    assert _dirt(raw, "payments", DS[2])["expected"]["rejected"] == "schema.required_columns"
    header = (raw / "payments" / f"ds={DS[2]}" / "payments.csv").read_text().split("\n", 1)[0].split(",")
    assert "customer_id" in header and "user_id" not in header
    assert "relationship" in pq.read_schema(raw / "social_edges" / f"ds={DS[-1]}" / "social_edges.parquet").names
    missing = raw / "users" / f"ds={DS[1]}"
    assert not (missing / SUCCESS_MARKER).exists() and (missing / "users.csv").exists()
    assert {(f["kind"], f["source"], f["ds"]) for f in injector.summary()["faults"]} == {
        ("added_column", "orders", DS[0]),
        ("added_column", "bills", DS[1]),
        ("renamed_column", "payments", DS[2]),
        ("renamed_column", "social_edges", DS[2]),
        ("missing_delivery", "users", DS[1]),
    }


def test_counted_faults_land_on_the_last_days(frames, tmp_path):
    raw, injector = _write_dirty(frames, tmp_path, {"missing_delivery": 2})
    faults = injector.summary()["faults"]
    assert sorted(f["ds"] for f in faults) == DS[-2:]
    _check_against_files(raw)


# ---- through simulate() ------------------------------------------------------------------------------


def test_default_profile_stays_under_the_quarantine_limit_and_is_recorded(tmp_path):
    summary = simulate(tmp_path, 400, 2, END, seed=3, dirty="default")
    meta = json.loads((tmp_path / SIMULATION_FILE).read_text())
    assert meta["dirty"]["spec"] == "default" and meta["dirty"]["values"] == PROFILES["default"]
    assert meta["dirty"]["faults"] == [] and summary["dirty"] == meta["dirty"]
    assert meta["dirty"]["records"]["duplicate"] > 0
    for name in SOURCES:
        for ds, n in meta["per_day"][name].items():
            exp = _dirt(tmp_path, name, ds)["expected"]
            assert exp["delivered"] == n
            assert exp["quarantined"] <= 0.01 * exp["delivered"], (name, ds)


def test_same_seed_same_dirt_and_clean_rerun_removes_it(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        simulate(out, 120, 2, END, seed=9, dirty="heavy")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    simulate(a, 120, 2, END, seed=9)
    assert not list(a.rglob(DIRT_FILE))
    assert json.loads((a / SIMULATION_FILE).read_text())["dirty"] is None


def test_generated_frames_are_not_changed_by_dirt(frames, tmp_path):
    before = copy.deepcopy([(n, d, f.copy(deep=True)) for n, d, f in frames[:6]])
    injector = DirtInjector(
        {**{k: RATE for k in RECORD_KINDS}, "added_column": f"orders@{DS[0]}", "renamed_column": f"users@{DS[0]}"},
        SEED,
        DS,
    )
    for name, ds, frame in frames[:6]:
        injector.apply(name, ds, frame)
    for (_, _, old), (_, _, new) in zip(before, frames[:6]):
        pd.testing.assert_frame_equal(old, new)
