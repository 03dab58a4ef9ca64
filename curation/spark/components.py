"""Connected components of the candidate-duplicate graph, in Spark (no GraphFrames).

Edges are (node, parent) pairs with parent < node. `star_edges` links every member of an
LSH bucket to the bucket's smallest member: one edge per member, so edges grow linearly with
bucket size instead of quadratically. Where each edge is verified, a star would test each
member against whichever document has the smallest id, so `pair_edges` gives small buckets
(nearly all of them) every pair instead. `connected_components` alternates large-star and
small-star (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014) until
an iteration changes nothing; the graph is then one star per component around its smallest
node. Every iteration's edges are checkpointed so the lineage stays short, and nothing but
edge counts reaches the driver.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from curation.spark.checkpoints import Checkpoint, local_checkpoint
from refinery.errors import RefineryError


class ComponentsDidNotConverge(RefineryError):
    """Large-star/small-star ran out of iterations (raise dedup.max_iterations)."""


def star_edges(members: DataFrame, bucket: list[str]) -> DataFrame:
    """(node, parent) edges from (id, *bucket) rows: each member to its bucket's smallest id."""
    smallest = members.groupBy(*bucket).agg(F.min("id").alias("parent"))
    return (
        members.join(smallest, bucket)
        .where(F.col("id") != F.col("parent"))
        .select(F.col("id").alias("node"), "parent")
        .distinct()
    )


def pair_edges(members: DataFrame, bucket: list[str], max_members: int) -> DataFrame:
    """(node, parent) edges for every pair of members of a bucket of at most `max_members`
    (the pairs that collided, each checked on its own when edges are verified), and star
    edges for larger buckets, whose pairs would grow quadratically."""
    sizes = members.groupBy(*bucket).agg(F.count("*").alias("size"))
    sized = members.join(sizes, bucket)
    small = sized.where(F.col("size") <= max_members).select("id", *bucket)
    other = small.select(F.col("id").alias("parent"), *bucket)
    pairs = (
        small.join(other, bucket)
        .where(F.col("parent") < F.col("id"))
        .select(F.col("id").alias("node"), "parent")
    )
    large = star_edges(sized.where(F.col("size") > max_members).select("id", *bucket), bucket)
    return pairs.unionByName(large).distinct()


def large_star(edges: DataFrame) -> DataFrame:
    """Each node's larger neighbours are re-attached to the smallest node of its neighbourhood."""
    both = edges.select(F.col("node").alias("u"), F.col("parent").alias("v")).unionByName(
        edges.select(F.col("parent").alias("u"), F.col("node").alias("v"))
    )
    smallest = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    return (
        both.join(smallest, "u")
        .where(F.col("v") > F.col("u"))
        .select(F.col("v").alias("node"), F.col("m").alias("parent"))
        .distinct()
    )


def small_star(edges: DataFrame) -> DataFrame:
    """Each node and its smaller neighbours are attached to the smallest of them."""
    smallest = edges.groupBy("node").agg(F.min("parent").alias("m"))
    linked = edges.join(smallest, "node")
    to_node = linked.select("node", F.col("m").alias("parent"))
    to_neighbours = linked.where(F.col("parent") != F.col("m")).select(
        F.col("parent").alias("node"), F.col("m").alias("parent")
    )
    return to_node.unionByName(to_neighbours).distinct()


def connected_components(
    edges: DataFrame,
    max_iterations: int = 50,
    checkpoint: Checkpoint = local_checkpoint,
) -> DataFrame:
    """(node, component) for every node on an edge, a component named by its smallest node
    (a node on no edge is a component of its own, left to the caller)."""
    current = checkpoint(edges.select("node", "parent").distinct())
    size = current.count()
    for _ in range(max_iterations):
        following = checkpoint(small_star(checkpoint(large_star(current))))
        following_size = following.count()
        unchanged = (
            following_size == size
            and following.join(current, ["node", "parent"], "left_anti").isEmpty()
        )
        current, size = following, following_size
        if unchanged:
            roots = current.select(F.col("parent").alias("node"), "parent").distinct()
            stars = current.unionByName(roots.join(current.select("node"), "node", "left_anti"))
            return stars.withColumnRenamed("parent", "component")
    raise ComponentsDidNotConverge(
        f"connected components did not converge in {max_iterations} large-star/small-star "
        "iterations; raise dedup.max_iterations"
    )
