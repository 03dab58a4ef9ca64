"""spark-submit entry points, one per curation stage, plus `pipeline.py` for all of them."""
