"""Tiny runs of the benchmark tools, so they keep working (the real numbers: docs/BENCHMARKS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bus_cost, fanout, machine, memory, nginx, scaleout, socket_fanout, steps, writes
from tests.timing import LIVENESS_S

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_fanout_tool_measures_both_servers_with_two_clients():
    (row,) = fanout.run([2], rounds=1)
    assert row["clients"] == 2
    assert 0 < row["app_p50"] < LIVENESS_S and 0 < row["bare_p50"] < LIVENESS_S


def test_memory_tool_reads_the_server_rss_around_new_clients():
    row = memory.run(clients=3, messages=2)
    assert row["clients"] == 3 and row["messages"] == 2
    assert 50 < row["rss_before_mib"] <= row["rss_after_mib"] < 2000
    assert row["per_client_kib"] >= 0


def test_writes_tool_counts_every_message_on_both_servers():
    row = writes.run(posters=2, messages=3)
    assert row["posters"] == 2 and row["messages"] == 6
    assert 0 < row["send_seconds"] <= row["seconds"] < LIVENESS_S
    assert row["per_second"] > 0 and row["bare_per_second"] > 0


def test_socket_tool_measures_both_servers_and_the_bots_posts():
    rows, posts = socket_fanout.run([2], rounds=1, bots=2, messages=3)
    assert rows[0]["clients"] == 2 and 0 < max(rows[0]["app"]) < LIVENESS_S and 0 < max(rows[0]["bare"]) < LIVENESS_S
    assert 0 < max(rows[0]["bare_no_deflate"]) < LIVENESS_S
    assert posts["bots"] == 2 and posts["socket_per_second"] > 0 and posts["ui_per_second"] > 0


def test_machine_line_names_the_cpu_and_a_calibration_time():
    line = machine.describe()
    assert line.startswith(f"Machine: {machine.os.cpu_count()} cores (")
    assert machine.cpu_model() in line
    assert 1 < machine.calibration_ms() < 60_000


@pytest.mark.postgres
@pytest.mark.redis
def test_bus_cost_tool_runs_writes_on_each_bus(postgres_server, redis_server):
    rates = bus_cost.run(rounds=1, posters=2, messages=3)
    assert set(rates) == {"memory", "postgres", "redis"} and all(v[0] > 0 for v in rates.values())
    for kind in ("postgres", "redis"):
        got = bus_cost.delays(kind, events=20, per_second=200)
        assert len(got) == 20 and all(0 < d < LIVENESS_S for d in got)


@pytest.mark.postgres
@pytest.mark.redis
def test_scaleout_tool_spreads_tabs_over_processes_behind_nginx(postgres_server, redis_server):
    if nginx.find_nginx() is None:
        pytest.skip("Debian's nginx is not installed (apt-get install nginx)")
    (row,) = scaleout.fanout_rows([2], [3], rounds=1)
    assert row["processes"] == 2 and 0 < row["app_p50"] < LIVENESS_S and 0 < row["bare_p50"] < LIVENESS_S
    one, two = scaleout.writes_rows([2], posters=2, messages=2)
    assert (one["processes"], two["processes"]) == (1, 2) and one["messages"] == two["messages"] == 4


def test_steps_tool_measures_each_step_on_both_servers():
    rows = steps.run([2, 3], rounds=1)
    assert [(a["tabs"], b["tabs"]) for a, b in rows] == [(2, 2), (3, 3)]
    assert all(0 < r["p99"] < LIVENESS_S and r["rss_mib"] > 10 for pair in rows for r in pair)
