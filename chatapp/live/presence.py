"""Who is in a room right now, in this process: one entry ("meta") per connection, a browser tab or a room
socket, grouped by person, in the shape of Phoenix Presence (so phoenix.js's Presence reads it as is):

    state: {"user:7": {"metas": [{"phx_ref": "3", "via": "browser", ...}, ...]}, ...}
    diff:  {"joins": {key: {"metas": [...]}}, "leaves": {key: {"metas": [...]}}}

Across processes, live/presence_sync.py tells the others this process's changes over the bus and keeps
theirs here (`apply_remote`...): `state` and the listeners then cover every process.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chatapp.domain.models import Actor, Participant

log = logging.getLogger(__name__)

Meta = dict[str, Any]
Listener = Callable[[dict[str, Any]], None]
# How long a room's presence changes are gathered into one presence_diff. Told one by one, N sockets
# joining a room of N cost N^2/2 frames (1000 joins: ~500,000 frames); gathered over 50 ms, a rush of
# joins is a few diffs, and a single join reaches the room 50 ms later, which nobody sees. (Phoenix's
# tracker gathers its deltas between nodes too, every 1.5 s by default.)
PRESENCE_BATCH_S = 0.05


def presence_key(actor: Actor) -> str:
    """Whose connection it is: "user:<id>" (people and bots) or "guest:<id>"."""
    return f"guest:{actor.guest_id}" if actor.guest_id is not None else f"user:{actor.user_id}"


def presence_meta(actor: Actor, participant: Participant | None, via: str) -> Meta:
    """What one connection says of its person (phx_ref is added when it is tracked)."""
    kind = "bot" if actor.is_bot else ("guest" if actor.is_guest else "user")
    return {
        "participant_id": participant.id if participant else None,
        "display_name": actor.display_name,
        "kind": kind,
        "via": via,  # "browser" or "socket"
        "online_at": datetime.now(UTC).isoformat(),
    }


Rooms = dict[int, dict[str, list[Meta]]]  # room -> key -> metas


class RoomPresence:
    """The connections of every room in this process (and, told by live/presence_sync.py, in the other
    processes), and who listens to each room's changes."""

    def __init__(self, origin: str = "") -> None:
        self._rooms: Rooms = {}
        self._remote: dict[str, Rooms] = {}  # another process -> its rooms
        self._listeners: dict[int, list[Listener]] = {}
        self._refs = itertools.count(1)
        self._origin = origin  # in every phx_ref, so refs of different processes never meet
        self.on_local_change: Callable[[int, dict[str, Any]], None] | None = None  # for presence_sync

    def state(self, room_id: int) -> dict[str, dict[str, list[Meta]]]:
        """Everyone in the room now, in every process, as Phoenix's presence_state."""
        merged: dict[str, list[Meta]] = {key: list(metas) for key, metas in self._rooms.get(room_id, {}).items()}
        for rooms in self._remote.values():
            for key, metas in rooms.get(room_id, {}).items():
                merged.setdefault(key, []).extend(metas)
        return {key: {"metas": metas} for key, metas in merged.items()}

    def local_rooms(self) -> Rooms:
        """This process's own connections, room by room (what presence_sync tells a process that asks)."""
        return {room_id: {key: list(metas) for key, metas in keys.items()} for room_id, keys in self._rooms.items()}

    def track(self, room_id: int, key: str, meta: Meta) -> Callable[[], None]:
        """Count this connection in the room until the returned function is called (once is enough)."""
        ref = f"{self._origin}.{next(self._refs)}" if self._origin else str(next(self._refs))
        tracked = {**meta, "phx_ref": ref}
        self._rooms.setdefault(room_id, {}).setdefault(key, []).append(tracked)
        self._tell_local(room_id, {"joins": {key: {"metas": [tracked]}}, "leaves": {}})

        def untrack() -> None:
            metas = self._rooms.get(room_id, {}).get(key)
            if not metas or tracked not in metas:
                return
            metas.remove(tracked)
            if not metas:
                del self._rooms[room_id][key]
                if not self._rooms[room_id]:
                    del self._rooms[room_id]
            self._tell_local(room_id, {"joins": {}, "leaves": {key: {"metas": [tracked]}}})

        return untrack

    def apply_remote(self, origin: str, room_id: int, diff: dict[str, Any]) -> None:
        """Another process's connections in the room changed (its diff, as it told it)."""
        rooms = self._remote.setdefault(origin, {})
        keys = rooms.setdefault(room_id, {})
        for key, entry in diff.get("joins", {}).items():
            keys.setdefault(key, []).extend(entry["metas"])
        for key, entry in diff.get("leaves", {}).items():
            gone = {meta.get("phx_ref") for meta in entry["metas"]}
            keys[key] = [meta for meta in keys.get(key, []) if meta.get("phx_ref") not in gone]
            if not keys[key]:
                del keys[key]
        if not keys:
            del rooms[room_id]
        self._tell(room_id, diff)

    def replace_remote(self, origin: str, rooms: Rooms) -> None:
        """Everything another process has, as it said when asked: each room is told what changed."""
        before = self._remote.get(origin, {})
        self._remote[origin] = {room_id: keys for room_id, keys in rooms.items() if keys}
        for room_id in set(before) | set(rooms):
            diff = _difference(before.get(room_id, {}), rooms.get(room_id, {}))
            if diff["joins"] or diff["leaves"]:
                self._tell(room_id, diff)

    def drop_remote(self, origin: str) -> None:
        """Another process is gone: its connections leave every room."""
        self.replace_remote(origin, {})
        self._remote.pop(origin, None)

    def remote_origins(self) -> set[str]:
        """The other processes whose connections are counted here."""
        return set(self._remote)

    def listen(self, room_id: int, listener: Listener) -> Callable[[], None]:
        """Call `listener(diff)` on every change of the room's presence; returns the stop function."""
        self._listeners.setdefault(room_id, []).append(listener)

        def stop() -> None:
            listeners = self._listeners.get(room_id, [])
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._listeners.pop(room_id, None)

        return stop

    def _tell_local(self, room_id: int, diff: dict[str, Any]) -> None:
        self._tell(room_id, diff)
        if self.on_local_change is not None:
            self.on_local_change(room_id, diff)

    def _tell(self, room_id: int, diff: dict[str, Any]) -> None:
        for listener in list(self._listeners.get(room_id, ())):
            try:
                listener(diff)
            except Exception:
                log.exception("a presence listener failed; the others are still told")


def _difference(before: dict[str, list[Meta]], after: dict[str, list[Meta]]) -> dict[str, Any]:
    """The presence_diff from one set of connections to another (by phx_ref)."""
    joins: dict[str, Any] = {}
    leaves: dict[str, Any] = {}
    for key in set(before) | set(after):
        old = {meta.get("phx_ref"): meta for meta in before.get(key, [])}
        new = {meta.get("phx_ref"): meta for meta in after.get(key, [])}
        if came := [meta for ref, meta in new.items() if ref not in old]:
            joins[key] = {"metas": came}
        if went := [meta for ref, meta in old.items() if ref not in new]:
            leaves[key] = {"metas": went}
    return {"joins": joins, "leaves": leaves}


class DiffBatcher:
    """A presence listener that gathers the diffs of `window_s` and hands `deliver` one merged diff: a
    connection that came and went within the window is in neither its joins nor its leaves."""

    def __init__(self, deliver: Listener, window_s: float = PRESENCE_BATCH_S) -> None:
        self._deliver = deliver
        self._window_s = window_s
        self._joins: dict[str, list[Meta]] = {}
        self._leaves: dict[str, list[Meta]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, diff: dict[str, Any]) -> None:
        for key, entry in diff.get("joins", {}).items():
            self._joins.setdefault(key, []).extend(entry["metas"])
        for key, entry in diff.get("leaves", {}).items():
            for meta in entry["metas"]:
                self._leave(key, meta)
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self._window_s, self.flush)
            except RuntimeError:  # no loop (a synchronous caller): tell at once
                self.flush()

    def _leave(self, key: str, meta: Meta) -> None:
        joined = self._joins.get(key, [])
        if meta in joined:  # never told: it simply was not there
            joined.remove(meta)
            if not joined:
                del self._joins[key]
            return
        self._leaves.setdefault(key, []).append(meta)

    def flush(self) -> None:
        """Hand over what was gathered (nothing when it all cancelled out)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        joins, leaves = self._joins, self._leaves
        self._joins, self._leaves = {}, {}
        if joins or leaves:
            self._deliver(
                {
                    "joins": {key: {"metas": metas} for key, metas in joins.items()},
                    "leaves": {key: {"metas": metas} for key, metas in leaves.items()},
                }
            )

    def cancel(self) -> None:
        """Drop what was gathered and stop the timer (the listener goes away)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._joins, self._leaves = {}, {}
