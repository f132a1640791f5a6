"""What a client that (re)connects is owed: the rules of catching up, whatever the transport."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

# A client that comes back asks for the edits and deletions made since it went away, from this much
# earlier: the clocks of several server processes differ a little, and a change is stamped before it
# is published. Changes it already has come again harmlessly.
CHANGES_MARGIN = timedelta(seconds=5)


def changes_from(seen_until: datetime | None, *, opened_at: datetime, now: datetime) -> datetime:
    """From when a reconnecting client needs the edits and deletions: the server time of the latest news
    it had (it has every change before that), kept between the page's opening (everything before is in
    the page) and now, less CHANGES_MARGIN."""
    return min(max(seen_until or opened_at, opened_at), now) - CHANGES_MARGIN


def read_catch_up_request(args: Any) -> tuple[int, datetime | None] | None:
    """The browser's catch-up request: the id to read on from and the server time it has news up to."""
    if isinstance(args, int) and not isinstance(args, bool):
        return args, None  # a page script from before the time was sent
    if not isinstance(args, dict) or not isinstance(args.get("after"), int) or isinstance(args["after"], bool):
        return None
    since = args.get("since")
    if isinstance(since, int | float) and not isinstance(since, bool) and math.isfinite(since) and since >= 0:
        return args["after"], datetime.fromtimestamp(min(since, 2**42) / 1000, UTC)
    return args["after"], None
