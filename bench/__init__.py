"""Benchmarks (never run as tests). Importing beyondbank first configures Polars' allocator as
the platform runs it, whatever a benchmark module imports before it."""

import beyondbank  # noqa: F401
