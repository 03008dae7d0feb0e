"""beyondbank: the platform a bank runs its partner ecosystem on."""

import os

__version__ = "0.1.0"

# Polars allocates through jemalloc, which it tells to keep freed pages for a while (0.5 s dirty,
# then 1 s "muzzy", still resident) and which purges them only when it is next called; and
# allocations over 8 MiB go to an arena of their own that returns them to the system at once,
# so every large column is page-faulted in anew. A card-linked run frees each chunk and at once
# allocates the next. Here the background thread purges what stayed unused for ten seconds
# (nothing kept "muzzy"), and large allocations share the other arenas' reuse: 10M
# transactions peak near 1.6 GiB with 500k-row chunks, under the 2 GiB the card engine promises,
# with half the system time that purging after one second cost (docs/benchmarks.md). A bank
# that would rather have the speed, or the memory, sets its own value. Polars reads this when
# first imported, hence here; Polars puts its own defaults first, so these win.
os.environ.setdefault(
    "_RJEM_MALLOC_CONF",
    "background_thread:true,dirty_decay_ms:10000,muzzy_decay_ms:0,oversize_threshold:0",
)
