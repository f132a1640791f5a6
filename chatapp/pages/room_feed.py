"""The browser's transport of the room hubs (live/hub.py): one socket.io emit addressed to every tab of
a room, on NiceGUI's socket.io server."""

from __future__ import annotations

from typing import Any

from nicegui import core

from chatapp.live.flow import MAX_BACKLOG
from chatapp.live.hub import RoomHubs


async def emit_to_tabs(event: str, data: dict[str, Any], client_ids: list[str]) -> None:
    """One socket.io emit, serialised once, to the tabs with these client ids."""
    await core.sio.emit(event, data, to=client_ids)


def tab_hubs(*, max_backlog: int = MAX_BACKLOG) -> RoomHubs:
    """The room hubs of this process's browser tabs."""
    return RoomHubs(emit_to_tabs, max_backlog=max_backlog)
