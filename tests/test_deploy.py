"""docker-compose.yml agrees with the code: services, DAG folder, settings, image built from the repo."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from sesame.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_of_a_multi_machine_deployment():
    services = _compose()["services"]
    assert {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "spark-master", "spark-worker", "score-service"} <= set(services)
    assert services["score-service"]["command"][:2] == ["sesame", "serve"]
    assert services["airflow-scheduler"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_every_sesame_service_runs_the_repo_image_with_shared_lake():
    compose = _compose()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, svc in compose["services"].items():
        if name == "postgres":
            continue
        assert svc["build"] == "." and (ROOT / "Dockerfile").exists()
        assert "lake:/data/sesame" in svc["volumes"]
        env = svc["environment"]
        assert env["SESAME_HOME"] == "/data/sesame"
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/sesame/dags"
        assert env["SESAME_SPARK_MASTER"] == "spark://spark-master:7077"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    # the image holds what the DAG folder and the settings point at
    for folder in ("dags", "spark_jobs", "dbt", "expectations", "feature_store", "src"):
        assert f"COPY {folder} ./{folder}" in dockerfile and (ROOT / folder).is_dir()
    assert "WORKDIR /opt/sesame" in dockerfile and "requirements.lock" in dockerfile


def test_settings_named_in_compose_exist_in_the_code():
    text = (ROOT / "docker-compose.yml").read_text()
    fields = {f.upper() for f in Settings.__dataclass_fields__}
    for name in set(re.findall(r"SESAME_([A-Z_]+):", text)):
        assert name in fields, f"SESAME_{name} is not a setting of sesame.config.Settings"
    readme = (ROOT / "README.md").read_text()
    for name in fields:
        if name not in ("HOME",):
            assert f"SESAME_{name}" in readme, f"SESAME_{name} is not documented in README"


def test_spark_cluster_commands_match_pyspark():
    services = _compose()["services"]
    assert services["spark-master"]["command"][:2] == ["spark-class", "org.apache.spark.deploy.master.Master"]
    assert services["spark-worker"]["command"][-1] == "spark://spark-master:7077"


def test_image_can_reach_postgres():
    lock = (ROOT / "requirements.lock").read_text()
    assert re.search(r"^psycopg2-binary==", lock, re.M), "Airflow on Postgres needs a driver in the lock"


def test_extra_spark_properties_reach_every_job_and_bad_ones_are_named(tmp_path):
    import pytest

    from sesame.spark import spark_conf, submit_command

    cfg = Settings(home=tmp_path, spark_conf=" spark.sql.shuffle.partitions=3 , spark.sql.codegen.wholeStage=false")
    conf = spark_conf(cfg)
    assert conf["spark.sql.shuffle.partitions"] == "3"  # an operator's property wins over the project's
    assert conf["spark.sql.codegen.wholeStage"] == "false"
    cmd, _ = submit_command("score", ["--ds", "2026-01-01"], cfg)
    assert "spark.sql.codegen.wholeStage=false" in cmd
    for bad in ("wholeStage=false", "spark.sql.codegen.wholeStage", "spark.x="):
        with pytest.raises(ValueError, match="SESAME_SPARK_CONF"):
            spark_conf(Settings(spark_conf=bad))
