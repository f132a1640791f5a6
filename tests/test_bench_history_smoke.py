"""A tiny run of bench/history.py (scenario d), so the tool keeps working; the real numbers: docs/BENCHMARKS.md."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import history

NUMBER_MS = re.compile(r"^(\d+\.\d+) ms$")


def test_history_tool_pages_through_a_small_sqlite_room(capsys: pytest.CaptureFixture[str]) -> None:
    history.main(["--messages", "2000", "--backends", "sqlite", "--pages", "3"])
    out = capsys.readouterr().out

    assert out.startswith("Machine: ")
    seeding = [line for line in out.splitlines() if line.startswith("| sqlite | 2,000 |")]
    assert len(seeding) == 1
    assert seeding[0].split(" | ")[2:4] == ["500", "200"]  # the other room, the small old room

    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 10 and cells[0] == "sqlite":
            rows[cells[1]] = cells
    assert set(rows) == {
        history.OPEN,
        history.BACK,
        history.MIDDLE,
        history.OLDEST,
        history.SMALL_OPEN,
        history.SMALL_BACK,
    }
    for kind, cells in rows.items():
        assert cells[2] == "3", kind  # 3 requests of each kind (the small room has 4 pages: 3 clicks back)
        numbers = [NUMBER_MS.match(cell) for cell in cells[3:9]]
        assert all(numbers), cells
        p50, p99, top, inline, bare_p50, bare_p99 = (float(m.group(1)) for m in numbers)
        assert 0 < p50 <= p99 <= top < 1000, cells
        assert 0 < inline < 1000 and 0 < bare_p50 <= bare_p99 < 1000, cells
        assert cells[9] == "-"  # no PostgreSQL execution time on SQLite

    assert "Target (a history page <= 5 ms, domain call p99): sqlite: " in out
    hop = re.search(r"sqlite: an empty asyncio.to_thread round trip .*: p50 (\d+\.\d+) ms, p99 (\d+\.\d+) ms", out)
    assert hop and 0 < float(hop.group(1)) <= float(hop.group(2)) < 1000
    assert "CREATE INDEX ix_messages_room_id_id ON messages (room_id, id)" in out
    assert "USING INDEX ix_messages_room_id_id" in out  # the page query's plan uses the (room_id, id) index
