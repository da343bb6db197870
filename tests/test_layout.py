"""One owner for the layout of SESAME_HOME: sesame.config.Settings names every path under it, and lists the
ds= partitions of a folder; no other module joins a segment onto the home itself. Fast: no JVM, dbt or Airflow."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

from sesame.config import TRAIN_RUNS, Settings, ds_partition, ds_partitions

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("src/sesame", "spark_jobs", "dags", "benchmarks")
OWNER = ROOT / "src" / "sesame" / "config.py"


def _is_home(node: ast.expr) -> bool:
    """`home`, `cfg.home`, `self.cfg.home`, ...: the SESAME_HOME of a Settings, or a variable holding it."""
    return (isinstance(node, ast.Name) and node.id == "home") or (
        isinstance(node, ast.Attribute) and node.attr == "home"
    )


def _is_literal(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr)


def home_joins(source: str) -> list[int]:
    """The lines where a literal path segment is joined onto the home: home / "x", home / f"x", home.joinpath("x")
    or os.path.join(home, "x")."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Div)
            and _is_home(node.left)
            and _is_literal(node.right)
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "joinpath" and _is_home(node.func.value) and any(map(_is_literal, node.args)):
                lines.append(node.lineno)
            elif (
                node.func.attr == "join"
                and node.args
                and _is_home(node.args[0])
                and any(map(_is_literal, node.args[1:]))
            ):
                lines.append(node.lineno)
    return lines


def test_the_scan_finds_joins_onto_the_home():
    assert home_joins('p = cfg.home / "runs" / ds\n') == [1]
    assert home_joins('p = home / f"ds={ds}"\n') == [1]
    assert home_joins('p = self.cfg.home.joinpath("tmp", "dbt")\n') == [1]
    assert home_joins('p = os.path.join(cfg.home, "logs")\n') == [1]
    assert home_joins('p = cfg.run_log(ds, run_id)\nq = cfg.lake / "x"\nr = pyspark_home / "bin"\n') == []


def test_only_the_layout_owner_joins_paths_onto_the_home():
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == OWNER:
                continue
            found += [f"{path.relative_to(ROOT)}:{line}" for line in home_joins(path.read_text(encoding="utf-8"))]
    assert not found, (
        f"a path under SESAME_HOME joined outside sesame.config: name it in Settings and use it there: {found}"
    )


def test_the_paths_are_where_the_readme_says(tmp_path):
    cfg = Settings(home=tmp_path)
    at = dt.datetime(2026, 3, 1, 2, 3, 4)
    expected = {
        cfg.run_log("2026-03-01", "r1"): "runs/2026-03-01/r1.json",
        cfg.run_log("2026-03-01", "r1", TRAIN_RUNS): "runs/train/2026-03-01/r1.json",
        cfg.run_logs("2026-03-01"): "runs/2026-03-01",
        cfg.run_logs(): "runs",
        cfg.alerts_file: "alerts/alerts.jsonl",
        cfg.alert_file("sesame_nightly", "2026-03-01", "ingest"): "alerts/sesame_nightly-2026-03-01-ingest.json",
        cfg.report_page("2026-03-01", "r1"): "reports/2026-03-01/r1.html",
        cfg.staged_warehouse("r1"): "warehouse/.staging/sesame-r1.duckdb",
        cfg.docs_warehouse: "warehouse/.staging/docs.duckdb",
        cfg.dag_run_log("sesame_nightly", "2026-03-01", at): "logs/sesame_nightly-2026-03-01-20260301T020304.log",
        cfg.failed_dbt_log("build", "2026-03-01", at): "logs/dbt/dbt-build-2026-03-01-20260301T020304.log",
        cfg.sql_endpoint_log: "logs/sql-endpoint.log",
        cfg.dbt_work_root: "tmp/dbt",
        cfg.dbt_scratch_database("features", "r1"): "tmp/dbt/features-r1.duckdb",
        cfg.dbt_invocation("r1"): "tmp/dbt/invocation-r1.json",
        cfg.audited_dir("r1"): "tmp/audited/r1",
        cfg.code_zip: "tmp/sesame_code.zip",
        cfg.dbt_docs: "docs/dbt",
        cfg.data_docs_index: "gx/uncommitted/data_docs/local_site/index.html",
        cfg.feature_store_home: "feature_store",
        cfg.spark_warehouse: "spark-warehouse",
        cfg.metastore: "metastore_db",
        cfg.airflow_initialized: "airflow/.sesame-initialized",
        cfg.airflow_db: "airflow/airflow.db",
        cfg.service_home: "service",
        cfg.user_key_secret_file: "secrets/user-key-secret",
        cfg.zone("accounting", ds="2026-03-01"): "lake/accounting/ds=2026-03-01",
    }
    assert [path.relative_to(tmp_path).as_posix() for path in expected] == list(expected.values())


def test_the_service_files_live_under_the_service_home(tmp_path):
    from sesame.service.layout import service_files

    cfg = Settings(home=tmp_path)
    assert service_files(cfg).root == cfg.service_home == tmp_path / "service"


def test_partitions_are_listed_oldest_first_within_a_range_and_with_a_file(tmp_path):
    assert ds_partitions(tmp_path / "missing") == []
    for night in ("2026-03-02", "2026-02-28", "2026-03-01"):
        ds_partition(tmp_path, night).mkdir()
    (ds_partition(tmp_path, "2026-03-01") / "part-0.parquet").write_bytes(b"")
    (ds_partition(tmp_path, "2026-03-02") / "_PUBLISHED").write_text("r1")
    (tmp_path / "other").mkdir()
    assert ds_partitions(tmp_path) == ["2026-02-28", "2026-03-01", "2026-03-02"]
    assert ds_partitions(tmp_path, first="2026-03-01") == ["2026-03-01", "2026-03-02"]
    assert ds_partitions(tmp_path, last="2026-03-01") == ["2026-02-28", "2026-03-01"]
    assert ds_partitions(tmp_path, "2026-03-01", "2026-03-01") == ["2026-03-01"]
    assert ds_partitions(tmp_path, holding="*.parquet") == ["2026-03-01"]
    assert ds_partitions(tmp_path, holding="_PUBLISHED") == ["2026-03-02"]
