"""Held deliveries: an operator sets a rejected delivery aside so that later nights run, and nothing is lost.

    lake/holds/<source>/ds=YYYY-MM-DD.json    a delivery held now: who, when, why, and what was delivered
    lake/holds/ledger.jsonl                   every hold and release ever made, in order

A held delivery is not ingested: ingestion writes an accounting row for it (delivered, held, the reason) and the
night's other sources go ahead. `release` (after the upstream re-delivered the day) lets the next night's catch-up
take it, as a late delivery: that night re-ingests from the released day on and recomputes its features from the
whole history, so it equals a rebuild (spark_jobs/ingest.py, spark_jobs/features.py).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path

from sesame import durable
from sesame.config import Settings, ds_partition
from sesame.deliveries import missing_deliveries, read_marker
from sesame.schemas import SOURCES


class HoldRefused(ValueError):
    """The hold or release cannot be made; the message says why."""


def _folder(cfg: Settings) -> Path:
    return cfg.holds_dir


def _path(cfg: Settings, source: str, ds: str) -> Path:
    return _folder(cfg) / source / f"ds={ds}.json"


def held(cfg: Settings) -> dict[tuple[str, str], dict]:
    """The deliveries held now: {(ds, source): the hold}."""
    out = {}
    for path in _folder(cfg).glob("*/ds=*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        out[(record["ds"], record["source"])] = record
    return out


def awaited_deliveries(cfg: Settings, ds: str) -> list[str]:
    """The deliveries of ds the night still waits for: those not complete, but the ones held (the night goes on
    without them); 'source X, file Y' each."""
    return missing_deliveries(cfg, ds, excused={source for day, source in held(cfg) if day == ds})


def _ingested(cfg: Settings, ds: str, source: str) -> bool:
    """Whether ingestion already took this delivery (an accounting row that is not a hold)."""
    import pandas as pd

    folder = cfg.zone("accounting", ds=ds)
    if not folder.exists():
        return False
    acc = pd.read_parquet(folder)
    rows = acc[acc["source"] == source]
    held_rows = rows["hold_reason"].fillna("").ne("") if "hold_reason" in rows else pd.Series(False, index=rows.index)
    return bool(len(rows)) and not bool(held_rows.all())


def _record(cfg: Settings, event: dict) -> None:
    ledger = _folder(cfg) / "ledger.jsonl"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with open(ledger, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event) + "\n")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def hold(cfg: Settings, ds: str, source: str, reason: str, by: str | None = None) -> dict:
    """Set a delivery aside. Refused for an unknown source, without a reason, twice, or once it was ingested."""
    if source not in SOURCES:
        raise HoldRefused(f"unknown source {source!r}; sources: {', '.join(SOURCES)}")
    if not reason.strip():
        raise HoldRefused("a hold needs a reason (--reason): it is what the accounting will say")
    if _path(cfg, source, ds).exists():
        raise HoldRefused(f"source {source}, day {ds} is already held")
    if _ingested(cfg, ds, source):
        raise HoldRefused(f"source {source}, day {ds} was ingested already: there is nothing to set aside")
    src = SOURCES[source]
    file = ds_partition(cfg.raw / source, ds) / src.file
    record = {
        "ds": ds,
        "source": source,
        "file": str(file.relative_to(cfg.home)),
        "reason": reason.strip(),
        "held_by": by or getpass.getuser(),
        "held_at": _now(),
        "delivered": _records_delivered(cfg, source, ds),
        "complete": not any(f"source {source}," in m for m in missing_deliveries(cfg, ds)),
    }
    durable.write_atomic(_path(cfg, source, ds), json.dumps(record, indent=1))
    _record(cfg, {"event": "hold", **record})
    return record


def release(cfg: Settings, ds: str, source: str, by: str | None = None) -> dict:
    """Take a hold off; the next night's catch-up ingests the delivery once it is complete."""
    path = _path(cfg, source, ds)
    if not path.exists():
        raise HoldRefused(f"source {source}, day {ds} is not held")
    record = json.loads(path.read_text(encoding="utf-8"))
    path.unlink()
    event = {
        "event": "release",
        "ds": ds,
        "source": source,
        "released_by": by or getpass.getuser(),
        "released_at": _now(),
        "held_at": record["held_at"],
        "reason": record["reason"],
    }
    _record(cfg, event)
    return event


def _records_delivered(cfg: Settings, source: str, ds: str) -> int | None:
    """What the delivery holds as the upstream counted it (the control totals in its marker); None when there are
    none to read (a delivery that never came, or a bare marker): the hold then says the count is unknown."""
    file = SOURCES[source].file
    try:
        marker = read_marker(ds_partition(cfg.raw / source, ds))
    except (OSError, ValueError):
        return None
    totals = next((f for f in (marker or {}).get("files", []) if f.get("path") == file), None)
    return int(totals["records"]) if totals and isinstance(totals.get("records"), int) else None
