"""Upstream deliveries in lake/raw: which days are complete (every source has its _SUCCESS marker), the
control totals the marker carries, and the writing of a delivery (data file, then marker) as the upstream does it.

The upstream writes the marker last, as JSON describing each file it delivered, so that a file cut short or
replaced on its way, or one that holds other records than the upstream counted, is caught before it is read:

    {"source": "payments", "ds": "2026-11-23",
     "files": [{"path": "payments.csv", "records": 15092, "bytes": 1843210, "sha256": "9f2c..."}]}

`records` counts records as the upstream wrote them: data lines of a CSV file (not its header), lines of a
JSON-lines file, rows of a Parquet file. An empty marker (as older upstreams write) carries no control totals.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sesame.config import Settings, ds_partition, ds_partitions
from sesame.schemas import SOURCES, Source
from sesame.snapshots import sha256_of

MARKER = "_SUCCESS"


class BadMarker(ValueError):
    """A marker that is neither empty nor control totals."""


def complete_days(cfg: Settings, source: str) -> set[str]:
    return set(ds_partitions(cfg.raw / source, holding=MARKER))


def delivered_days(cfg: Settings, until: str, also: set[tuple[str, str]] = frozenset()) -> list[str]:
    """Days with a complete delivery of every source, up to `until`; a (day, source) in `also` (held deliveries)
    counts as delivered."""
    days: set[str] | None = None
    for name in SOURCES:
        got = complete_days(cfg, name) | {d for d, s in also if s == name}
        days = got if days is None else days & got
    return sorted(d for d in (days or set()) if d <= until)


def missing_deliveries(cfg: Settings, ds: str, excused: set[str] = frozenset()) -> list[str]:
    """'source X, file Y' for every source whose delivery for ds is not complete, but the `excused` sources (those
    an operator set aside: sesame.holds.awaited_deliveries)."""
    return [
        f"source {s.name}, file {ds_partition(cfg.raw / s.name, ds) / s.file}"
        for s in SOURCES.values()
        if not (ds_partition(cfg.raw / s.name, ds) / MARKER).exists() and s.name not in excused
    ]


# ---------------------------------------------------------------- control totals


def file_totals(path: Path, records: int, name: str | None = None) -> dict:
    """One file's control totals: its name in the delivery, its records, its size and its sha256."""
    return {"path": name or path.name, "records": int(records), "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def write_marker(folder: Path, source: str, ds: str, files: list[dict]) -> Path:
    """Write the delivery's `_SUCCESS` marker with its control totals, whole or not at all (a reader that sees the
    marker must see all of it)."""
    marker = Path(folder) / MARKER
    tmp = marker.with_name(f".{MARKER}.inprogress")
    tmp.write_text(json.dumps({"source": source, "ds": ds, "files": files}, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, marker)
    return marker


def read_marker(folder: Path) -> dict | None:
    """The marker's control totals; None for a bare (empty) marker. Raises BadMarker for anything else, or when
    there is no marker at all."""
    if not (Path(folder) / MARKER).exists():
        raise BadMarker("there is no _SUCCESS marker: the delivery is not complete")
    text = (Path(folder) / MARKER).read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        return None
    try:
        marker = json.loads(text)
    except ValueError:
        raise BadMarker("the _SUCCESS marker is not JSON control totals") from None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        raise BadMarker("the _SUCCESS marker has no list of files with control totals")
    return marker


class ControlCheck(NamedTuple):
    """The verdict on one delivered file: `rule` is the first rule it breaks (None when it agrees with its control
    totals, or when a bare marker is accepted), `why` says what was found, `records` the records counted if any."""

    rule: str | None
    why: str
    records: int | None = None


def check_delivery(
    path: Path, source: str, ds: str, count: Callable[[Path], int], require: bool = True
) -> ControlCheck:
    """Check a delivered file against the control totals in the marker beside it, cheapest test first (presence,
    size, sha256, then the record count, which `count` makes the way ingestion counts)."""
    path = Path(path)
    try:
        marker = read_marker(path.parent)
    except BadMarker as exc:
        return ControlCheck("control.present", f"{exc}: the file cannot be checked against the upstream's own totals")
    if marker is None:
        if not require:
            return ControlCheck(None, "bare marker accepted (SESAME_REQUIRE_CONTROL_TOTALS=0)")
        return ControlCheck(
            "control.present",
            "the _SUCCESS marker is empty: it carries no control totals (records, "
            "bytes, sha256) to check the file against (SESAME_REQUIRE_CONTROL_TOTALS=0 accepts a bare "
            "marker from an upstream that cannot send them yet)",
        )
    if (marker.get("source"), marker.get("ds")) != (source, ds):
        return ControlCheck(
            "control.present",
            f"the marker's control totals are for source {marker.get('source')}, "
            f"day {marker.get('ds')}, not for this delivery",
        )
    totals = next((f for f in marker["files"] if isinstance(f, dict) and f.get("path") == path.name), None)
    if totals is None:
        return ControlCheck("control.present", f"the marker lists no control totals for {path.name}")
    missing = [
        k
        for k, kind in (("records", int), ("bytes", int), ("sha256", str))
        if not isinstance(totals.get(k), kind) or isinstance(totals.get(k), bool)
    ]
    if missing:
        return ControlCheck("control.present", f"the control totals for {path.name} lack {', '.join(missing)}")
    size = path.stat().st_size
    if size != totals["bytes"]:
        return ControlCheck(
            "control.bytes",
            f"the file has {size:,} bytes where the upstream's control totals say "
            f"{totals['bytes']:,}: it was cut short or changed on its way",
        )
    if sha256_of(path) != totals["sha256"]:
        return ControlCheck(
            "control.sha256",
            "the file's sha256 differs from the upstream's control totals (same "
            "size, other bytes): it was replaced or damaged on its way",
        )
    records = count(path)
    if records != totals["records"]:
        return ControlCheck(
            "control.records",
            f"the file holds {records:,} records where the upstream's control "
            f"totals say {totals['records']:,}: the file is the one the upstream described, but "
            "its record count is not",
            records,
        )
    return ControlCheck(None, "agrees with its control totals", records)


# ---------------------------------------------------------------- writing a delivery

_ARROW_TYPES = {
    "string": pa.string(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.string(),
    "boolean": pa.bool_(),
}


def _arrow_column(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    if isinstance(values.dtype, pd.ArrowDtype):
        return pa.chunked_array(values.array.__arrow_array__())
    return pa.array(values.to_numpy(), from_pandas=True)


def _arrow_table(source: Source, df: pd.DataFrame) -> pa.Table:
    """The frame's columns (in the frame's order) as an Arrow table, declared columns in their
    declared types; data that does not fit the declared type is written as it is."""
    arrays, fields = [], []
    declared = {c.name: c for c in source.columns}
    for name in df.columns:
        values = df[name]
        col = declared.get(name)
        typ = _ARROW_TYPES.get(col.type, pa.string()) if col is not None else None
        try:
            if typ is None:
                raise TypeError("not a declared column")
            if isinstance(values.dtype, pd.ArrowDtype):
                arr = _arrow_column(values).cast(typ)
            elif col.type == "date":  # ISO strings
                arr = _arrow_column(values.astype(pd.ArrowDtype(pa.string()))).cast(typ)
            else:
                arr = pa.array(values, type=typ, from_pandas=True)
        except (ValueError, TypeError, pa.ArrowException):
            arr = (
                _arrow_column(values)
                if isinstance(values.dtype, pd.ArrowDtype)
                else pa.array(values.astype(object).where(values.notna(), None).tolist())
            )
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, nullable=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _json_default(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, (date, pd.Timestamp)):
        return v.isoformat()
    raise TypeError(f"cannot write {type(v).__name__} as JSON")


def _python_values(values: pd.Series) -> list:
    """A column as Python values (None for missing, dates as `datetime.date`)."""
    if isinstance(values.dtype, pd.ArrowDtype):
        return _arrow_column(values).to_pylist()
    if values.dtype == object:
        return values.where(values.notna(), None).tolist()
    return pa.array(values, from_pandas=True).to_pylist()


def _write_jsonl(path: Path, df: pd.DataFrame) -> None:
    """One JSON object per line; floats in their shortest exact form, nulls as null."""
    names = [str(c) for c in df.columns]
    columns = [_python_values(df[c]) for c in df.columns]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False).encode
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(dumps(dict(zip(names, row))) + "\n" for row in zip(*columns))


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    """A header line, then one line per record; nulls as empty fields, dates as YYYY-MM-DD."""
    plain = {}
    for name in df.columns:
        values = df[name]
        if isinstance(values.dtype, pd.ArrowDtype):
            arr = _arrow_column(values)
            if not pa.types.is_string(arr.type):
                arr = arr.cast(pa.string())
            values = pd.Series(arr.to_numpy(), dtype=object, index=df.index)
        plain[name] = values
    pd.DataFrame(plain, index=df.index, copy=False).to_csv(path, index=False, lineterminator="\n")


def write_delivery(
    raw_dir: Path,
    source: str,
    ds: str,
    df: pd.DataFrame,
    *,
    patch: Callable[[Path], None] | None = None,
    damage: Callable[[Path], None] | None = None,
    sidecars: dict[str, str] | None = None,
    complete: bool = True,
) -> Path:
    """Write one day's delivery of a source in its declared format, then its `_SUCCESS` marker with
    the upstream's control totals of the file (see :func:`write_marker`).

    The data file is written under a hidden temporary name and renamed into place, and the marker
    is written last (itself renamed into place), so a reader never sees a marker beside a partial
    file, nor half a marker.

    Hooks for altering a delivery on its way: `patch` is called with the temporary data file
    before its control totals are taken (the upstream's own content, which the totals describe);
    `damage` after (damage in transit, which the totals do not describe); `sidecars` (name -> text,
    names starting with an underscore so that readers skip them) are written beside the data
    before the marker; ``complete=False`` leaves the marker out, as for a delivery that never
    finished. Sidecars of an earlier run in the same folder are removed.
    """
    src = SOURCES[source]
    folder = ds_partition(Path(raw_dir) / source, ds)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    if marker.exists():
        marker.unlink()
    for old in folder.glob("_*"):
        if old.is_file() and old.name not in (sidecars or {}):
            old.unlink()
    target = folder / src.file
    tmp = folder / f".{src.file}.inprogress"
    if src.format == "csv":
        _write_csv(tmp, df)
    elif src.format == "jsonl":
        _write_jsonl(tmp, df)
    elif src.format == "parquet":
        pq.write_table(_arrow_table(src, df), tmp)
    else:  # pragma: no cover - schemas only declare the three formats above
        raise ValueError(f"unknown format {src.format!r}")
    if patch is not None:
        patch(tmp)
    totals = file_totals(tmp, len(df), name=src.file)
    if damage is not None:
        damage(tmp)
    os.replace(tmp, target)
    for name, text in (sidecars or {}).items():
        side_tmp = folder / f".{name}.inprogress"
        side_tmp.write_text(text, encoding="utf-8")
        os.replace(side_tmp, folder / name)
    if complete:
        write_marker(folder, source, ds, [totals])
    return target
