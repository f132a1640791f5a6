"""The message composer: the draft and the outbox stay in the browser until the server confirms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nicegui import ui

PLACEHOLDER = "Write a message… (Enter to send, Shift+Enter for a new line)"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message as the browser sent it: its text and the id the tab gave it (None from old pages)."""

    text: str
    client_message_id: str | None = None

    @classmethod
    def from_event(cls, args: object) -> Outgoing | None:
        """The "send" event's arguments ({"cid", "text"}, or the bare text), or None if malformed."""
        if isinstance(args, str):
            return cls(args)
        if isinstance(args, dict) and isinstance(args.get("text"), str):
            cid = args.get("cid")
            return cls(args["text"], cid if isinstance(cid, str) else None)
        return None


class Composer(ui.element, component="composer.js"):
    """A labelled textarea ("Message") and a "Send" button; `on_send` gets each Outgoing, in order.

    The browser sends the text with the event, so what is sent is exactly what the person saw, and
    a quick "type, Enter, type, Enter" keeps every message. The browser keeps each message in its
    outbox until `confirm`; `retry` and `reject` say why it is not saved yet, or will not be. The
    server mirrors what it told the browser (`error`, `returned_draft`, `unconfirmed`) so NiceGUI's
    simulated user can see it too.
    """

    def __init__(self, *, max_chars: int, storage_key: str, on_send: Callable[[Outgoing], None]) -> None:
        super().__init__()
        self._props["max-chars"] = max_chars
        self._props["placeholder"] = PLACEHOLDER
        self._props["storage-key"] = storage_key  # where the browser keeps this room's draft and outbox
        self.error = ""
        self.returned_draft = ""
        self.unconfirmed: dict[str, str] = {}  # client message id -> text, received but not confirmed yet
        self.retrying: dict[str, str] = {}  # client message id -> why the browser is to send it again

        def received(args: object) -> None:
            outgoing = Outgoing.from_event(args)
            if outgoing is not None:
                if outgoing.client_message_id:
                    self.unconfirmed[outgoing.client_message_id] = outgoing.text
                on_send(outgoing)

        self.on("send", lambda e: received(e.args))

    def accepted(self) -> None:
        """The last send passed the first checks: clear the server's mirror of errors."""
        self.error = self.returned_draft = ""

    def confirm(self, outgoing: Outgoing) -> None:
        """The message is saved: the browser drops it from its outbox."""
        if outgoing.client_message_id:
            self._settled(outgoing.client_message_id)
            self.run_method("confirm", outgoing.client_message_id)

    def retry(self, outgoing: Outgoing, note: str, *, after_s: float) -> None:
        """Not saved now but worth trying again (too fast, the database away): the browser says so and
        sends it again after `after_s`. A page without an outbox gets the text back instead."""
        if not outgoing.client_message_id:
            self.reject(outgoing, note)
            return
        self.retrying[outgoing.client_message_id] = note
        self.run_method("retry", outgoing.client_message_id, note, after_s)

    def reject(self, outgoing: Outgoing, message: str) -> None:
        """The message will not be saved: its text goes back in the box, above anything typed since,
        with the reason."""
        self.error, self.returned_draft = message, outgoing.text
        if outgoing.client_message_id:
            self._settled(outgoing.client_message_id)
            self.run_method("reject", outgoing.client_message_id, message, outgoing.text)
        else:
            self.run_method("showError", message, outgoing.text)

    def _settled(self, client_message_id: str) -> None:
        self.unconfirmed.pop(client_message_id, None)
        self.retrying.pop(client_message_id, None)

    def _displayed_contents(self, *, only_visible: bool) -> list:
        retrying = [f"Not sent, retrying: {note}" for note in self.retrying.values()]
        return ["Message", "Send", *retrying, *([self.error] if self.error else [])]
