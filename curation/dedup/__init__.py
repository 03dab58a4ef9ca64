"""Deduplication decisions, testable without Spark: URL and text keys, MinHash signatures and
LSH bands, the keep rule, and a union-find reference for connected components.

The Spark side (buckets, star edges, large-star/small-star components) is in
`curation/spark/components.py` and `curation/spark/dedup.py`.
"""
