"""PageRank agrees with networkx on a real small graph, iterated on the driver (graphs up to DRIVER_MAX_EDGES) and
as DataFrame joins (larger ones; forced here with no edge allowed on the driver)."""

from __future__ import annotations

import networkx as nx
import pytest

from spark_jobs.graph import DRIVER_MAX_EDGES, pagerank

pytestmark = pytest.mark.integration  # Spark: left out of make test-fast

WAYS = pytest.mark.parametrize("driver_max_edges", [DRIVER_MAX_EDGES, -1], ids=["on_driver", "as_joins"])


def _edges(spark, graph, weight):
    rows = []
    for u, v, data in graph.edges(data=True):
        w = float(data.get(weight, 1.0)) if weight else 1.0
        rows.append((str(u), str(v), w))
        if not graph.is_directed():
            rows.append((str(v), str(u), w))
    return spark.createDataFrame(rows, "src string, dst string, weight double")


@WAYS
def test_pagerank_matches_networkx_on_karate_club(spark, driver_max_edges):
    graph = nx.karate_club_graph()
    expected = nx.pagerank(graph, alpha=0.85, weight="weight")
    ranks = pagerank(_edges(spark, graph, "weight"), driver_max_edges=driver_max_edges)
    got = {r["node"]: r["rank"] for r in ranks.collect()}
    assert set(got) == {str(k) for k in expected}
    for node, value in expected.items():
        assert got[str(node)] == pytest.approx(value, abs=1e-5)
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-6)


@WAYS
def test_pagerank_with_dangling_nodes_matches_networkx(spark, driver_max_edges):
    # d is dangling; the chord a->c makes the cycles aperiodic, so that the power iteration converges in about 20
    # iterations instead of 35 (each costs Spark a second or more)
    graph = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a"), ("a", "c"), ("a", "d"), ("e", "a")])
    expected = nx.pagerank(graph, alpha=0.85)
    ranks = pagerank(_edges(spark, graph, None), driver_max_edges=driver_max_edges, mean_one=True)
    got = {r["node"]: r["rank"] for r in ranks.collect()}
    assert set(got) == set(expected)
    for node, value in expected.items():  # averaging 1: each rank times the 5 nodes
        assert got[node] == pytest.approx(value * len(expected), abs=1e-5)


def test_both_ways_stop_after_the_same_iterations(spark):
    """With few iterations allowed, before convergence: the same ranks either way, not only the same limit."""
    graph = nx.gnp_random_graph(60, 0.08, seed=3, directed=True)
    edges = _edges(spark, graph, None)
    ways = [
        {r["node"]: r["rank"] for r in pagerank(edges, max_iter=3, driver_max_edges=limit).collect()}
        for limit in (DRIVER_MAX_EDGES, -1)
    ]
    assert set(ways[0]) == set(ways[1])
    for node, rank in ways[0].items():
        assert ways[1][node] == pytest.approx(rank, rel=1e-9)
    assert ways[0] != {str(k): v for k, v in nx.pagerank(graph, alpha=0.85).items()}
