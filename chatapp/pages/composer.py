"""The message composer: the draft stays in the browser until it is sent (no traffic while typing)."""

from __future__ import annotations

from collections.abc import Callable

from nicegui import ui

PLACEHOLDER = "Write a message… (Enter to send, Shift+Enter for a new line)"


class Composer(ui.element, component="composer.js"):
    """A labelled textarea ("Message") and a "Send" button; `on_send` gets the text, in order.

    The browser sends the text with the event, so what is sent is exactly what the person saw, and
    a quick "type, Enter, type, Enter" keeps every message. The server mirrors what it told the
    browser (`error`, `returned_draft`) so NiceGUI's simulated user can see it too.
    """

    def __init__(self, *, max_chars: int, on_send: Callable[[str], None]) -> None:
        super().__init__()
        self._props["max-chars"] = max_chars
        self._props["placeholder"] = PLACEHOLDER
        self.error = ""
        self.returned_draft = ""
        self.on("send", lambda e: on_send(e.args) if isinstance(e.args, str) else None)

    def show_error(self, message: str, text: str) -> None:
        """Show why the text was not sent; the browser keeps (or gets back) the text."""
        self.error, self.returned_draft = message, text
        self.run_method("showError", message, text)

    def restore(self, text: str, message: str) -> None:
        """A sent message could not be saved: put it back in the box, above anything typed since."""
        self.error, self.returned_draft = message, text
        self.run_method("restore", text, message)

    def accepted(self) -> None:
        """The last send was taken: clear the server's mirror of errors."""
        self.error = self.returned_draft = ""

    def _displayed_contents(self, *, only_visible: bool) -> list:
        return ["Message", "Send", *([self.error] if self.error else [])]
