"""Upstream deliveries in lake/raw: which days are complete (every source has its _SUCCESS marker), and the
control totals the marker carries.

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
from pathlib import Path
from typing import NamedTuple

from sesame.config import Settings
from sesame.schemas import SOURCES
from sesame.snapshots import sha256_of

MARKER = "_SUCCESS"


class BadMarker(ValueError):
    """A marker that is neither empty nor control totals."""


def complete_days(cfg: Settings, source: str) -> set[str]:
    return {p.parent.name[3:] for p in (cfg.raw / source).glob(f"ds=*/{MARKER}")}


def delivered_days(cfg: Settings, until: str, also: set[tuple[str, str]] = frozenset()) -> list[str]:
    """Days with a complete delivery of every source, up to `until`; a (day, source) in `also` (held deliveries)
    counts as delivered."""
    days: set[str] | None = None
    for name in SOURCES:
        got = complete_days(cfg, name) | {d for d, s in also if s == name}
        days = got if days is None else days & got
    return sorted(d for d in (days or set()) if d <= until)


def missing_deliveries(cfg: Settings, ds: str, include_held: bool = False) -> list[str]:
    """'source X, file Y' for every source whose delivery for ds is not complete; a held delivery is not waited
    for (the night goes on without it) unless `include_held`."""
    from sesame.holds import held

    holds = set() if include_held else {source for day, source in held(cfg) if day == ds}
    return [f"source {s.name}, file {cfg.raw / s.name / f'ds={ds}' / s.file}" for s in SOURCES.values()
            if not (cfg.raw / s.name / f"ds={ds}" / MARKER).exists() and s.name not in holds]


# ---------------------------------------------------------------- control totals

def file_totals(path: Path, records: int, name: str | None = None) -> dict:
    """One file's control totals: its name in the delivery, its records, its size and its sha256."""
    return {"path": name or path.name, "records": int(records), "bytes": path.stat().st_size,
            "sha256": sha256_of(path)}


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


def check_delivery(path: Path, source: str, ds: str, count: Callable[[Path], int],
                   require: bool = True) -> ControlCheck:
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
        return ControlCheck("control.present", "the _SUCCESS marker is empty: it carries no control totals (records, "
                            "bytes, sha256) to check the file against (SESAME_REQUIRE_CONTROL_TOTALS=0 accepts a bare "
                            "marker from an upstream that cannot send them yet)")
    if (marker.get("source"), marker.get("ds")) != (source, ds):
        return ControlCheck("control.present", f"the marker's control totals are for source {marker.get('source')}, "
                            f"day {marker.get('ds')}, not for this delivery")
    totals = next((f for f in marker["files"] if isinstance(f, dict) and f.get("path") == path.name), None)
    if totals is None:
        return ControlCheck("control.present", f"the marker lists no control totals for {path.name}")
    missing = [k for k, kind in (("records", int), ("bytes", int), ("sha256", str))
               if not isinstance(totals.get(k), kind) or isinstance(totals.get(k), bool)]
    if missing:
        return ControlCheck("control.present", f"the control totals for {path.name} lack {', '.join(missing)}")
    size = path.stat().st_size
    if size != totals["bytes"]:
        return ControlCheck("control.bytes", f"the file has {size:,} bytes where the upstream's control totals say "
                            f"{totals['bytes']:,}: it was cut short or changed on its way")
    if sha256_of(path) != totals["sha256"]:
        return ControlCheck("control.sha256", "the file's sha256 differs from the upstream's control totals (same "
                            "size, other bytes): it was replaced or damaged on its way")
    records = count(path)
    if records != totals["records"]:
        return ControlCheck("control.records", f"the file holds {records:,} records where the upstream's control "
                            f"totals say {totals['records']:,}: the file is the one the upstream described, but "
                            "its record count is not", records)
    return ControlCheck(None, "agrees with its control totals", records)
