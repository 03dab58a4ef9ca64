"""Refinery: Common Crawl WARCs -> Spark curation -> token shards -> torch trainer."""

__version__ = "0.1.0"
