"""The night's Spark jobs on a real standalone cluster (a master and a worker started from pyspark's own
installation on 127.0.0.1) give the same outputs as local mode, with the project's code shipped to executors.

The cluster runs the features job (joins, windows, state folds, PageRank's checkpoints on executors) and the score
job (the scorecard itself runs in Python on the executors) from the lake local mode ingested: the ingestion job
is plain DataFrame reads and writes, and at about a minute a Spark application here a third job on the cluster
would prove little more."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sesame.config import Settings
from sesame.features import FACTOR_OF, FEATURES, night_features
from sesame.night import dbt_features
from sesame.registry import Registry
from sesame.scorecard import Scorecard
from sesame.segments import CREDIT_FILE, NO_CREDIT_FILE, SegmentedScorecard
from sesame.simulate import simulate
from sesame.spark import submit

pytestmark = pytest.mark.integration  # a standalone Spark cluster: left out of make test-fast

END = "2026-02-20"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    spark_home = Path(__import__("pyspark").__file__).parent
    logs = tmp_path_factory.mktemp("spark-logs")
    env = dict(
        os.environ,
        SPARK_HOME=str(spark_home),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_LOG_DIR=str(logs),
        SPARK_WORKER_DIR=str(logs / "work"),
    )
    port, ui, wui = _free_port(), _free_port(), _free_port()
    spark_class = str(spark_home / "bin" / "spark-class")
    master = subprocess.Popen(
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui),
        ],
        env=env,
        stdout=open(logs / "master.log", "w"),
        stderr=subprocess.STDOUT,
    )
    url = f"spark://127.0.0.1:{port}"
    worker = None
    try:
        _wait_for(port)
        worker = subprocess.Popen(
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                url,
                "--host",
                "127.0.0.1",
                "--cores",
                "2",
                "--memory",
                "2g",
                "--webui-port",
                str(wui),
            ],
            env=env,
            stdout=open(logs / "worker.log", "w"),
            stderr=subprocess.STDOUT,
        )
        _wait_for(wui)
        time.sleep(2)  # the worker registers with the master
        yield url
    finally:
        for proc in (worker, master):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


def _lake(home: Path, master: str) -> Settings:
    cfg = Settings(home=home, spark_master=master, spark_driver_memory="1g", spark_shuffle_partitions=4)
    simulate(cfg.raw, users=150, days=15, end_ds=dt.date.fromisoformat(END), seed=3)
    return cfg


def _champion(cfg: Settings, model_json: str | None) -> str:
    """A scorecard fitted on the local run's features (labels made up from them), registered as champion."""
    if model_json is None:
        feats = night_features(cfg, END)
        inputs = [f.name for f in FEATURES]
        rng = np.random.default_rng(0)
        risk = feats["ch_max_dpd_365"].fillna(0) / 30 - feats["it_phone_tenure_months"].fillna(0) / 60
        y = (rng.random(len(feats)) < 1 / (1 + np.exp(2 - risk))).astype(int)
        # 150 users: bins of a few bads, and the same scorecard for both segments
        model = Scorecard(factors={c: FACTOR_OF[c] for c in inputs}, min_bin_n_event=3).fit(feats[inputs], y)
        model_json = SegmentedScorecard({CREDIT_FILE: model, NO_CREDIT_FILE: model}).to_json()
    registry = Registry(cfg.models)
    registry.register("cluster-test", model_json, {"features": [f.name for f in FEATURES], "gates": {}}, "")
    registry.promote("cluster-test")
    return model_json


def _read(cfg: Settings, *zone: str, ds: str = END) -> pd.DataFrame:
    frame = pd.read_parquet(cfg.zone(*zone, ds=ds))
    return frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)


def test_cluster_gives_the_same_outputs_as_local(spark, cluster, tmp_path):
    from spark_jobs import features, ingest, score

    # local mode, in process
    local = _lake(tmp_path / "local", "local[2]")
    ingest.run(spark, local, END, catch_up=True)
    features.run(spark, local, [END])
    dbt_features(local, END, "local")  # dbt's characteristics, built beside Spark (DuckDB), never on the cluster
    model_json = _champion(local, None)
    score.run(spark, local, END)
    # the same jobs under spark-submit against the standalone cluster, from the same validated deliveries
    remote = Settings(
        home=tmp_path / "cluster", spark_master=cluster, spark_driver_memory="1g", spark_shuffle_partitions=4
    )
    for zone in ("validated", "accounting", "features/dbt_user_features"):
        shutil.copytree(local.lake / zone, remote.lake / zone)
    submit("features", ["--ds", END], remote)
    _champion(remote, model_json)
    submit("score", ["--ds", END], remote)

    a = _read(local, "features", "user_features").set_index("user_id").sort_index()
    b = _read(remote, "features", "user_features").set_index("user_id").sort_index()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    sa = _read(local, "scores").set_index("user_id").sort_index()
    sb = _read(remote, "scores").set_index("user_id").sort_index()
    assert len(sa) > 100
    assert (sa["score"] == sb["score"]).all()
    assert sa["reason_codes"].map(list).tolist() == sb["reason_codes"].map(list).tolist()


def test_executors_import_the_shipped_code(cluster, tmp_path):
    """The executors' `sesame` comes from the zip on --py-files, not from the driver's installation."""
    from sesame.spark import code_zip

    cfg = Settings(home=tmp_path, spark_master=cluster, spark_driver_memory="1g")
    zip_path = code_zip(cfg)
    script = tmp_path / "where.py"
    script.write_text(
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "def where(_):\n"
        "    import sesame\n"
        "    yield sesame.__file__\n"
        "print('SESAME_AT', spark.sparkContext.parallelize([0], 1).mapPartitions(where).collect()[0])\n"
    )
    spark_submit = Path(__import__("pyspark").__file__).parent / "bin" / "spark-submit"
    out = subprocess.run(
        [str(spark_submit), "--master", cluster, "--py-files", str(zip_path), str(script)],
        capture_output=True,
        text=True,
        env=dict(os.environ, SPARK_LOCAL_IP="127.0.0.1"),
        timeout=300,
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("SESAME_AT"))
    assert "sesame_code.zip" in line, line
