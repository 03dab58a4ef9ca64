"""Where dedup keeps the rows that cut its lineage (`spark.checkpoints`): its signature table
and each connected-components iteration.

local:    on the executors' own disks (DataFrame.localCheckpoint): fast, but rows on an
          executor that is lost cannot be recomputed, and the stage fails. On one machine
          that loses the driver too, so it is the default.
reliable: files under OUT/_checkpoints/ (DataFrame.checkpoint), removed when the stage ends:
          a lost executor (a spot reclaim, a pre-emption) costs a task retry. A killed run's
          folder is removed by the next run of the stage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession

from curation.spark.fs import HadoopFS

Checkpoint = Callable[[DataFrame], DataFrame]
FOLDER = "_checkpoints"


def local_checkpoint(df: DataFrame) -> DataFrame:
    return df.localCheckpoint(eager=True)


def reliable_checkpoint(df: DataFrame) -> DataFrame:
    return df.checkpoint(eager=True)


@contextmanager
def checkpoints(spark: SparkSession, mode: str, out: str, stage: str) -> Iterator[Checkpoint]:
    """The checkpoint function for `mode`; for `reliable`, its folder in OUT exists (as the
    rows written there are needed) until the block ends."""
    if mode == "local":
        yield local_checkpoint
        return
    parent = f"{out.rstrip('/')}/{FOLDER}"
    folder = f"{parent}/{stage}-{uuid.uuid4().hex}"
    fs = HadoopFS(spark)
    if fs.exists(parent):  # what a killed run of the stage left
        for left in fs.list(parent):
            if left.rstrip("/").rsplit("/", 1)[-1].startswith(f"{stage}-"):
                fs.delete(left)
    spark.sparkContext.setCheckpointDir(folder)
    try:
        yield reliable_checkpoint
    finally:
        fs.delete(folder)
        if fs.exists(parent) and not fs.list(parent):
            fs.delete(parent)
