"""The DAGs import cleanly and have the expected shape (thin: every task calls into the library)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sesame.config import NIGHTLY_STAGES

pytestmark = pytest.mark.integration  # Airflow: left out of make test-fast

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    import os

    os.environ["AIRFLOW_HOME"] = str(tmp_path_factory.mktemp("airflow"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"sesame_nightly", "sesame_train"}


def test_nightly_shape(dagbag):
    dag = dagbag.dags["sesame_nightly"]
    assert dag.catchup is False and dag.max_active_runs == 1
    # the library's list of the night's stages, one task after the other
    order = list(NIGHTLY_STAGES)
    assert set(dag.task_ids) == set(order)
    # deliveries first, the report last; Spark's features, then dbt's (over them), then scoring; nothing is
    # published before the audit
    at = order.index
    assert order[0] == "check_deliveries" and order[-1] == "report"
    assert at("quality_gate") < at("features") < at("dbt_features") < at("feature_store") < at("score")
    assert at("score") < at("warehouse") < at("audit") < at("publish")
    for upstream, downstream in zip(order, order[1:]):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}


def test_train_shape(dagbag):
    dag = dagbag.dags["sesame_train"]
    order = ["ingest_history", "training_set", "dbt_features", "fit_evaluate_register"]
    assert set(dag.task_ids) == set(order)
    for upstream, downstream in zip(order, order[1:]):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}


def test_dag_files_hold_no_business_logic():
    for path in DAGS.glob("*.py"):
        text = path.read_text()
        for forbidden in ("pyspark", "duckdb", "pandas", "sklearn", "SELECT", "select "):
            assert forbidden not in text, f"{path.name} contains {forbidden!r}: logic belongs in src/sesame"


def test_failures_alert_the_operator(dagbag, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from sesame import night

    for dag_id in ("sesame_nightly", "sesame_train"):
        assert dagbag.dags[dag_id].default_args["on_failure_callback"] is night.alert_on_failure
    monkeypatch.setenv("SESAME_HOME", str(tmp_path))
    context = {
        "dag": SimpleNamespace(dag_id="sesame_nightly"),
        "ds": "2026-11-24",
        "run_id": "r1",
        "task_instance": SimpleNamespace(task_id="ingest", dag_id="sesame_nightly"),
        "exception": RuntimeError("source orders, file x.jsonl: rule schema.required_columns"),
    }
    path = night.alert_on_failure(context)
    alert = json.loads(path.read_text())
    assert alert["task"] == "ingest" and "schema.required_columns" in alert["what_failed"]
    assert "sesame night --ds 2026-11-24" in alert["next_step"]
    lines = (tmp_path / "alerts" / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["ds"] == "2026-11-24"


@pytest.mark.parametrize("dag_id", ["sesame_nightly", "sesame_train"])
def test_the_run_the_scheduler_starts_after_day_d_has_ds_d(dagbag, dag_id):
    """Whatever `[scheduler] create_cron_data_intervals` says: the scheduler's next run after the interval that ended
    on day D starts once day D is over, and its logical date (Airflow's `ds`) is D, the day whose deliveries it
    processes."""
    import pendulum
    from airflow.timetables.base import DataInterval, TimeRestriction

    dag = dagbag.dags[dag_id]
    step = pendulum.duration(days=1 if dag_id == "sesame_nightly" else 7)
    d = pendulum.datetime(2026, 11, 23 if dag_id == "sesame_nightly" else 22, tz="UTC")  # the 22nd is a Sunday
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(d - step, d),
        restriction=TimeRestriction(earliest=pendulum.datetime(2026, 1, 1, tz="UTC"), latest=None, catchup=True),
    )
    assert info.logical_date == d and info.logical_date.strftime("%Y-%m-%d") == d.strftime("%Y-%m-%d")
    assert info.run_after == d + step  # not before the day (or week) is over
    assert info.data_interval == DataInterval(d, d + step)


def test_transient_failures_are_retried_and_deliveries_awaited_without_a_slot(dagbag):
    from sesame.config import Settings

    cfg = Settings()
    for dag_id in ("sesame_nightly", "sesame_train"):
        for task in dagbag.dags[dag_id].tasks:
            assert task.retries == cfg.task_retries >= 1 and task.retry_exponential_backoff == 2.0, task.task_id
    sensor = dagbag.dags["sesame_nightly"].get_task("check_deliveries")
    assert sensor.mode == "reschedule" and sensor.poke_interval == cfg.delivery_poke_seconds
    assert sensor.timeout > cfg.delivery_deadline_hours * 3600  # the night's own deadline fails first, by name
