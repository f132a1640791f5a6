"""Small scenario helpers for domain tests (they call the real services, nothing is mocked)."""

from __future__ import annotations

from chatapp.app import Runtime
from chatapp.domain.accounts import SignUpForm
from chatapp.domain.models import Actor

PASSWORD = "correct horse battery"


async def sign_up(runtime: Runtime, username: str, display_name: str | None = None) -> tuple[Actor, str]:
    """Create an account and return its actor and session token."""
    accounts = runtime.services.accounts
    session = await accounts.sign_up(
        SignUpForm(username=username, display_name=display_name or username.title(), password=PASSWORD)
    )
    actor = await accounts.authenticate(session.token)
    assert actor is not None
    return actor, session.token
