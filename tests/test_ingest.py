"""Ingestion on hand-written deliveries: casting, rules, quarantine reasons, dedupe, accounting, drift."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from sesame.config import Settings
from sesame.schemas import SOURCES
from spark_jobs import ingest


def _deliver(cfg: Settings, source: str, ds: str, text: str) -> None:
    folder = cfg.raw / source / f"ds={ds}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SOURCES[source].file).write_text(text)
    (folder / "_SUCCESS").write_text("")


def _order(order_id, user="U1", ts="2026-11-20T10:00:00", category="groceries", amount=12.5, status="completed"):
    return json.dumps({"order_id": order_id, "user_id": user, "order_ts": ts, "category": category,
                       "amount": amount, "status": status, "merchant_id": "M1"})


@pytest.fixture
def cfg(home):
    return Settings()


def test_orders_rules_quarantine_and_accounting(spark, cfg):
    lines = [
        _order("O1"),
        _order("O2", amount=-3),                    # negative amount
        _order("O3", category="spaceships"),        # unknown category
        _order("O4", user=None),                    # null required field
        '{"order_id": "O5", "user_id": "U1", "order_ts": ',  # malformed line
        _order("O1"),                               # duplicate of O1
        _order("O6", ts="2026-11-17T08:00:00"),     # late: happened three days before delivery
        _order("O7", amount="abc"),                 # not a number
        _order("O8", ts="2026-11-25T10:00:00"),     # dated after its delivery
    ]
    _deliver(cfg, "orders", "2026-11-20", "\n".join(lines) + "\n")
    rows = ingest.ingest_source(spark, cfg, SOURCES["orders"], ["2026-11-20"])
    (acc,) = rows
    assert acc["delivered"] == 9
    assert acc["accepted"] == 2 and acc["duplicates"] == 1 and acc["quarantined"] == 6
    assert acc["delivered"] == acc["accepted"] + acc["quarantined"] + acc["duplicates"]

    q = pd.read_parquet(cfg.zone("quarantine", "orders", ds="2026-11-20"))
    reasons = sorted(q["reject_reason"])
    assert reasons == sorted(["below_min:amount", "not_allowed:category", "required_null:user_id",
                              "malformed_record", "bad_type:amount", "future_event:order_ts"])
    assert q["raw_record"].str.len().min() > 0  # the record is kept as delivered

    v = pd.read_parquet(cfg.zone("validated", "orders", ds="2026-11-20"))
    assert sorted(v["order_id"]) == ["O1", "O6"]
    late = v.set_index("order_id").loc["O6", "event_date"]
    assert str(late)[:10] == "2026-11-17"
    assert v["amount"].dtype == "float64"


@pytest.mark.parametrize("prefilter", [True, False], ids=["broadcast-prefilter", "shuffle-earlier-keys"])
def test_duplicates_redelivered_on_a_later_day(spark, cfg, monkeypatch, prefilter):
    """Both ways of checking earlier nights' keys: a night-sized batch and a catch-up batch too large for it."""
    if not prefilter:
        monkeypatch.setattr(ingest, "PREFILTER_MAX_ROWS", 0)
    _deliver(cfg, "orders", "2026-11-20", _order("O1") + "\n" + _order("O2") + "\n")
    ingest.ingest_source(spark, cfg, SOURCES["orders"], ["2026-11-20"])
    _deliver(cfg, "orders", "2026-11-21", _order("O2") + "\n" + _order("O3", ts="2026-11-21T09:00:00") + "\n")
    (acc,) = ingest.ingest_source(spark, cfg, SOURCES["orders"], ["2026-11-21"])
    assert (acc["delivered"], acc["accepted"], acc["duplicates"]) == (2, 1, 1)
    v = pd.read_parquet(cfg.zone("validated", "orders", ds="2026-11-21"))
    assert list(v["order_id"]) == ["O3"]


def test_csv_added_column_is_tolerated_and_reported(spark, cfg):
    header = "case_id,user_id,court,listed_date,reason,extra_note"
    _deliver(cfg, "blacklist", "2026-11-20", header + "\nC1,U1,Beijing,2026-11-01,debt,hello\n")
    (acc,) = ingest.ingest_source(spark, cfg, SOURCES["blacklist"], ["2026-11-20"])
    assert acc["added_columns"] == "extra_note"
    assert acc["accepted"] == 1


def test_renamed_required_column_fails_the_delivery(spark, cfg):
    header = "case_id,customer,court,listed_date,reason"
    _deliver(cfg, "blacklist", "2026-11-20", header + "\nC1,U1,Beijing,2026-11-01,debt\n")
    with pytest.raises(ingest.DeliveryRejected) as err:
        ingest.ingest_source(spark, cfg, SOURCES["blacklist"], ["2026-11-20"])
    message = str(err.value)
    assert "source blacklist" in message and "blacklist.csv" in message and "schema.required_columns" in message
    assert "user_id" in message


def test_truncated_parquet_fails_the_delivery(spark, cfg):
    folder = cfg.raw / "bills" / "ds=2026-11-20"
    folder.mkdir(parents=True)
    (folder / "bills.parquet").write_bytes(b"PAR1\x00\x01truncated")
    with pytest.raises(ingest.DeliveryRejected, match="file.readable"):
        ingest.ingest_source(spark, cfg, SOURCES["bills"], ["2026-11-20"])


def test_catch_up_writes_one_file_per_delivery_day(spark, cfg):
    # Keep both shuffle partitions, as a larger delivery would: each day must still land in one file.
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    try:
        days = ["2026-11-20", "2026-11-21", "2026-11-22"]
        for day in days:
            lines = [_order(f"O{day[-2:]}-{i}", user=f"U{i}", ts=f"{day}T09:00:00") for i in range(40)]
            _deliver(cfg, "orders", day, "\n".join(lines) + "\n")
        rows = ingest.ingest_source(spark, cfg, SOURCES["orders"], days)
    finally:
        spark.conf.unset("spark.sql.adaptive.coalescePartitions.enabled")
    assert [r["accepted"] for r in rows] == [40, 40, 40]
    for day in days:
        files = list(cfg.zone("validated", "orders", ds=day).glob("*.parquet"))
        assert len(files) == 1, f"{day}: {len(files)} files"
        assert len(pd.read_parquet(files[0])) == 40
