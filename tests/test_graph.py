"""PageRank in Spark DataFrames agrees with networkx on a real small graph."""

from __future__ import annotations

import networkx as nx
import pytest

from spark_jobs.graph import pagerank

pytestmark = pytest.mark.integration  # Spark: left out of make test-fast


def _edges(spark, graph, weight):
    rows = []
    for u, v, data in graph.edges(data=True):
        w = float(data.get(weight, 1.0)) if weight else 1.0
        rows.append((str(u), str(v), w))
        if not graph.is_directed():
            rows.append((str(v), str(u), w))
    return spark.createDataFrame(rows, "src string, dst string, weight double")


@pytest.mark.parametrize("weight", ["weight"])
def test_pagerank_matches_networkx_on_karate_club(spark, weight):
    graph = nx.karate_club_graph()
    expected = nx.pagerank(graph, alpha=0.85, weight=weight)
    got = {r["node"]: r["rank"] for r in pagerank(_edges(spark, graph, weight)).collect()}
    assert set(got) == {str(k) for k in expected}
    for node, value in expected.items():
        assert got[str(node)] == pytest.approx(value, abs=1e-5)
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-6)


def test_pagerank_with_dangling_nodes_matches_networkx(spark):
    # d is dangling; the chord a->c makes the cycles aperiodic, so that the power iteration converges in about 20
    # iterations instead of 35 (each costs Spark a second or more)
    graph = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a"), ("a", "c"), ("a", "d"), ("e", "a")])
    expected = nx.pagerank(graph, alpha=0.85)
    got = {r["node"]: r["rank"] for r in pagerank(_edges(spark, graph, None)).collect()}
    for node, value in expected.items():
        assert got[node] == pytest.approx(value, abs=1e-5)
