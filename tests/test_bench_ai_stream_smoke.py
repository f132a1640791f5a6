"""A tiny run of scenario f (bench/ai_stream.py), so it keeps working (the real numbers: docs/BENCHMARKS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ai_stream
from tests.timing import LIVENESS_S

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_ai_stream_tool_follows_one_reply_to_every_client():
    (row,) = ai_stream.run([2], tokens=20, tokens_per_second=200)
    assert row["clients"] == 2 and row["tokens"] == 20
    # run() raises unless every client's deltas add up to the whole reply text
    assert row["deltas"] >= 1
    assert row["frame_bytes"] > row["reply_bytes"] > 0 and row["wire_bytes"] > 0
    assert 0 < row["cpu_percent"] < 200
    assert 0 < row["seconds"] < LIVENESS_S
    assert 0 <= row["first_p50"] <= row["first_max"] < LIVENESS_S
    assert 0 <= row["token_p50"] <= row["token_p99"] <= row["token_max"] < LIVENESS_S
