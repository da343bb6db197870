"""What the scheduler relies on, without starting it: the night waits for its deliveries until a deadline and then
fails naming what is missing; data errors fail a task at once while transient failures are left to retries."""

from __future__ import annotations

import datetime as dt

import pytest

from sesame import night
from sesame.config import Settings
from sesame.schemas import SOURCES
from sesame.spark import JobFailed

pytestmark = pytest.mark.integration  # Airflow: left out of make test-fast

DS = "2026-11-23"
UTC = dt.timezone.utc


def _deliver(cfg: Settings, *sources: str) -> None:
    for name in sources:
        folder = cfg.raw / name / f"ds={DS}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "_SUCCESS").write_text("")


def test_the_night_waits_for_late_deliveries_until_its_deadline(tmp_path):
    cfg = Settings(home=tmp_path, delivery_deadline_hours=6)
    assert night.delivery_deadline(cfg, DS) == dt.datetime(2026, 11, 24, 6, tzinfo=UTC)
    _deliver(cfg, *[s for s in SOURCES if s != "payments"])
    waiting = night.waiting_for_deliveries(cfg, DS, now=dt.datetime(2026, 11, 24, 5, 59, tzinfo=UTC))
    assert len(waiting) == 1 and "source payments" in waiting[0]
    # past the deadline the sensor stops waiting, and the check fails closed naming the source and the rule
    assert night.waiting_for_deliveries(cfg, DS, now=dt.datetime(2026, 11, 24, 6, tzinfo=UTC)) == []
    with pytest.raises(night.NightFailed, match=r"delivery\.complete.*2026-11-24 06:00 UTC.*source payments"):
        night.check_deliveries(cfg, DS)
    # the delivery lands: nothing to wait for, and the check passes
    _deliver(cfg, "payments")
    assert night.waiting_for_deliveries(cfg, DS, now=dt.datetime(2026, 11, 24, 1, tzinfo=UTC)) == []
    assert night.check_deliveries(cfg, DS) == {"sources": len(SOURCES)}


@pytest.mark.parametrize(
    "output, fails_closed",
    [
        (
            "...\nSESAME-ERROR: source bills, file x/bills.parquet: rule file.readable: the Parquet file cannot be read\n",
            True,
        ),
        ("...\njava.lang.OutOfMemoryError: Java heap space\n", False),
        ("...\nPy4JNetworkError: Answer from Java side is empty\n", False),
    ],
)
def test_a_rejected_delivery_fails_closed_and_a_dead_jvm_is_left_to_retries(
    monkeypatch, tmp_path, output, fails_closed
):
    def submit(job, args, cfg):
        raise JobFailed(job, 1, output)

    monkeypatch.setattr(night, "submit", submit)
    with pytest.raises(night.NightFailed if fails_closed else JobFailed) as caught:
        night.spark_job("ingest", ["--ds", DS], Settings(home=tmp_path))
    assert isinstance(caught.value, night.NightFailed) == fails_closed


def test_data_errors_fail_the_task_at_once_and_others_are_retried():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="rule file.readable"):
        with night.data_errors_fail_at_once():
            raise night.NightFailed("source bills, file bills.parquet: rule file.readable")
    with pytest.raises(JobFailed):  # not converted: Airflow retries it
        with night.data_errors_fail_at_once():
            raise JobFailed("ingest", 137, "Killed")
