"""REST: a room's incoming webhooks (and the URL they post to), bots' outgoing webhooks and their calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from chatapp.api.auth import current_actor, services_of
from chatapp.api.schemas import (
    BotCallsChange,
    DeliveryOut,
    HookOut,
    HookSet,
    NewHookOut,
    NewWebhookOut,
    ParticipantOut,
    WebhookCreate,
    WebhookOut,
    WebhookPost,
    WebhookPosted,
)
from chatapp.domain.errors import NotFound
from chatapp.domain.models import Actor
from chatapp.domain.webhooks import webhook_url_path

router = APIRouter(tags=["webhooks"])
Caller = Annotated[Actor, Depends(current_actor)]


@router.get("/rooms/{room_id}/webhooks", summary="The room's incoming webhooks (owners)")
async def list_webhooks(request: Request, actor: Caller, room_id: int) -> list[WebhookOut]:
    return [WebhookOut.of(hook) for hook in await services_of(request).webhooks.list_webhooks(actor, room_id)]


@router.post("/rooms/{room_id}/webhooks", status_code=201, summary="Create an incoming webhook (owners)")
async def create_webhook(request: Request, actor: Caller, room_id: int, body: WebhookCreate) -> NewWebhookOut:
    new = await services_of(request).webhooks.create_webhook(actor, room_id, body.name)
    return NewWebhookOut(webhook=WebhookOut.of(new.webhook), url_path=webhook_url_path(new.token))


@router.delete("/rooms/{room_id}/webhooks/{webhook_id}", status_code=204, summary="Revoke an incoming webhook")
async def revoke_webhook(request: Request, actor: Caller, room_id: int, webhook_id: int) -> Response:
    await services_of(request).webhooks.revoke_webhook(actor, room_id, webhook_id)
    return Response(status_code=204)


@router.post(
    "/hooks/{token}",
    status_code=201,
    summary="Post through an incoming webhook (no token: its URL is the secret)",
)
async def post_via_webhook(request: Request, token: str, body: WebhookPost) -> WebhookPosted:
    message = await services_of(request).webhooks.post_via_webhook(token, body.text, body.username)
    return WebhookPosted(message_id=message.id)


@router.patch("/rooms/{room_id}/bots/{participant_id}", tags=["participants"], summary="Which messages call a bot")
async def set_bot_calls(
    request: Request, actor: Caller, room_id: int, participant_id: int, body: BotCallsChange
) -> ParticipantOut:
    bot_hooks = services_of(request).bot_hooks
    return ParticipantOut.of(await bot_hooks.set_bot_calls(actor, room_id, participant_id, body.calls))


@router.put("/bots/{bot_id}/hook", summary="Set my bot's outgoing webhook (a new secret, shown once)")
async def set_hook(request: Request, actor: Caller, bot_id: int, body: HookSet) -> NewHookOut:
    hook = await services_of(request).bot_hooks.set_hook(actor, bot_id, body.url)
    return NewHookOut(bot_id=hook.bot_id, url=hook.url, created_at=hook.created_at, secret=hook.secret)


@router.get("/bots/{bot_id}/hook", summary="My bot's outgoing webhook")
async def get_hook(request: Request, actor: Caller, bot_id: int) -> HookOut:
    hook = await services_of(request).bot_hooks.get_hook(actor, bot_id)
    if hook is None:
        raise NotFound("That bot has no outgoing webhook.")
    return HookOut(bot_id=hook.bot_id, url=hook.url, created_at=hook.created_at)


@router.delete("/bots/{bot_id}/hook", status_code=204, summary="Remove my bot's outgoing webhook")
async def remove_hook(request: Request, actor: Caller, bot_id: int) -> Response:
    await services_of(request).bot_hooks.remove_hook(actor, bot_id)
    return Response(status_code=204)


@router.get("/bots/{bot_id}/hook/deliveries", summary="The latest calls of my bot's outgoing webhook")
async def list_deliveries(request: Request, actor: Caller, bot_id: int, limit: int = 50) -> list[DeliveryOut]:
    deliveries = await services_of(request).bot_hooks.list_deliveries(actor, bot_id, limit)
    return [DeliveryOut.of(delivery) for delivery in deliveries]
