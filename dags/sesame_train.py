"""sesame_train: point-in-time training set (Spark's features, then dbt's) -> fit -> out-of-time evaluation -> gates -> registry.
Orchestration only; the work is in sesame.training and spark_jobs/training_set.py."""

from __future__ import annotations

from contextlib import contextmanager

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from sesame import night, training
from sesame.config import settings

CFG = settings()


@contextmanager
def _stage(name: str):
    """A training stage: data errors fail at once, and the stage goes into the run log `sesame train` watches."""
    context = get_current_context()
    cfg, ds = settings(), context["ds"]
    run_id = night.run_id_for(context["run_id"], context["dag_run"].conf)
    with night.data_errors_fail_at_once(), night.stage(cfg, ds, run_id, name, runs=night.TRAIN_RUNS):
        yield cfg, ds


@dag(
    dag_id="sesame_train",
    # as sesame_nightly: the run after a week is over trains as of the week's first day (its logical date)
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=night.task_defaults(CFG),
    tags=["sesame"],
    doc_md=__doc__,
)
def sesame_train():
    @task
    def ingest_history():
        with _stage("ingest_history") as (cfg, ds):
            training.ingest_history(cfg, ds)

    @task
    def training_set():
        with _stage("training_set") as (cfg, ds):
            return training.build_training_set(cfg, ds)

    @task
    def dbt_features(observation_dates: list[str]):
        with _stage("dbt_features") as (cfg, ds):
            context = get_current_context()
            run_id = night.run_id_for(context["run_id"], context["dag_run"].conf)
            night.dbt_features(cfg, ds, run_id, nights=observation_dates)

    @task
    def fit_evaluate_register():
        with _stage("fit_evaluate_register") as (cfg, ds):
            card = training.fit_from_lake(cfg, ds)
        return {
            "version": card["version"],
            "promoted": card["promoted"],
            "oot_auc": {s: m["auc"] for s, m in card["out_of_time"].items()},
        }

    # Spark's features of every observation night (in training_set), then dbt's for the same nights
    observation_dates = training_set()
    ingest_history() >> observation_dates
    dbt_features(observation_dates) >> fit_evaluate_register()


sesame_train()
