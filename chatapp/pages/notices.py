"""The one place a domain refusal becomes a notice for the acting tab."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from nicegui import Client, ui

from chatapp.domain.errors import DomainError


class Refusal:
    """What `refusals_noticed` caught: true when the domain refused (`error` says why)."""

    def __init__(self) -> None:
        self.error: DomainError | None = None

    def __bool__(self) -> bool:
        return self.error is not None


def show_refusal(error: DomainError, client: Client | None = None) -> None:
    """Tell the acting tab why (in `client`'s context when called from outside its page's handlers)."""
    with client if client is not None else contextlib.nullcontext():
        ui.notify(error.message, type="warning")


@contextlib.contextmanager
def refusals_noticed(client: Client | None = None) -> Iterator[Refusal]:
    """Run the block; a DomainError it raises is shown as a notice and recorded in the Refusal yielded
    (anything else propagates). Use: `with refusals_noticed() as refused: ...`, then `if refused: return`."""
    refusal = Refusal()
    try:
        yield refusal
    except DomainError as error:
        refusal.error = error
        show_refusal(error, client)
