"""sesame_nightly: one night, `ds` = the logical date. Orchestration only; each stage is a function in
sesame.night (the Spark stages submit the jobs in spark_jobs/)."""

from __future__ import annotations

import pendulum
from airflow.sdk import chain, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from sesame import night
from sesame.config import NIGHTLY_STAGES, settings


def _ctx() -> tuple:
    context = get_current_context()
    run_id = night.run_id_for(context["run_id"], context["dag_run"].conf)
    return settings(), context["ds"], run_id


def _stage(name: str, fn, *with_run_id: bool):
    cfg, ds, run_id = _ctx()
    with night.data_errors_fail_at_once(), night.stage(cfg, ds, run_id, name):
        return fn(cfg, ds, run_id) if with_run_id else fn(cfg, ds)


CFG = settings()


@dag(
    dag_id="sesame_nightly",
    # A data-interval timetable, whatever `[scheduler] create_cron_data_intervals` says: the run the scheduler
    # starts when day D is over (00:00 UTC on D+1) covers D, so its logical date and `ds` are D, the delivery day it
    # processes, as for `sesame night --ds D`.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.parse(CFG.schedule_start, tz="UTC"),
    end_date=pendulum.parse(CFG.schedule_end, tz="UTC") if CFG.schedule_end else None,
    catchup=CFG.schedule_catchup,
    max_active_runs=1,
    default_args=night.task_defaults(CFG),
    tags=["sesame"],
    doc_md=__doc__,
)
def sesame_nightly():
    # Waits for every source's _SUCCESS marker without holding a worker slot between looks (reschedule mode), until
    # the night's delivery deadline (SESAME_DELIVERY_DEADLINE_HOURS); past it, fails naming the sources missing.
    # It also waits while a night or training run started by hand holds the SESAME_HOME.
    @task.sensor(
        mode="reschedule", poke_interval=CFG.delivery_poke_seconds, timeout=(CFG.delivery_deadline_hours + 48) * 3600
    )
    def check_deliveries():
        cfg, ds, _ = _ctx()
        if night.waiting_for_deliveries(cfg, ds) or night.waiting_for_the_home(cfg):
            return False
        _stage("check_deliveries", night.check_deliveries)
        return True

    @task
    def ingest():
        _stage("ingest", night.ingest)

    @task
    def quality_gate():
        return len(_stage("quality_gate", night.input_gate))

    @task
    def features():
        _stage("features", night.features)

    @task
    def dbt_features():
        _stage("dbt_features", night.dbt_features, True)

    @task
    def feature_store():
        _stage("feature_store", night.feature_store)

    @task
    def score():
        _stage("score", night.score)

    @task
    def warehouse():
        return str(_stage("warehouse", night.warehouse, True))

    @task
    def audit():
        return len(_stage("audit", night.audit, True))

    @task
    def publish():
        return _stage("publish", night.publish, True)

    @task
    def report():
        return _stage("report", night.report, True)

    # One after the other in the library's order of the night's stages (sesame.config.NIGHTLY_STAGES, which the run
    # report reads too): Spark's features (windows, state, the graph), then dbt's (plain SQL over them and the
    # validated tables)
    tasks = {
        t.function.__name__: t
        for t in (
            check_deliveries,
            ingest,
            quality_gate,
            features,
            dbt_features,
            feature_store,
            score,
            warehouse,
            audit,
            publish,
            report,
        )
    }
    if set(tasks) != set(NIGHTLY_STAGES):
        raise ValueError(f"sesame_nightly's tasks {sorted(tasks)} are not the night's stages {list(NIGHTLY_STAGES)}")
    chain(*(tasks[name]() for name in NIGHTLY_STAGES))


sesame_nightly()
