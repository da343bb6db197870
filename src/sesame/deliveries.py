"""Upstream deliveries in lake/raw: which days are complete (every source has its _SUCCESS marker)."""
from __future__ import annotations

from sesame.config import Settings
from sesame.schemas import SOURCES


def complete_days(cfg: Settings, source: str) -> set[str]:
    return {p.parent.name[3:] for p in (cfg.raw / source).glob("ds=*/_SUCCESS")}


def delivered_days(cfg: Settings, until: str) -> list[str]:
    """Days with a complete delivery of every source, up to `until`."""
    days: set[str] | None = None
    for name in SOURCES:
        got = complete_days(cfg, name)
        days = got if days is None else days & got
    return sorted(d for d in (days or set()) if d <= until)


def missing_deliveries(cfg: Settings, ds: str) -> list[str]:
    """'source X, file Y' for every source whose delivery for ds is not complete."""
    return [f"source {s.name}, file {cfg.raw / s.name / f'ds={ds}' / s.file}" for s in SOURCES.values()
            if not (cfg.raw / s.name / f"ds={ds}" / "_SUCCESS").exists()]
