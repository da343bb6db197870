# syntax=docker/dockerfile:1
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

# SESAME_HOME's folders are volumes; what stays in the container (the run lock, tmp/) is the owner's only.
RUN mkdir -p -m 0700 /data/sesame

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

# Spark's standalone master, workers and drivers (spark-submit) take the shared secret from their configuration only:
# for a service given SPARK_AUTH_SECRET_FILE (a compose secret), write it with spark.authenticate into
# $SPARK_CONF_DIR/spark-defaults.conf, which all three load, readable by its owner only. A missing, short or
# malformed secret stops the service. The REST submission server and the web UIs' kill links take no authentication.
COPY --chmod=0755 <<'EOF' /usr/local/bin/sesame-entrypoint
#!/bin/sh
set -eu
if [ -n "${SPARK_AUTH_SECRET_FILE:-}" ]; then
    secret=$(cat "$SPARK_AUTH_SECRET_FILE" 2>/dev/null || true)
    case "$secret" in
        "" | *[!0-9A-Za-z_+/=.-]*)
            echo "sesame: $SPARK_AUTH_SECRET_FILE must hold the Spark secret on one line (make spark-secret)" >&2
            exit 2 ;;
    esac
    if [ "${#secret}" -lt 32 ]; then
        echo "sesame: the Spark secret in $SPARK_AUTH_SECRET_FILE has ${#secret} characters, fewer than 32" >&2
        exit 2
    fi
    : "${SPARK_CONF_DIR:?names the folder of the spark-defaults.conf that carries the secret}"
    umask 077
    mkdir -p "$SPARK_CONF_DIR"
    {
        echo "spark.authenticate true"
        echo "spark.authenticate.secret $secret"
        echo "spark.master.rest.enabled false"
        echo "spark.ui.killEnabled false"
    } > "$SPARK_CONF_DIR/spark-defaults.conf"
fi
exec "$@"
EOF
ENTRYPOINT ["/usr/local/bin/sesame-entrypoint"]
