"""A tiny run of the benchmark tools, so they keep working (the real numbers: docs/BENCHMARKS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fanout


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_fanout_tool_measures_both_servers_with_two_clients():
    (row,) = fanout.run([2], rounds=1)
    assert row["clients"] == 2
    assert 0 < row["app_p50"] < 5 and 0 < row["bare_p50"] < 5
