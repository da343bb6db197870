"""dbt's spark target builds the same marts as the DuckDB target, and the SQL endpoint serves them.

The tiny lake of tests/tiny_lake.py is built night by night twice, side by side: with the duckdb target, and with
the spark target (dbt-spark's session method: Spark SQL inside the dbt process, Parquet tables listed in a Hive
metastore under SESAME_HOME). The spark build runs `dbt build` (seeds, unit tests, models, data tests) on the last
night, then builds that night's nightly marts again, which must replace their partitions, after emptying the
night's row accounting in the lake, whose slice must then disappear. Then the Spark Thrift Server from pyspark's
jars is started on the same metastore and queried with beeline.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import duckdb
import pyarrow.dataset as pads
import pytest

from sesame import sql_endpoint
from sesame.config import Settings
from tests.tiny_lake import DBT_DIR, KEY_TO_USER, NIGHTS, SECRET, finish_plan, start_plan

pytestmark = pytest.mark.integration  # dbt on Spark and the Thrift server: left out of make test-fast

COMPARED_MARTS = [
    "sesame_scores",
    "score_exclusions",
    "visa_eligibility",
    "visa_eligibility_changes",
    "reason_code_dictionary",
]
BUILTIN_GENERIC_TESTS = [
    "test_name:not_null",
    "test_name:unique",
    "test_name:accepted_values",
    "test_name:relationships",
]
HOST = "127.0.0.1"


def _dbt_args(target: str, tmp: Path, ds: str) -> list[str]:
    return [
        "--target",
        target,
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
        "--target-path",
        str(tmp / "target"),
        "--log-path",
        str(tmp / "logs"),
        "--vars",
        json.dumps({"ds": ds}),
    ]


def duckdb_plan(tmp: Path) -> list[dict]:
    plan = []
    for n, ds in enumerate(NIGHTS):
        plan += [
            {"write_night": n},
            {"dbt": ["build", "--resource-type", "seed", "--resource-type", "model", *_dbt_args("duckdb", tmp, ds)]},
        ]
    return plan


def spark_plan(tmp: Path) -> list[dict]:
    first, second, last = NIGHTS
    return [
        {"write_night": 0},  # the court list has no partition yet: an empty zone
        {"dbt": ["build", "--resource-type", "seed", "--resource-type", "model", *_dbt_args("spark", tmp, first)]},
        {"write_night": 1},
        {"dbt": ["run", *_dbt_args("spark", tmp, second)]},
        {"write_night": 2},
        # Everything but dbt's own generic tests (not_null, unique, ...), which check dbt-spark rather than this
        # project's SQL and would double the time; the project's generic and singular tests and unit tests run.
        {"dbt": ["build", "--exclude", *BUILTIN_GENERIC_TESTS, *_dbt_args("spark", tmp, last)]},
        # building a night again replaces its rows, even with nothing: the night's accounting is now empty
        {"empty_night": ["accounting", 2]},
        {"dbt": ["run", "--select", "path:models/marts/nightly", *_dbt_args("spark", tmp, last)]},
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dbt_spark")
    base_env = {**os.environ, "SESAME_USER_KEY_SECRET": SECRET, "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    duck, spark = tmp / "duckdb", tmp / "spark"
    warehouse = duck / "warehouse.duckdb"
    runs = {}
    started = time.monotonic()
    for name, folder, plan, env in (
        ("duckdb", duck, duckdb_plan(duck), {"SESAME_WAREHOUSE_PATH": str(warehouse)}),
        (
            "spark",
            spark,
            spark_plan(spark),
            {
                "SESAME_SPARK_MASTER": "local[2]",
                "SESAME_SPARK_DRIVER_MEMORY": "1g",
                "SESAME_SPARK_SHUFFLE_PARTITIONS": "2",
            },
        ),
    ):
        folder.mkdir()
        log = folder / "build.log"
        runs[name] = (start_plan(plan, {**base_env, **env, "SESAME_HOME": str(folder / "home")}, log), log)
    steps = {name: finish_plan(proc, log, timeout=600) for name, (proc, log) in runs.items()}
    print(
        "dbt seconds:",
        {name: [s["seconds"] for s in run] for name, run in steps.items()},
        "wall:",
        round(time.monotonic() - started, 1),
    )
    return {"warehouse": warehouse, "spark_home": spark / "home"}


@pytest.fixture(scope="module")
def endpoint(built, tmp_path_factory):
    """The Thrift Server over the spark build's metastore (the build's process has ended: Derby is free)."""
    cfg = Settings(
        home=built["spark_home"], spark_master="local[1]", spark_driver_memory="1g", spark_shuffle_partitions=2
    )
    port = _free_port()
    log = tmp_path_factory.mktemp("endpoint") / "thrift-server.log"
    started = time.monotonic()
    proc = sql_endpoint.start(cfg, HOST, port, log)  # with tests/conftest.py's JVM options, as beeline
    try:
        sql_endpoint.wait_until_ready(proc, HOST, port, log)
        print(f"SQL endpoint ready in {time.monotonic() - started:.1f}s")
        yield {"proc": proc, "port": port, "log": log}
    finally:
        sql_endpoint.stop(proc)


# ------------------------------------------------------------------------------------------ helpers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def canonical(value):
    """One spelling per value whatever the engine or client: dates as ISO text, lists as sorted tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(sorted(canonical(v) for v in value))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


def canonical_rows(rows: list[dict], columns: list[str]) -> list[tuple]:
    return sorted((tuple(canonical(row.get(c)) for c in columns) for row in rows), key=repr)


def duckdb_mart(warehouse: Path, mart: str) -> tuple[list[str], list[dict]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result = con.sql(f"select * from marts.{mart}")
        columns = result.columns
        return columns, [dict(zip(columns, row)) for row in result.fetchall()]


def spark_table_folder(home: Path, mart: str) -> Path:
    return home / "spark-warehouse" / "marts.db" / mart


def spark_mart(home: Path, mart: str) -> tuple[list[str], list[dict]]:
    """The Parquet files the spark build wrote (ds=... folders for the nightly marts)."""
    table = pads.dataset(spark_table_folder(home, mart), format="parquet", partitioning="hive").to_table()
    return table.column_names, table.to_pylist()


# -------------------------------------------------------------------------------------------- tests
def test_spark_build_writes_partitioned_parquet_tables(built):
    home = built["spark_home"]
    for mart, nights in [
        *((m, NIGHTS) for m in COMPARED_MARTS if m != "reason_code_dictionary"),
        ("row_accounting", NIGHTS[:2]),
    ]:
        folder = spark_table_folder(home, mart)
        assert sorted(p.name for p in folder.glob("ds=*")) == [f"ds={ds}" for ds in nights], mart
        assert list(folder.glob("ds=*/*.parquet")), mart
    assert list(spark_table_folder(home, "reason_code_dictionary").glob("*.parquet"))
    # no snapshot on the spark target (dbt-spark snapshots need Delta, Iceberg or Hudi)
    assert not spark_table_folder(home, "score_history").exists()


@pytest.mark.parametrize("mart", COMPARED_MARTS)
def test_spark_marts_equal_duckdb_marts(built, mart):
    duck_columns, duck_rows = duckdb_mart(built["warehouse"], mart)
    spark_columns, spark_rows = spark_mart(built["spark_home"], mart)
    assert set(spark_columns) == set(duck_columns)
    assert duck_rows, f"marts.{mart} is empty: nothing compared"
    assert canonical_rows(spark_rows, duck_columns) == canonical_rows(duck_rows, duck_columns)


def test_spark_marts_hold_the_expected_users(built):
    """Not only equal, but right: the eligibility of the last night by hand (as in test_dbt_marts)."""
    _, rows = spark_mart(built["spark_home"], "visa_eligibility")
    jp = {KEY_TO_USER[r["user_key"]] for r in rows if r["destination"] == "JP" and str(r["ds"]) == NIGHTS[2]}
    lu = {KEY_TO_USER[r["user_key"]] for r in rows if r["destination"] == "LU" and str(r["ds"]) == NIGHTS[0]}
    assert jp == {"A", "B", "G"}
    assert lu == {"A", "C", "F"}  # night 1 read the missing court-list zone as empty


def test_the_user_key_secret_is_not_kept_with_the_spark_marts(built):
    """Staging SQL carries the secret; Spark keeps no query text for tables, and the views do not hash."""
    home = built["spark_home"]
    stored = [p for p in home.rglob("*") if p.is_file() and "lake" not in p.relative_to(home).parts]
    assert any(p.parent.name == "seg0" for p in stored)  # the metastore's tables were scanned
    assert [p for p in stored if SECRET.encode() in p.read_bytes()] == []


def test_rebuilding_a_night_with_no_rows_removes_its_slice(built):
    """row_accounting's last night was rebuilt from an empty delivery: its rows are gone, other nights stay."""
    columns, duck_rows = duckdb_mart(built["warehouse"], "row_accounting")
    _, spark_rows = spark_mart(built["spark_home"], "row_accounting")
    assert {canonical(r["ds"]) for r in duck_rows} == set(NIGHTS)  # the DuckDB build never emptied it
    earlier = [r for r in duck_rows if canonical(r["ds"]) in NIGHTS[:2]]
    assert canonical_rows(spark_rows, columns) == canonical_rows(earlier, columns)


def test_sql_endpoint_serves_the_marts_to_beeline(built, endpoint, tmp_path):
    """beeline (Hive JDBC) asks the Thrift Server for every row of each mart, one JSON object per row."""
    query = (
        "\nunion all\n".join(
            f"select '{mart}' as mart, to_json(struct(*)) as row_json from marts.{mart}" for mart in COMPARED_MARTS
        )
        + ";\n"
    )
    script = tmp_path / "marts.sql"
    script.write_text(query)
    result = subprocess.run(
        sql_endpoint.beeline_command(
            HOST, endpoint["port"], "--silent=true", "--showHeader=false", "--outputformat=tsv2", "-f", str(script)
        ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    served: dict[str, list[dict]] = {mart: [] for mart in COMPARED_MARTS}
    for line in result.stdout.splitlines():
        first, _, row_json = line.partition("\t")
        # beeline prints its prompt in front of the first line of a result
        mart = max((m for m in COMPARED_MARTS if first.endswith(m)), key=len, default=None)
        if mart:
            served[mart].append(json.loads(row_json))
    for mart in COMPARED_MARTS:
        columns, duck_rows = duckdb_mart(built["warehouse"], mart)
        assert canonical_rows(served[mart], columns) == canonical_rows(duck_rows, columns), mart


def test_sql_endpoint_stops_cleanly(endpoint):
    """SIGTERM, not a kill: the server shuts Spark down and closes its port (and the metastore for the next build)."""
    returncode = sql_endpoint.stop(endpoint["proc"], timeout=60)
    assert returncode == 143  # 128 + SIGTERM, after the JVM's shutdown hooks ran
    assert "Successfully stopped SparkContext" in endpoint["log"].read_text(errors="replace")
    with pytest.raises(OSError):
        socket.create_connection((HOST, endpoint["port"]), timeout=1).close()


def test_sql_endpoint_command_without_spark_marts_says_how_to_build_them(tmp_path, monkeypatch, capsys):
    from sesame.cli import main

    monkeypatch.setenv("SESAME_HOME", str(tmp_path / "empty-home"))
    assert main(["sql-endpoint", "--port", str(_free_port())]) == 2
    assert "sesame sql-endpoint --build" in capsys.readouterr().err
