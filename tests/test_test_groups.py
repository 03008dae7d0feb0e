"""The suite's own machinery: tests marked into an xdist group run in one test process, as the
browser tests (one demo server, one browser), the demo's and the card drills' rely on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFTEST = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "test_hooked" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("hooked"))
"""
MARKED = """
import os
import pytest

pytestmark = pytest.mark.xdist_group("marked")

@pytest.mark.parametrize("i", range(4))
def test_marked(i):
    print("worker", os.environ["PYTEST_XDIST_WORKER"])
"""
HOOKED = MARKED.replace('pytestmark = pytest.mark.xdist_group("marked")', "").replace(
    "test_marked", "test_hooked"
)


def test_a_group_marked_on_the_module_or_by_a_conftest_hook_runs_in_one_process(
    tmp_path: Path,
) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_marked.py").write_text(MARKED)
    (tmp_path / "test_hooked.py").write_text(HOOKED)

    run = subprocess.run(  # noqa: S603 - this interpreter's pytest on files of our own
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-v",
            "-s",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    passed = [line for line in run.stdout.splitlines() if "PASSED" in line]
    assert len(passed) == 8, run.stdout
    for group in ("marked", "hooked"):
        lines = [line for line in passed if line.rstrip().endswith(f"@{group}")]
        assert len(lines) == 4, run.stdout
        assert len({line.split()[0] for line in lines}) == 1, lines
