"""Room presence in Phoenix's shape, and the batcher that gathers a room's changes into one diff."""

from __future__ import annotations

import asyncio

from chatapp.live.presence import DiffBatcher, RoomPresence


async def test_a_rush_of_joins_is_one_diff_and_a_connection_that_came_and_went_is_in_none() -> None:
    presence = RoomPresence()
    told: list[dict] = []
    batcher = DiffBatcher(told.append, window_s=0.05)
    presence.listen(1, batcher)
    untrack = [presence.track(1, f"user:{n}", {"via": "socket"}) for n in range(100)]
    blink = presence.track(1, "user:999", {"via": "browser"})
    blink()  # came and went within the window
    assert told == []  # nothing yet: gathered
    await asyncio.sleep(0.1)
    assert len(told) == 1
    assert sorted(told[0]["joins"]) == sorted(f"user:{n}" for n in range(100)) and told[0]["leaves"] == {}
    untrack[0]()
    untrack[1]()
    await asyncio.sleep(0.1)
    assert len(told) == 2 and sorted(told[1]["leaves"]) == ["user:0", "user:1"] and told[1]["joins"] == {}
    assert len(presence.state(1)) == 98


async def test_two_connections_of_one_person_are_two_metas_and_cancel_drops_what_is_gathered() -> None:
    presence = RoomPresence()
    told: list[dict] = []
    batcher = DiffBatcher(told.append, window_s=0.05)
    presence.listen(1, batcher)
    presence.track(1, "user:7", {"via": "browser"})
    presence.track(1, "user:7", {"via": "socket"})
    batcher.flush()
    [diff] = told
    assert [m["via"] for m in diff["joins"]["user:7"]["metas"]] == ["browser", "socket"]
    assert len({m["phx_ref"] for m in diff["joins"]["user:7"]["metas"]}) == 2
    presence.track(1, "user:8", {"via": "socket"})
    batcher.cancel()
    await asyncio.sleep(0.1)
    assert len(told) == 1  # cancelled: the hub went away


def test_other_processes_connections_join_the_state_and_leave_when_replaced_or_dropped() -> None:
    presence = RoomPresence("here")
    told: list[dict] = []
    presence.listen(1, told.append)
    local: list[tuple[int, dict]] = []
    presence.on_local_change = lambda room_id, diff: local.append((room_id, diff))
    presence.track(1, "user:1", {"via": "browser"})
    assert local[0][0] == 1 and local[0][1]["joins"]["user:1"]["metas"][0]["phx_ref"] == "here.1"
    there = {"phx_ref": "there.1", "via": "socket"}
    presence.apply_remote("there", 1, {"joins": {"user:2": {"metas": [there]}}, "leaves": {}})
    assert set(presence.state(1)) == {"user:1", "user:2"}
    assert presence.local_rooms() == {1: {"user:1": [{"via": "browser", "phx_ref": "here.1"}]}}
    second = {"phx_ref": "there.2", "via": "socket"}
    presence.replace_remote("there", {1: {"user:2": [second]}})  # its snapshot: there.1 went, there.2 came
    assert told[-1] == {"joins": {"user:2": {"metas": [second]}}, "leaves": {"user:2": {"metas": [there]}}}
    presence.drop_remote("there")  # it died
    assert told[-1] == {"joins": {}, "leaves": {"user:2": {"metas": [second]}}}
    assert set(presence.state(1)) == {"user:1"} and presence.remote_origins() == set()
    assert len(local) == 1  # what others did is never told as this process's own
