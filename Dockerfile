# One image for every Sesame service: Airflow components, Spark master/workers, the score service.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*

ENV SESAME_HOME=/data/sesame \
    AIRFLOW_HOME=/data/sesame/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/sesame/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    FEAST_USAGE=False \
    GX_ANALYTICS_ENABLED=False \
    SPARK_HOME=/opt/sesame/.venv/lib/python3.11/site-packages/pyspark \
    PATH=/opt/sesame/.venv/lib/python3.11/site-packages/pyspark/bin:/opt/sesame/.venv/bin:$PATH

WORKDIR /opt/sesame
COPY requirements.lock pyproject.toml README.md ./
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir uv \
    && .venv/bin/uv pip sync --python .venv/bin/python requirements.lock
COPY src ./src
COPY dags ./dags
COPY spark_jobs ./spark_jobs
COPY dbt ./dbt
COPY expectations ./expectations
COPY feature_store ./feature_store
RUN .venv/bin/uv pip install --python .venv/bin/python --no-deps -e .
