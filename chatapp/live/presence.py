"""Who is in a room right now, in this process: one entry ("meta") per connection, a browser tab or a room
socket, grouped by person, in the shape of Phoenix Presence (so phoenix.js's Presence reads it as is):

    state: {"user:7": {"metas": [{"phx_ref": "3", "via": "browser", ...}, ...]}, ...}
    diff:  {"joins": {key: {"metas": [...]}}, "leaves": {key: {"metas": [...]}}}

Across processes (several chatapp processes on one database) this becomes the bus's job (issue 12).
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


class RoomPresence:
    """The connections of every room in this process, and who listens to each room's changes."""

    def __init__(self) -> None:
        self._rooms: dict[int, dict[str, list[Meta]]] = {}
        self._listeners: dict[int, list[Listener]] = {}
        self._refs = itertools.count(1)

    def state(self, room_id: int) -> dict[str, dict[str, list[Meta]]]:
        """Everyone in the room now, as Phoenix's presence_state."""
        return {key: {"metas": list(metas)} for key, metas in self._rooms.get(room_id, {}).items()}

    def track(self, room_id: int, key: str, meta: Meta) -> Callable[[], None]:
        """Count this connection in the room until the returned function is called (once is enough)."""
        tracked = {**meta, "phx_ref": str(next(self._refs))}
        self._rooms.setdefault(room_id, {}).setdefault(key, []).append(tracked)
        self._tell(room_id, {"joins": {key: {"metas": [tracked]}}, "leaves": {}})

        def untrack() -> None:
            metas = self._rooms.get(room_id, {}).get(key)
            if not metas or tracked not in metas:
                return
            metas.remove(tracked)
            if not metas:
                del self._rooms[room_id][key]
                if not self._rooms[room_id]:
                    del self._rooms[room_id]
            self._tell(room_id, {"joins": {}, "leaves": {key: {"metas": [tracked]}}})

        return untrack

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

    def _tell(self, room_id: int, diff: dict[str, Any]) -> None:
        for listener in list(self._listeners.get(room_id, ())):
            try:
                listener(diff)
            except Exception:
                log.exception("a presence listener failed; the others are still told")


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
