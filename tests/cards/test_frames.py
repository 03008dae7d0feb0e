"""Sorted runs on disk merge into one order, ties in the runs' order, and rebatch exactly: the
merge under staging a file out of time order and under generating a many-batch feed."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from beyondbank.cards import frames

# A run: rows of (time, id), sorted, tagged with the run and their place in it.
_ROW = st.tuples(st.integers(0, 6), st.sampled_from("abc"))
_RUNS = st.lists(st.lists(_ROW, max_size=25), min_size=1, max_size=5)


def _written(folder: Path, runs: list[list[tuple[int, str]]]) -> list[Path]:
    paths = []
    for number, rows in enumerate(runs):
        frame = pl.DataFrame(
            {
                "at": [t for t, _ in sorted(rows)],
                "id": [i for _, i in sorted(rows)],
                "run": [number] * len(rows),
                "place": list(range(len(rows))),
            },
            schema={"at": pl.Int64, "id": pl.String, "run": pl.Int64, "place": pl.Int64},
        )
        paths.append(folder / f"{number:03d}.arrow")
        frame.write_ipc(paths[-1])
    return paths


@settings(max_examples=60, deadline=None)
@given(runs=_RUNS, slice_rows=st.integers(1, 7), batch_rows=st.integers(1, 9))
def test_runs_merge_into_one_order_with_ties_in_run_order_and_rebatch_exactly(
    tmp_path_factory, runs: list[list[tuple[int, str]]], slice_rows: int, batch_rows: int
) -> None:  # type: ignore[no-untyped-def]
    paths = _written(tmp_path_factory.mktemp("runs"), runs)
    for by in (["at"], ["at", "id"]):
        pieces = list(frames.merge_sorted_runs(paths, by, slice_rows))
        merged = pl.concat(pieces) if pieces else None
        everything = pl.concat([pl.read_ipc(p) for p in paths])
        expected = everything.sort([*by, "run", "place"])
        if merged is None:
            assert expected.height == 0
            continue
        assert merged.select("run", "place").rows() == expected.select("run", "place").rows()
        batches = list(frames.rebatched(iter(pieces), batch_rows))
        assert [b.height for b in batches[:-1]] == [batch_rows] * (len(batches) - 1)
        assert 0 < batches[-1].height <= batch_rows
        assert pl.concat(batches).equals(merged)


def test_nothing_to_merge_gives_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.arrow"
    pl.DataFrame(schema={"at": pl.Int64}).write_ipc(empty)
    assert list(frames.merge_sorted_runs([empty], ["at"], 10)) == []
    assert list(frames.rebatched(iter([]), 3)) == []
