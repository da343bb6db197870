"""Row-accounting gate and the night's record of verdicts."""
from __future__ import annotations

import pandas as pd
import pytest

from sesame import quality
from sesame.config import Settings


def _accounting(cfg: Settings, ds: str, rows: list[dict]) -> None:
    folder = cfg.lake / "accounting" / f"ds={ds}"
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "part-0.parquet")


def test_quarantine_share_and_balance(tmp_path):
    cfg = Settings(home=tmp_path, max_quarantine_share=0.01)
    _accounting(cfg, "2026-11-20", [
        {"source": "orders", "file": "lake/raw/orders/ds=2026-11-20/orders.jsonl", "delivered": 1000,
         "accepted": 980, "quarantined": 15, "duplicates": 5, "added_columns": ""},
        {"source": "payments", "file": "lake/raw/payments/ds=2026-11-20/payments.csv", "delivered": 1000,
         "accepted": 995, "quarantined": 5, "duplicates": 0, "added_columns": "channel"},
    ])
    checks = {c["name"]: c for c in quality.accounting_checks(cfg, "2026-11-20")}
    assert checks["accounting.balance:orders"]["passed"] and checks["accounting.balance:payments"]["passed"]
    failing = checks["quarantine.share:orders"]
    assert not failing["passed"]
    assert "source orders" in failing["detail"] and "orders.jsonl" in failing["detail"]
    assert "quarantine.max_share" in failing["detail"] and "SESAME_MAX_QUARANTINE_SHARE" in failing["detail"]
    assert checks["quarantine.share:payments"]["passed"]
    assert checks["schema.additive_drift:payments"]["warning"]


def test_verdicts_are_recorded_per_stage_and_read_back(tmp_path):
    cfg = Settings(home=tmp_path)
    quality.record_checks(cfg, "2026-11-20", "input", [{"name": "a", "passed": True}])
    quality.record_checks(cfg, "2026-11-20", "audit", [{"name": "b", "passed": True}])
    assert [c["name"] for c in quality.read_checks(cfg, "2026-11-20")] == ["a", "b"]
    with pytest.raises(quality.GateFailed, match="rule x"):
        quality._finish(cfg, "2026-11-20", "output", [{"name": "c", "passed": False, "detail": "rule x failed"}])
    assert [c["name"] for c in quality.read_checks(cfg, "2026-11-20")] == ["a", "c", "b"]
