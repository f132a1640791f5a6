"""Who is calling the API: the personal access token of the request, as a domain Actor.

REST takes it from `Authorization: Bearer <token>` only (never a cookie: a page of another site could
make a browser send one). The room socket also takes the ways Phoenix clients send it (api/socket.py).
"""

from __future__ import annotations

from fastapi import Request

from chatapp.domain.errors import NotAuthenticated
from chatapp.domain.models import Actor
from chatapp.domain.services import Services


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def services_of(request: Request) -> Services:
    """The domain services of the API app (set on its state when it was built)."""
    return request.app.state.services


async def current_actor(request: Request) -> Actor:
    """The caller, from their bearer token; NotAuthenticated (401) when it is missing, unknown,
    revoked or expired."""
    token = bearer_token(request.headers.get("authorization"))
    actor = await services_of(request).tokens.authenticate_token(token)
    if actor is None:
        raise NotAuthenticated()
    return actor
