"""Graph algorithms (no GraphFrames): PageRank over a weighted directed graph.

Semantics follow networkx.pagerank: rank flows along out-edges in proportion to their weight, a node without
out-edges (dangling) spreads its rank evenly over all nodes, and every node receives (1 - damping) / N.

Spark aggregates the edges. A graph of up to DRIVER_MAX_EDGES edges then iterates on the driver: its edges come
over as Arrow columns and each iteration is one sparse matrix-vector product, where each iteration as DataFrame
joins costs Spark a join, an aggregation and their planning (42 s for 20 iterations over a million nodes on 2
cores, against a few seconds here; BENCHMARKS.md). A larger graph, for which the driver would need gigabytes,
iterates as DataFrame joins on the cluster, with the same iteration and stopping rule.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# Up to this many distinct edges PageRank iterates on the driver: about 60 bytes an edge on the way (ids as Arrow
# strings, then integer indices and a sparse matrix), so at most about a gigabyte.
DRIVER_MAX_EDGES = 20_000_000

# Up to this many nodes the rank vector is sent whole to every task (a broadcast join) instead of shuffling the
# edges to it each iteration; at 16 bytes a node that is at most about 80 MB.
BROADCAST_MAX_NODES = 5_000_000
# Spark plans each iteration over the lineage since the last materialization, and planning grows faster than
# the lineage: every 2 iterations measured fastest (every 10 runs the driver out of memory on 100,000 nodes).
# Convergence is tested at each materialization.
CHECKPOINT_EVERY = 2


def pagerank(
    edges: DataFrame,
    damping: float = 0.85,
    max_iter: int = 50,
    tol: float = 1e-6,
    checkpoint_every: int = CHECKPOINT_EVERY,
    driver_max_edges: int = DRIVER_MAX_EDGES,
    distinct_edges: bool = False,
    mean_one: bool = False,
) -> DataFrame:
    """edges(src, dst, weight) -> ranks(node, rank), ranks summing to 1, or averaging 1 with `mean_one` (each rank
    times the number of nodes, known here without counting the ranks again). Stops when the L1 change of the
    ranks over the last `checkpoint_every` iterations falls below N * tol * checkpoint_every (networkx's
    criterion, tested every `checkpoint_every` iterations) or after max_iter iterations. Edges repeating a
    (src, dst) pair are summed, unless the caller says there are none (`distinct_edges`: an aggregated,
    materialized frame, read as it is)."""
    if not distinct_edges:
        edges = edges.groupBy("src", "dst").agg(F.sum("weight").alias("weight")).localCheckpoint()
    if edges.count() <= driver_max_edges:
        return _pagerank_on_driver(edges, damping, max_iter, tol, checkpoint_every, mean_one)
    return _pagerank_as_joins(edges, damping, max_iter, tol, checkpoint_every, mean_one)


def _pagerank_on_driver(
    edges: DataFrame, damping: float, max_iter: int, tol: float, check_every: int, mean_one: bool
) -> DataFrame:
    """The power iteration on the driver over the aggregated edges; the ranks go back as a DataFrame."""
    import pyarrow as pa
    from scipy import sparse

    spark = edges.sparkSession
    table = edges.toArrow()
    if table.num_rows == 0:
        return spark.createDataFrame([], "node string, rank double")
    # node ids to indices by Arrow's dictionary encoding (one dictionary for every chunk), without making a Python
    # string of each id: a third of the time pandas' factorize took for 18 million ids
    ends = pa.chunked_array(table.column("src").chunks + table.column("dst").chunks).dictionary_encode()
    names = ends.chunks[0].dictionary
    codes = np.concatenate([chunk.indices.to_numpy() for chunk in ends.chunks]).astype(np.int64)
    n = len(names)
    src_i, dst_i = codes[: table.num_rows], codes[table.num_rows :]
    weight = table.column("weight").to_numpy().astype(np.float64)
    out_weight = np.bincount(src_i, weights=weight, minlength=n)
    # flow[dst] = sum over edges of share * rank[src]: a matrix of the shares, rows by destination
    shares = sparse.csr_matrix((weight / out_weight[src_i], (dst_i, src_i)), shape=(n, n))
    dangling = out_weight == 0
    ranks = np.full(n, 1.0 / n)
    checked = ranks
    for i in range(max_iter):
        ranks = (1.0 - damping) / n + damping * ranks[dangling].sum() / n + damping * (shares @ ranks)
        if (i + 1) % check_every == 0 or i + 1 == max_iter:
            change = np.abs(ranks - checked).sum()
            checked = ranks
            if change < n * tol * check_every:
                break
    if mean_one:
        ranks = ranks * n
    return spark.createDataFrame(pa.table({"node": names.cast(pa.string()), "rank": ranks}))


def _pagerank_as_joins(
    edges: DataFrame, damping: float, max_iter: int, tol: float, checkpoint_every: int, mean_one: bool
) -> DataFrame:
    """The power iteration as DataFrame joins, for a graph too large for the driver."""
    nodes = edges.select(F.col("src").alias("node")).union(edges.select(F.col("dst").alias("node"))).distinct()
    nodes = nodes.localCheckpoint()
    n = nodes.count()
    if n == 0:
        return nodes.withColumn("rank", F.lit(0.0))
    out_weight = edges.groupBy("src").agg(F.sum("weight").alias("out_weight"))
    # each edge's share of its source's rank
    shares = (
        edges.join(out_weight, "src")
        .select("src", "dst", (F.col("weight") / F.col("out_weight")).alias("share"))
        .localCheckpoint()
    )
    dangling = nodes.join(out_weight.select(F.col("src").alias("node")), "node", "left_anti").localCheckpoint()
    ranks = nodes.withColumn("rank", F.lit(1.0 / n)).localCheckpoint()
    previous = ranks
    spread = F.broadcast if n <= BROADCAST_MAX_NODES else (lambda frame: frame)
    cached: list[DataFrame] = []  # iterations between checkpoints, released once a checkpoint holds them
    for i in range(max_iter):
        # no Spark action inside an iteration: the dangling mass joins in as a one-row frame
        dangling_mass = dangling.join(ranks, "node").agg(F.coalesce(F.sum("rank"), F.lit(0.0)).alias("dangling"))
        flow = (
            shares.join(spread(ranks.withColumnRenamed("node", "src")), "src")
            .groupBy(F.col("dst").alias("node"))
            .agg(F.sum(F.col("share") * F.col("rank")).alias("inflow"))
        )
        ranks = (
            nodes.join(spread(flow), "node", "left")
            .crossJoin(dangling_mass)
            .select(
                "node",
                (
                    F.lit((1.0 - damping) / n)
                    + damping * F.col("dangling") / n
                    + damping * F.coalesce("inflow", F.lit(0.0))
                ).alias("rank"),
            )
        )
        if (i + 1) % checkpoint_every == 0 or i + 1 == max_iter:
            # materialize, then test convergence over the last iteration (networkx's criterion)
            ranks = ranks.localCheckpoint()
            before_last = previous
            previous = ranks
            change = (
                ranks.join(before_last.withColumnRenamed("rank", "old"), "node")
                .agg(F.sum(F.abs(F.col("rank") - F.col("old"))))
                .first()[0]
            )
            for frame in cached:
                frame.unpersist()
            cached.clear()
            if change < n * tol * checkpoint_every:
                break
        else:
            ranks = ranks.cache()
            cached.append(ranks)
    return ranks.withColumn("rank", F.col("rank") * n) if mean_one else ranks
