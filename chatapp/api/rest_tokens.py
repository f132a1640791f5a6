"""REST: my personal access tokens and my bots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from chatapp.api.auth import current_actor, services_of
from chatapp.api.schemas import BotCreate, NewTokenOut, TokenCreate, TokenOut, UserOut
from chatapp.domain.models import Actor

router = APIRouter(tags=["tokens and bots"])
Caller = Annotated[Actor, Depends(current_actor)]


@router.get("/tokens", summary="My tokens and my bots' tokens")
async def list_tokens(request: Request, actor: Caller) -> list[TokenOut]:
    return [TokenOut.of(token) for token in await services_of(request).tokens.list_tokens(actor)]


@router.post("/tokens", status_code=201, summary="Create a token (its value is shown once)")
async def create_token(request: Request, actor: Caller, body: TokenCreate) -> NewTokenOut:
    tokens = services_of(request).tokens
    new = await tokens.create_token(
        actor, name=body.name, scopes=body.scopes, expires_at=body.expires_at, bot_id=body.bot_id
    )
    return NewTokenOut(token=TokenOut.of(new.token), value=new.value)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token")
async def revoke_token(request: Request, actor: Caller, token_id: int) -> Response:
    await services_of(request).tokens.revoke_token(actor, token_id)
    return Response(status_code=204)


@router.get("/bots", summary="My bots")
async def list_bots(request: Request, actor: Caller) -> list[UserOut]:
    return [UserOut.of(bot) for bot in await services_of(request).tokens.list_bots(actor)]


@router.post("/bots", status_code=201, summary="Create a bot account")
async def create_bot(request: Request, actor: Caller, body: BotCreate) -> UserOut:
    bot = await services_of(request).tokens.create_bot(actor, username=body.username, display_name=body.display_name)
    return UserOut.of(bot)
