"""The project's benchmarks (`make bench`): measuring apart from the library, and BENCHMARKS.md rendered from
what was measured.

This folder holds both the code and its results: each profile keeps its measured figures here as
<profile>.json, and BENCHMARKS.md is rendered from all of them, so one profile can be re-run alone.

    profiles.py       the profiles: the simulator, the feature job's history cost, scoring, whole nights
    engines.py        Spark against DuckDB per stage of the nightly feature job
    service_load.py   the score service's load test on loopback (wrk and an open-loop generator)
    targets.py        the targets the figures are held to, and the verdicts
    render.py         BENCHMARKS.md from the kept figures (no measuring)
    __main__.py       `python -m benchmarks [profile ...]`: measure, keep the figures, render

Run from the repository's root (`make bench` does). The library (src/sesame), the jobs and the DAGs never import
this package, and the code shipped to Spark executors does not contain it.
"""

from __future__ import annotations

import dataclasses

from sesame.config import REPO_ROOT, Settings

RESULTS = REPO_ROOT / "benchmarks"
REPORT = REPO_ROOT / "BENCHMARKS.md"


def with_spark_conf(cfg: Settings, properties: str) -> Settings:
    """`cfg` with more Spark properties ("key=value,key=value") after those it has (SESAME_SPARK_CONF)."""
    return dataclasses.replace(cfg, spark_conf=",".join(filter(None, [cfg.spark_conf, properties])))
