"""Every kind of dirt on its own, through the real Spark ingestion: the row accounting and the quarantine
reasons equal the exact counts the simulator wrote beside the delivery (_dirt.json)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from sesame.config import Settings
from sesame.dirt import RECORD_KINDS
from sesame.schemas import SOURCES
from sesame.simulate import simulate
from spark_jobs import ingest

pytestmark = pytest.mark.integration  # Spark: left out of make test-fast

END = "2026-05-03"
DAYS = [(dt.date.fromisoformat(END) - dt.timedelta(days=i)).isoformat() for i in (2, 1, 0)]
# the sources each kind can touch (see sesame.dirt)
TOUCHED = {
    "duplicate": ("orders", "payments"),
    "redelivered": ("orders", "payments"),
    "late": ("orders",),
    "malformed": ("orders", "payments"),
    "null_required": ("orders", "payments", "bills"),
    "negative_amount": ("orders", "payments", "bills"),
    "absurd_amount": ("orders", "payments"),
    "unknown_category": ("orders", "payments"),
    "mistyped_document": ("users",),
}


@pytest.mark.parametrize("kind", RECORD_KINDS)
def test_each_dirt_kind_is_accounted_to_the_record(spark, tmp_path, kind):
    cfg = Settings(home=tmp_path)
    simulate(cfg.raw, users=400, days=3, end_ds=dt.date.fromisoformat(END), seed=9, dirty={kind: 0.02})
    affected = 0
    for name in TOUCHED[kind]:
        rows = {r["ds"]: r for r in ingest.ingest_source(spark, cfg, SOURCES[name], DAYS)}
        for ds in DAYS:
            dirt = json.loads((cfg.raw / name / f"ds={ds}" / "_dirt.json").read_text())
            expected, got = dirt["expected"], rows[ds]
            assert (got["delivered"], got["accepted"], got["quarantined"], got["duplicates"]) == (
                expected["delivered"],
                expected["accepted"],
                expected["quarantined"],
                expected["duplicates"],
            ), (kind, name, ds)
            zone = cfg.zone("quarantine", name, ds=ds)
            reasons = pd.read_parquet(zone)["reject_reason"].value_counts().to_dict() if zone.exists() else {}
            assert reasons == expected["quarantine_reasons"], (kind, name, ds)
            affected += dirt["kinds"].get(kind, {}).get("records", 0)
    assert affected > 0, f"{kind} touched no record"


def test_truncated_files_are_rejected_and_the_other_days_stay_exact(spark, tmp_path):
    """A file cut in half in transit, in each format: the delivery is rejected by its control totals, naming the
    source and the file; the days around it (with the late records that skipped it) ingest to the record."""
    cfg = Settings(home=tmp_path)
    sources = ("payments", "orders", "bills")  # CSV, JSON lines, Parquet
    simulate(
        cfg.raw,
        users=400,
        days=3,
        end_ds=dt.date.fromisoformat(END),
        seed=9,
        dirty={"truncated_file": "+".join(f"{s}@{DAYS[1]}" for s in sources), "late": 0.05, "duplicate": 0.01},
    )
    for name in sources:
        cut = cfg.raw / name / f"ds={DAYS[1]}" / SOURCES[name].file
        rule = json.loads((cut.parent / "_dirt.json").read_text())["expected"]["rejected"]
        with pytest.raises(ingest.DeliveryRejected) as err:
            ingest.ingest_source(spark, cfg, SOURCES[name], DAYS)
        assert f"source {name}, file {cut}: rule {rule}:" in str(err.value)

        others = [DAYS[0], DAYS[2]]
        rows = {r["ds"]: r for r in ingest.ingest_source(spark, cfg, SOURCES[name], others)}
        for ds in others:
            expected = json.loads((cfg.raw / name / f"ds={ds}" / "_dirt.json").read_text())["expected"]
            got = rows[ds]
            assert (got["delivered"], got["accepted"], got["quarantined"], got["duplicates"]) == (
                expected["delivered"],
                expected["accepted"],
                expected["quarantined"],
                expected["duplicates"],
            ), (name, ds)
        if name != "bills":  # the day before's late records skipped the rejected day for the one after
            assert json.loads((cfg.raw / name / f"ds={DAYS[2]}" / "_dirt.json").read_text())["expected"]["late"] > 0
