"""Shared fixtures: one local SparkSession for the whole run, and a private SESAME_HOME per test."""

from __future__ import annotations

import logging
import os
import secrets

import pytest

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# A user-key secret of the run's own, as an installation has (commands refuse to pseudonymize without one)
os.environ.setdefault("SESAME_USER_KEY_SECRET", secrets.token_hex(32))
# The tests' lakes hold at most a few thousand users: compiling Spark's generated code for each query costs more
# than it saves, so every session and job the tests start interprets instead (test_late_deliveries: 134 s -> 108 s).
os.environ.setdefault(
    "SESAME_SPARK_CONF", "spark.sql.codegen.wholeStage=false,spark.sql.codegen.factoryMode=NO_CODEGEN"
)
# Every JVM the tests start (spark-submit, the test session, dbt-spark, the cluster) is short-lived and works on a
# few thousand rows: C1 alone compiles enough of it, and the C2 compiler's threads only take CPU from the other
# worker (test_late_deliveries alone: 191 s -> 165 s). Stopping at C1 also shrinks the default code cache to 48 MB,
# which a job with Spark's code generation on can fill ("Out of space in CodeCache"): the usual 240 MB is kept.
os.environ.setdefault("JDK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m")
# py4j logs its shutdown after pytest has closed the captured streams
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def spark():
    from sesame.config import Settings
    from sesame.spark import get_session

    cfg = Settings(spark_master="local[2]", spark_driver_memory="2g", spark_shuffle_partitions=2)
    session = get_session("sesame-tests", cfg)
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _integration_is_marked(request):
    """make test-fast leaves out the tests marked `integration`; one that starts a JVM unmarked would slow it down
    unseen, so it fails here instead."""
    if "spark" in request.fixturenames and request.node.get_closest_marker("integration") is None:
        pytest.fail(f"{request.node.nodeid} uses Spark: mark its module `pytestmark = pytest.mark.integration`")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh SESAME_HOME; Settings() made inside the test read it."""
    monkeypatch.setenv("SESAME_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# The modules that take minutes start first, then those that take a minute or so, so that under `make test`
# (pytest-xdist, one module per worker at a time, in collection order) the workers end within seconds of each other
# instead of one running a long module alone at the end.
LONGEST_FIRST = (
    "test_night_e2e.py",
    "test_cluster.py",
    "test_dbt_spark.py",
    "test_late_deliveries.py",
    "test_dbt_marts.py",
    "test_features.py",
    "test_windows.py",
    "test_dbt_features.py",
    "test_graph.py",
    "test_ingest_dirt.py",
    "test_killed_publish.py",
    "test_report.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))
