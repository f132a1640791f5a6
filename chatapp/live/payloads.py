"""Message payloads: what any client is sent to show a message, built once per message for every viewer
(and every transport) and cached."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime
from typing import Any

from chatapp.domain.models import Message
from chatapp.live.markdown import markdown_cost, render_markdown

Payload = dict[str, Any]


PAYLOAD_CACHE_SIZE = 8192
_payloads: OrderedDict[Message, Payload] = OrderedDict()  # built once per message, shared by all viewers
# Renders under way, by message: every request needing one awaits the same task. The task (not the
# request) fills _payloads, so a request abandoned meanwhile (NiceGUI cancels a page not built in 3 s)
# does not make the next one render again.
_rendering: dict[Message, asyncio.Task[dict[Message, Payload]]] = {}


def _build_payload(message: Message) -> Payload:
    """What a browser needs to show a message."""
    return {
        "id": message.id,
        "pid": message.participant_id,
        "author": message.author_name,
        "kind": message.author_kind.value,
        "ts": message.created_at.isoformat(),
        "html": render_markdown(message.body),
        "status": message.status.value,  # an AI reply can be "stopped" or "failed" part-way
        "edited": message.edited_at.isoformat() if message.edited_at else None,  # a regenerated reply
    }


INLINE_RENDER_MAX_CHARS = 2000  # a short message without code blocks renders in ~0.1-0.3 ms
INLINE_RENDER_MAX_COST = 1000  # markdown_cost's estimated us: at most ~1 ms on the loop


def _renders_quickly(message: Message) -> bool:
    """Short, cheap prose: rendering it on the loop costs less than a hop to a worker thread."""
    body = message.body
    return (
        len(body) <= INLINE_RENDER_MAX_CHARS
        and "```" not in body
        and "~~~" not in body
        and markdown_cost(body) <= INLINE_RENDER_MAX_COST
    )


def _remember(built: dict[Message, Payload]) -> None:
    """Cache payloads, forgetting the oldest beyond PAYLOAD_CACHE_SIZE."""
    _payloads.update(built)
    while len(_payloads) > PAYLOAD_CACHE_SIZE:
        _payloads.popitem(last=False)


def _start_rendering(messages: list[Message]) -> None:
    """Render messages in a worker thread; the result goes to the cache whoever still waits for it."""
    task = asyncio.get_running_loop().create_task(asyncio.to_thread(lambda: {m: _build_payload(m) for m in messages}))
    for message in messages:
        _rendering[message] = task

    def finished(_: asyncio.Task) -> None:  # runs before the awaiting requests resume
        for message in messages:
            if _rendering.get(message) is task:
                del _rendering[message]
        if not task.cancelled() and task.exception() is None:
            _remember(task.result())

    task.add_done_callback(finished)


async def payloads_of(messages: list[Message]) -> list[Payload]:
    """Payloads for messages, built once per message and shared by every viewer.

    A single short, cheap message (the live path) renders on the loop; anything else, such as code blocks
    (Pygments can take milliseconds) or a page of history, renders in a worker thread, once, however
    many requests ask for it meanwhile and whether or not they wait for the end.
    """
    found = {m: p for m in messages if (p := _payloads.get(m)) is not None}
    missing = [m for m in dict.fromkeys(messages) if m not in found]
    if len(missing) == 1 and missing[0] not in _rendering and _renders_quickly(missing[0]):
        found[missing[0]] = _build_payload(missing[0])
        _remember({missing[0]: found[missing[0]]})
    elif missing:
        if new := [m for m in missing if m not in _rendering]:
            _start_rendering(new)
        for task in {_rendering[m] for m in missing}:
            built = await asyncio.shield(task)
            found.update((m, built[m]) for m in missing if m in built)
    return [found[m] for m in messages]


def epoch_ms(moment: datetime) -> int:
    """A server time as the browser holds it: milliseconds since the epoch."""
    return round(moment.timestamp() * 1000)
