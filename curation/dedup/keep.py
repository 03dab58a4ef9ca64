"""Which document of a duplicate group survives, and a plain union-find for checking groups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Sort keys (column, descending) tried in order; the document id breaks every tie, so the
# choice is the same whatever the partitioning. Nulls sort last.
KEEP_RULES: dict[str, list[tuple[str, bool]]] = {
    "longest": [("text_length", True)],
    "earliest": [("fetch_time", False)],
    "quality": [("quality_score", True), ("text_length", True)],
}


def keep_order(rule: str, has_quality_score: bool) -> list[tuple[str, bool]]:
    """Sort keys of `rule`; "quality" falls back to "longest" when no stage scored quality
    (classify runs after dedup in the default pipeline)."""
    if rule == "quality" and not has_quality_score:
        rule = "longest"
    return [*KEEP_RULES[rule], ("id", False)]


def choose_kept(docs: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    """The surviving document of one group, by the same keys the Spark job sorts on."""
    order = keep_order(rule, any(d.get("quality_score") is not None for d in docs))

    def key(doc: dict[str, Any]) -> tuple:
        parts = []
        for column, descending in order:
            value = doc.get(column)
            if value is None or value != value:  # NaN sorts last, as None does
                parts.append((1, 0))
            else:
                parts.append((0, -value if descending else value))
        return tuple(parts)

    return min(docs, key=key)


class UnionFind:
    """Disjoint sets with path halving; `components` labels each node by its smallest member,
    the labelling the Spark connected components produce."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, node: Any) -> Any:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: Any, b: Any) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def components(self, edges: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
        for a, b in edges:
            self.union(a, b)
        return {node: self.find(node) for node in list(self.parent)}
