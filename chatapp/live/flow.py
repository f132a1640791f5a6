"""Flow control for one room's broadcasts: every broadcast is numbered, each subscriber says now and then
up to which one it has taken in, and one too far behind is left out until it has.

Between python-socketio's queue, uvicorn's write buffer and the kernel nothing bounds what waits for a slow
socket (a phone on a bad link, a frozen laptop), and the ping queued behind it times out, dropping the
socket with everything it held. So a subscriber more than `max_backlog` broadcasts behind is left out;
as soon as it says it has taken in all it was sent, or it reads what it missed from the database after
reconnecting, it is included again (and, in the first case, asked to catch up).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

MAX_BACKLOG = 200  # broadcasts a subscriber may be behind: the default of CHATAPP_LIVE_MAX_BACKLOG


class FlowControl:
    """The numbering and the backlog of every subscriber of one room, by subscriber id."""

    def __init__(self, room_id: int, *, max_backlog: int = MAX_BACKLOG) -> None:
        self.room_id = room_id
        self.max_backlog = max_backlog
        self.seq = 0  # broadcasts made
        self._sent: dict[str, int] = {}  # the last broadcast sent to the subscriber...
        self._received: dict[str, int] = {}  # ...and the last it said it has taken in
        self._behind: set[str] = set()  # subscribers left out until they catch up

    def add(self, subscriber_id: str) -> None:
        """Count a new subscriber, owing nothing."""
        self._sent[subscriber_id] = self._received[subscriber_id] = 0

    def discard(self, subscriber_id: str) -> None:
        """Forget a subscriber that went."""
        self._sent.pop(subscriber_id, None)
        self._received.pop(subscriber_id, None)
        self._behind.discard(subscriber_id)

    def keeps_up(self, subscriber_id: str, *, counts: bool = True) -> bool:
        """Whether to broadcast to the subscriber; one that reached the backlog is left out from now on.
        `counts` False: one that never answers by design (a page simulated in tests has no socket)."""
        if subscriber_id in self._behind:
            return False
        if counts and self._sent[subscriber_id] - self._received[subscriber_id] >= self.max_backlog:
            log.info(
                "room %s: a subscriber is %s broadcasts behind; left out until it catches up",
                self.room_id,
                self.max_backlog,
            )
            self._behind.add(subscriber_id)
            return False
        return True

    def number(self, subscriber_ids: list[str]) -> int:
        """Number the next broadcast, sent to these subscribers."""
        self.seq += 1
        for subscriber_id in subscriber_ids:
            self._sent[subscriber_id] = self.seq
        return self.seq

    def received(self, subscriber_id: str, seq: int) -> bool:
        """The subscriber has taken in the broadcasts up to `seq`. True when it was left out and has now
        taken in all it was sent: it is included again and must catch up from the database."""
        if subscriber_id not in self._received or seq <= self._received[subscriber_id]:
            return False
        self._received[subscriber_id] = min(seq, self._sent[subscriber_id])
        if subscriber_id in self._behind and self._received[subscriber_id] == self._sent[subscriber_id]:
            self._behind.discard(subscriber_id)
            return True
        return False

    def caught_up(self, subscriber_id: str) -> None:
        """The subscriber is reading what it missed from the database: it owes nothing from now on."""
        if subscriber_id in self._sent:
            self._received[subscriber_id] = self._sent[subscriber_id]
            self._behind.discard(subscriber_id)
