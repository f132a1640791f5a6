"""Errors the domain raises; the UI and API turn them into clear messages."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: carries a message that is safe to show to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DomainError):
    """Input was rejected; `fields` maps a field name to what is wrong with it."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(fields.values()))
        self.fields = fields


class InvalidCredentials(DomainError):
    """Username or password is wrong (one message for both, on purpose)."""

    def __init__(self) -> None:
        super().__init__("Invalid username or password.")


class NotAuthenticated(DomainError):
    """The session is missing, expired or revoked."""

    def __init__(self) -> None:
        super().__init__("Please sign in.")


class NotFound(DomainError):
    """The thing does not exist, or the actor may not know that it does."""

    def __init__(self, what: str = "Not found") -> None:
        super().__init__(what)


class Forbidden(DomainError):
    """The actor can see the thing but may not do this to it."""


class MissingScope(Forbidden):
    """The actor's token lacks the scope the operation needs (a browser session never does)."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"This token lacks the {scope!r} scope.")
        self.scope = scope


class Conflict(DomainError):
    """The change clashes with existing data (a taken username, say)."""


class AlreadyExists(Exception):
    """A repository's write met a row with the same unique key (two requests racing). Not a DomainError:
    it has no words for people; the domain operation that may meet it says what it means."""


class LlmError(DomainError):
    """A model call failed. `kind` says how (for the room's notice and for retries); the message never
    carries secrets or provider internals."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        # "not_configured", "refused", "rate_limited", "unavailable", "timeout", "dropped", "too_long", "declined"
        self.kind = kind


def not_a_member(to: str | None = None) -> Forbidden:
    """The refusal of an operation that needs the actor in the room, asked by someone who only views it:
    "Join the room to <to>." (or "Join the room first.")."""
    return Forbidden(f"Join the room to {to}." if to else "Join the room first.")


def no_model_configured() -> LlmError:
    """The error of a reply asked for while the server has no AI model."""
    return LlmError(
        "not_configured", "No AI model is configured: the server admin sets CHATAPP_AI_MODEL (see the README)."
    )
