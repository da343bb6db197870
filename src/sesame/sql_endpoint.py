"""A SQL endpoint over the marts that dbt's spark target builds: the Spark Thrift Server from pyspark's own jars.

`dbt build --target spark` writes the marts as Parquet tables under $SESAME_HOME/spark-warehouse and lists them in
a Hive metastore kept in Derby under $SESAME_HOME/metastore_db (dbt/profiles.yml). The Thrift Server reads the same
metastore and answers JDBC/ODBC clients (beeline, DBeaver, BI tools) in Spark SQL. Derby admits one process at a
time, so the endpoint and a dbt build on the spark target take turns: stop the endpoint before building.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sesame.config import Settings
from sesame.dbt_runner import run_dbt

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
_NOTHING_BUILT = (
    "no Spark marts under {home} yet (no metastore_db): build a night with dbt's spark target first: "
    '`sesame sql-endpoint --build YYYY-MM-DD` (README: "SQL endpoint")'
)


class EndpointFailed(RuntimeError):
    pass


def pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def spark_warehouse(cfg: Settings) -> Path:
    return cfg.spark_warehouse


def metastore(cfg: Settings) -> Path:
    return cfg.metastore


def metastore_conf(cfg: Settings) -> dict[str, str]:
    """The catalog dbt's spark target writes to (keep in step with dbt/profiles.yml)."""
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(spark_warehouse(cfg)),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore(cfg)};create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={cfg.home}",
    }


def jdbc_url(host: str, port: int, database: str = "marts") -> str:
    return f"jdbc:hive2://{host}:{port}/{database}"


def beeline_command(host: str, port: int, *args: str) -> list[str]:
    """pyspark's beeline (the Hive JDBC command-line client) connected to the endpoint."""
    return [
        str(pyspark_home() / "bin" / "beeline"),
        "-u",
        jdbc_url(host, port),
        "-n",
        os.environ.get("USER", "sesame"),
        *args,
    ]


def server_command(cfg: Settings, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The spark-submit command line and environment of the Thrift Server."""
    cmd = [
        str(pyspark_home() / "bin" / "spark-submit"),
        "--class",
        THRIFT_SERVER_CLASS,
        "--name",
        "sesame-sql-endpoint",
        "--master",
        cfg.spark_master,
        "--driver-memory",
        cfg.spark_driver_memory,
    ]
    conf = {
        **metastore_conf(cfg),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(cfg.spark_shuffle_partitions),
        "spark.ui.enabled": "false",
    }
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [
        "--hiveconf",
        f"hive.server2.thrift.bind.host={host}",
        "--hiveconf",
        f"hive.server2.thrift.port={port}",
        "spark-internal",  # the server's code is in Spark's jars: no application file
    ]
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return cmd, env


def build_marts(cfg: Settings, ds: str) -> None:
    """`dbt build --target spark` for one night (the endpoint must not be running: Derby admits one process)."""
    run_dbt(
        cfg,
        ["build"],
        ds,
        target="spark",
        extra_env={
            "SESAME_SPARK_MASTER": cfg.spark_master,
            "SESAME_SPARK_DRIVER_MEMORY": cfg.spark_driver_memory,
            "SESAME_SPARK_SHUFFLE_PARTITIONS": str(cfg.spark_shuffle_partitions),
            "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        },
        cwd=cfg.home,  # Derby and Hive drop their scratch files in the working directory
        echo=False,
        failure=EndpointFailed,
    )


def start(cfg: Settings, host: str, port: int, log: Path) -> subprocess.Popen:
    """Start the Thrift Server in the background, its output going to `log`."""
    if not metastore(cfg).exists():
        raise EndpointFailed(_NOTHING_BUILT.format(home=cfg.home))
    cmd, env = server_command(cfg, host, port)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        # cwd: Derby and Hive drop their scratch files in the working directory
        return subprocess.Popen(cmd, env=env, cwd=cfg.home, stdout=out, stderr=subprocess.STDOUT)


def wait_until_ready(proc: subprocess.Popen, host: str, port: int, log: Path, timeout: float = 180) -> None:
    """Return once the endpoint accepts connections; raise EndpointFailed if it exits or times out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EndpointFailed(f"the SQL endpoint exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise EndpointFailed(f"the SQL endpoint did not open {host}:{port} within {timeout:.0f}s:\n{_tail(log)}")


def stop(proc: subprocess.Popen, timeout: float = 60) -> int:
    """Stop the server (SIGTERM lets it close the metastore cleanly); return its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def serve(cfg: Settings, host: str, port: int, build: list[str] = ()) -> int:
    """Build the nights in `build` (in order), then run the endpoint in the foreground until Ctrl-C.
    Exit code: 0 stopped by Ctrl-C, 1 a build or the server failed, 2 nothing to serve."""
    for ds in build:
        print(f"building the marts of {ds} with dbt's spark target", flush=True)
        try:
            build_marts(cfg, ds)
        except EndpointFailed as exc:
            print(exc, file=sys.stderr)
            return 1
    if not metastore(cfg).exists():
        print(_NOTHING_BUILT.format(home=cfg.home), file=sys.stderr)
        return 2
    log = cfg.sql_endpoint_log
    try:
        proc = start(cfg, host, port, log)
        wait_until_ready(proc, host, port, log)
    except EndpointFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"SQL endpoint over the marts of {spark_warehouse(cfg)}: {jdbc_url(host, port)}\n"
        f"  beeline: {' '.join(beeline_command(host, port))}\n"
        f"  log: {log}\n  Ctrl-C stops it.",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's stop must not leave the server behind
    try:
        returncode = proc.wait()
    except KeyboardInterrupt:
        stop(proc)
        return 0
    print(f"the SQL endpoint exited with {returncode}:\n{_tail(log)}", file=sys.stderr)
    return 1


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
