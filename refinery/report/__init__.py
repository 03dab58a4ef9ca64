"""`refinery report OUT`: one self-contained OUT/report.html describing a run folder.

    runfolder.py  read what a run folder holds (stats, JSON, Parquet columns, metrics.jsonl)
    aggregate.py  plain decisions: funnel rows, histogram bins, metric series, JSON tables
    html.py       escaped HTML pieces (tables, sections, figures as inline PNG)
    charts.py     the figures, drawn on matplotlib Figure objects
    sections.py   one function per report section, each rendered only from what exists
    command.py    the CLI: build the page, write it atomically, print its path

No Spark and no torch: Parquet is read with pyarrow, figures are drawn with matplotlib's Agg.
"""
