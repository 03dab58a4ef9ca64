"""Memory of the URL blocklist's tables, as dicts of strings and as the EntryTable the filter
holds, with every list in ../shared/data/blocklist loaded; and lookups per second.

    python benchmarks/blocklist_memory.py

Every Python worker of every executor unpickles one copy of the filter (the driver
broadcasts it), so bytes per entry decide what a full UT1 adult list (millions of domains)
costs an executor. Measured with tracemalloc around building each table, and pickle sizes.
"""

from __future__ import annotations

import pickle
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.filters.blocklist import (  # noqa: E402
    BlocklistConfig,
    BlocklistFilter,
    EntryTable,
    list_files,
    normalize_host,
    read_list,
)

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def entries(config: BlocklistConfig) -> dict[str, str]:
    """Normalised domain -> category, as BlocklistFilter.from_config collects them."""
    folders, files = list_files(config)
    domains: dict[str, str] = {}
    for category, folder in folders:
        if (folder / "domains").exists():
            for entry in read_list(folder / "domains"):
                domains.setdefault(normalize_host(entry), category)
    for category, path in files:
        for entry in read_list(path):
            domains.setdefault(normalize_host(entry), category)
    return domains


def traced_bytes(build) -> tuple[object, int]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    built = build()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return built, used


def main() -> None:
    ut1 = SHARED / "blocklist" / "ut1"
    if not ut1.exists():
        sys.exit(f"{ut1}: not found (the shared data)")
    config = BlocklistConfig(
        lists_dir=str(ut1),
        categories=sorted(p.name for p in ut1.iterdir() if p.is_dir()),
        domain_files={"adult": [str(SHARED / "blocklist" / "pi_blocklist_porn_top1m.list")]},
    )
    domains = entries(config)
    keys = list(domains)
    # new key strings, as reading the lists makes them (str slicing would share them)
    copied, dict_bytes = traced_bytes(lambda: {k.encode().decode(): v for k, v in domains.items()})
    table, table_bytes = traced_bytes(lambda: EntryTable(domains))
    n = len(domains)
    print(f"domains: {n:,}")
    print(f"dict of strings: {dict_bytes / 2**20:7.2f} MiB  {dict_bytes / n:6.1f} B/entry")
    print(f"EntryTable     : {table_bytes / 2**20:7.2f} MiB  {table_bytes / n:6.1f} B/entry")
    print(
        f"pickled: dict {len(pickle.dumps(copied)) / 2**20:.2f} MiB, "
        f"EntryTable {len(pickle.dumps(table)) / 2**20:.2f} MiB"
    )
    step = BlocklistFilter.from_config(config)
    rng = random.Random(0)
    urls = [f"https://www.{rng.choice(keys)}/a/b.html" for _ in range(50_000)]
    urls += [f"https://unlisted{i}.example.org/x" for i in range(50_000)]
    started = time.perf_counter()
    blocked = sum(1 for url in urls if step.match(url, None))
    rate = len(urls) / (time.perf_counter() - started)
    print(f"lookups: {rate:,.0f}/s over {len(urls):,} URLs, {blocked:,} blocked")


if __name__ == "__main__":
    main()
