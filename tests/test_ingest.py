"""Ingestion on hand-written deliveries: control totals, casting, rules, quarantine reasons, dedupe, accounting,
drift."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from sesame.config import Settings
from sesame.deliveries import file_totals, write_marker
from sesame.schemas import SOURCES
from spark_jobs import ingest

pytestmark = pytest.mark.integration  # Spark: left out of make test-fast


def _deliver(cfg: Settings, source: str, ds: str, text: str) -> Path:
    """A delivery as an upstream hands it over: the file, then a marker with its control totals."""
    folder = cfg.raw / source / f"ds={ds}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SOURCES[source].file
    path.write_text(text)
    lines = [line for line in text.split("\n") if line.strip()]
    records = len(lines) - 1 if SOURCES[source].format == "csv" else len(lines)
    write_marker(folder, source, ds, [file_totals(path, records)])
    return path


def _order(order_id, user="U1", ts="2026-11-20T10:00:00", category="groceries", amount=12.5, status="completed"):
    return json.dumps(
        {
            "order_id": order_id,
            "user_id": user,
            "order_ts": ts,
            "category": category,
            "amount": amount,
            "status": status,
            "merchant_id": "M1",
        }
    )


@pytest.fixture
def cfg(home):
    return Settings()


def test_orders_rules_quarantine_and_accounting(spark, cfg):
    lines = [
        _order("O1"),
        _order("O2", amount=-3),  # negative amount
        _order("O3", category="spaceships"),  # unknown category
        _order("O4", user=None),  # null required field
        '{"order_id": "O5", "user_id": "U1", "order_ts": ',  # malformed line
        _order("O1"),  # duplicate of O1
        _order("O6", ts="2026-11-17T08:00:00"),  # late: happened three days before delivery
        _order("O7", amount="abc"),  # not a number
        _order("O8", ts="2026-11-25T10:00:00"),  # dated after its delivery
    ]
    _deliver(cfg, "orders", "2026-11-20", "\n".join(lines) + "\n")
    rows = ingest.ingest_source(spark, cfg, SOURCES["orders"], ["2026-11-20"])
    (acc,) = rows
    assert acc["delivered"] == 9
    assert acc["accepted"] == 2 and acc["duplicates"] == 1 and acc["quarantined"] == 6
    assert acc["delivered"] == acc["accepted"] + acc["quarantined"] + acc["duplicates"]

    q = pd.read_parquet(cfg.zone("quarantine", "orders", ds="2026-11-20"))
    reasons = sorted(q["reject_reason"])
    assert reasons == sorted(
        [
            "below_min:amount",
            "not_allowed:category",
            "required_null:user_id",
            "malformed_record",
            "bad_type:amount",
            "future_event:order_ts",
        ]
    )
    raw = dict(zip(q["reject_reason"], q["raw_record"]))
    assert raw["malformed_record"] == lines[4]  # a line that does not parse is kept as it came
    # a parsed one as the text of its delivered values
    assert json.loads(raw["below_min:amount"]) == {k: str(v) for k, v in json.loads(lines[1]).items()}

    v = pd.read_parquet(cfg.zone("validated", "orders", ds="2026-11-20"))
    assert sorted(v["order_id"]) == ["O1", "O6"]
    late = v.set_index("order_id").loc["O6", "event_date"]
    assert str(late)[:10] == "2026-11-17"
    assert v["amount"].dtype == "float64"


def _kyc(user: str, document: str) -> str:
    return f"{user},Wang Wei,M,1949,Beijing,1,2020-01-01,1,24,12,engineer,{document}"


def test_identity_document_is_checked_then_kept_only_masked(spark, cfg):
    """The resident identity number's form and check character are rules like any other; what passes keeps only
    its last four characters past the raw zone. A delivery from before the column existed still loads."""
    header = ",".join(SOURCES["users"].column_names)
    valid = "11010519491231002X"  # the check character of the standard's own example
    rows = [
        _kyc("U1", valid),
        _kyc("U2", "110105194912310021"),
        _kyc("U3", "11010519491231002"),
        _kyc("U4", "1101051949123100AX"),
        _kyc("U5", ""),
    ]
    _deliver(cfg, "users", "2026-11-20", header + "\n" + "\n".join(rows) + "\n")
    (acc,) = ingest.ingest_source(spark, cfg, SOURCES["users"], ["2026-11-20"])
    assert (acc["delivered"], acc["accepted"], acc["quarantined"]) == (5, 2, 3)
    q = pd.read_parquet(cfg.zone("quarantine", "users", ds="2026-11-20"))
    assert sorted(q["reject_reason"]) == [
        "bad_checksum:id_document_number",
        "bad_format:id_document_number",
        "bad_format:id_document_number",
    ]
    v = pd.read_parquet(cfg.zone("validated", "users", ds="2026-11-20")).set_index("user_id")
    assert v.loc["U1", "id_document_number"] == "*" * 14 + "002X"
    assert v["id_document_number"].isna().tolist() == [False, True]  # U5 delivered none: the column is optional
    files = [p for p in cfg.zone("validated", "users").rglob("*") if p.is_file()]
    assert files and not any(valid.encode() in p.read_bytes() for p in files)

    older = [c for c in SOURCES["users"].column_names if c != "id_document_number"]
    _deliver(cfg, "users", "2026-11-21", ",".join(older) + "\n" + _kyc("U1", "").rsplit(",", 1)[0] + "\n")
    (acc,) = ingest.ingest_source(spark, cfg, SOURCES["users"], ["2026-11-21"])
    assert (acc["accepted"], acc["quarantined"]) == (1, 0)


@pytest.mark.parametrize("prefilter", [True, False], ids=["broadcast-prefilter", "hashed-join-of-hashes"])
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
    # the earlier days are read between the night's least and greatest key, both ends included: O2 was the least
    # above, O1 is the greatest here
    _deliver(cfg, "orders", "2026-11-22", _order("O1") + "\n" + _order("O0", ts="2026-11-22T09:00:00") + "\n")
    (acc,) = ingest.ingest_source(spark, cfg, SOURCES["orders"], ["2026-11-22"])
    assert (acc["accepted"], acc["duplicates"]) == (1, 1)


@pytest.mark.parametrize("prefilter", [True, False], ids=["broadcast-prefilter", "hashed-join-of-hashes"])
def test_repeats_in_a_catch_up_batch(spark, cfg, monkeypatch, prefilter):
    """Several days in one batch, beside an earlier night: the first delivery of an order wins, then the first
    record of the day (by content, whichever comes first in the file); a snapshot repeats every user every day, so
    only a user twice in one day's snapshot is a repeat."""
    if not prefilter:
        monkeypatch.setattr(ingest, "PREFILTER_MAX_ROWS", 0)
    _deliver(cfg, "orders", "2026-11-19", _order("O1", ts="2026-11-19T08:00:00") + "\n")
    ingest.ingest_source(spark, cfg, SOURCES["orders"], ["2026-11-19"])
    o2, o2_again = _order("O2", amount=5.0), _order("O2", amount=7.0)
    day1 = [_order("O1"), o2_again, _order("O3"), o2, _order("O4")]
    day2 = [_order("O3", ts="2026-11-21T08:00:00"), _order("O5", ts="2026-11-21T08:00:00")]
    _deliver(cfg, "orders", "2026-11-20", "\n".join(day1) + "\n")
    _deliver(cfg, "orders", "2026-11-21", "\n".join(day2) + "\n")
    rows = ingest.ingest_source(spark, cfg, SOURCES["orders"], ["2026-11-20", "2026-11-21"])
    assert [(r["accepted"], r["duplicates"]) for r in rows] == [(3, 2), (1, 1)]
    kept = pd.read_parquet(cfg.zone("validated", "orders")).set_index("order_id")
    assert sorted(kept.index) == ["O1", "O2", "O3", "O4", "O5"]
    assert kept.loc["O1", "ds"] == "2026-11-19" and kept.loc["O3", "ds"] == "2026-11-20"
    # O2 came twice on one day: the same record wins whatever their order in the file
    _deliver(cfg, "orders", "2026-11-20", "\n".join(reversed(day1)) + "\n")
    (again,) = ingest.ingest_source(spark, cfg, SOURCES["orders"], ["2026-11-20"])
    assert (again["accepted"], again["duplicates"]) == (3, 2)
    redone = pd.read_parquet(cfg.zone("validated", "orders", ds="2026-11-20")).set_index("order_id")
    assert redone.loc["O2", "amount"] == kept.loc["O2", "amount"]
    header = ",".join(SOURCES["users"].column_names)
    users = [header, _kyc("U1", ""), _kyc("U2", ""), _kyc("U1", "")]
    _deliver(cfg, "users", "2026-11-20", "\n".join(users) + "\n")
    _deliver(cfg, "users", "2026-11-21", "\n".join([header, _kyc("U1", ""), _kyc("U2", "")]) + "\n")
    rows = ingest.ingest_source(spark, cfg, SOURCES["users"], ["2026-11-20", "2026-11-21"])
    assert [(r["accepted"], r["duplicates"]) for r in rows] == [(2, 1), (2, 0)]


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


def test_unreadable_parquet_as_the_upstream_described_it_fails_the_delivery(cfg):
    """The upstream's own broken file: its control totals agree, the file still cannot be read."""
    folder = cfg.raw / "bills" / "ds=2026-11-20"
    folder.mkdir(parents=True)
    path = folder / "bills.parquet"
    path.write_bytes(b"PAR1\x00\x01truncated")
    write_marker(
        folder,
        "bills",
        "2026-11-20",
        [
            {
                "path": path.name,
                "records": 3,
                "bytes": path.stat().st_size,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
        ],
    )
    with pytest.raises(ingest.DeliveryRejected, match="rule file.readable"):
        ingest.ingest_source(None, cfg, SOURCES["bills"], ["2026-11-20"])


# Control totals. The rejections below happen before anything reads the file: no Spark session is passed.

PAYMENTS_HEADER = (
    "payment_id,user_id,payment_ts,direction,kind,amount,counterparty_id,balance_after,wealth_balance_after"
)


def _payments(n: int) -> str:
    return (
        PAYMENTS_HEADER
        + "\n"
        + "".join(
            f"P{i},U{i % 7},2026-11-20T10:{i % 60:02d}:00,out,merchant,{12.5 + i},,{1000 + i},\n" for i in range(n)
        )
    )


def _orders(n: int) -> str:
    return "".join(_order(f"O{i}", user=f"U{i % 7}", amount=10 + i) + "\n" for i in range(n))


def _rejected(cfg: Settings, source: str, ds: str = "2026-11-20") -> str:
    with pytest.raises(ingest.DeliveryRejected) as err:
        ingest.ingest_source(None, cfg, SOURCES[source], [ds])
    assert not cfg.zone("validated", source).exists()
    return str(err.value)


@pytest.mark.parametrize("source, text", [("payments", _payments(40)), ("orders", _orders(40))], ids=["csv", "jsonl"])
def test_a_file_cut_in_half_fails_the_delivery(cfg, source, text):
    path = _deliver(cfg, source, "2026-11-20", text)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # as the operator did: the rest of the day is simply gone
    message = _rejected(cfg, source)
    assert f"source {source}" in message and str(path) in message and "rule control.bytes" in message
    assert f"{len(data) // 2:,} bytes" in message and f"{len(data):,}" in message
    assert "re-deliver" in message


def test_a_replaced_file_of_the_same_size_fails_on_its_sha256(cfg):
    path = _deliver(cfg, "payments", "2026-11-20", _payments(5))
    text = path.read_text()
    path.write_text(text.replace("P3,U3", "P9,U3"))
    assert path.stat().st_size == len(text.encode())
    message = _rejected(cfg, "payments")
    assert "source payments" in message and str(path) in message and "rule control.sha256" in message


def test_a_marker_with_a_wrong_record_count_fails_the_delivery(cfg):
    path = _deliver(cfg, "orders", "2026-11-20", _orders(6))
    marker = json.loads((path.parent / "_SUCCESS").read_text())
    marker["files"][0]["records"] = 7
    (path.parent / "_SUCCESS").write_text(json.dumps(marker))
    message = _rejected(cfg, "orders")
    assert "source orders" in message and str(path) in message and "rule control.records" in message
    assert "holds 6 records" in message and "say 7" in message


def test_a_marker_copied_from_another_day_fails_the_delivery(cfg):
    earlier = _deliver(cfg, "orders", "2026-11-19", _orders(6))
    path = _deliver(cfg, "orders", "2026-11-20", _orders(6))
    (path.parent / "_SUCCESS").write_bytes((earlier.parent / "_SUCCESS").read_bytes())
    message = _rejected(cfg, "orders")
    assert "rule control.present" in message and "2026-11-19" in message


def test_a_bare_marker_fails_unless_the_setting_accepts_it(spark, home, monkeypatch):
    cfg = Settings()
    path = _deliver(cfg, "orders", "2026-11-20", _orders(3))
    (path.parent / "_SUCCESS").write_text("")
    message = _rejected(cfg, "orders")
    assert "source orders" in message and str(path) in message and "rule control.present" in message
    assert "SESAME_REQUIRE_CONTROL_TOTALS" in message

    monkeypatch.setenv("SESAME_REQUIRE_CONTROL_TOTALS", "0")
    (acc,) = ingest.ingest_source(spark, Settings(), SOURCES["orders"], ["2026-11-20"])
    assert (acc["delivered"], acc["accepted"]) == (3, 3)


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


def _kept_blocks(spark) -> set[int]:
    return {info.id() for info in spark.sparkContext._jsc.sc().getRDDStorageInfo()}


def test_a_source_ingested_keeps_nothing_in_memory(spark, cfg):
    # A catch-up ingests source after source in one application: what one source kept for its several reads (its
    # parsed records, the rows its duplicate window ordered) is freed before the next one is parsed.
    before = _kept_blocks(spark)
    for day in ("2026-11-20", "2026-11-21"):
        _deliver(cfg, "orders", day, "\n".join([_order("O1"), _order(f"O{day[-2:]}")]) + "\n")
    rows = ingest.ingest_source(spark, cfg, SOURCES["orders"], ["2026-11-20", "2026-11-21"])
    assert [r["duplicates"] for r in rows] == [0, 1]
    assert _kept_blocks(spark) <= before
