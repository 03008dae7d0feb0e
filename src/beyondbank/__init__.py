"""beyondbank: the platform a bank runs its partner ecosystem on."""

import os

__version__ = "0.1.0"

# Polars allocates through jemalloc, which it tells to keep freed pages for a while (0.5 s dirty,
# then 1 s "muzzy", still resident) and which purges them only when it is next called. A
# card-linked run frees each chunk and at once allocates the next, so the kept pages pile up:
# 10M transactions peaked at 2,306 MiB. jemalloc's background thread purging at once keeps the
# peak at 1,956 MiB, under the 2 GiB the card engine promises, for 54 % more time at that size
# (after 0.1 s: 2,017–2,043 MiB, too close to the line; docs/benchmarks.md). A bank that would
# rather have the speed sets its own value. Polars reads this when first imported, hence here;
# Polars puts its own defaults first, so these win.
os.environ.setdefault(
    "_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:0,muzzy_decay_ms:0"
)
