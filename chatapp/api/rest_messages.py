"""REST: a room's messages (keyset pages, post, edit, delete) and its AI (ask, stop, regenerate)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from chatapp.api.auth import current_actor, services_of
from chatapp.api.schemas import AiReplyOut, MessageCreate, MessageEdit, MessageOut, MessagePageOut, StopOut
from chatapp.domain.models import Actor

router = APIRouter()
Caller = Annotated[Actor, Depends(current_actor)]
Position = Annotated[int | None, Query(ge=0, description="A message id")]


@router.get("/rooms/{room_id}/messages", tags=["messages"], summary="A page of messages, oldest first")
async def list_messages(
    request: Request,
    actor: Caller,
    room_id: int,
    before_id: Position = None,
    after_id: Position = None,
    limit: Annotated[int | None, Query(ge=1, description="At most the server's max page size (200)")] = None,
) -> MessagePageOut:
    """The newest page, or the page older than `before_id`, or the page newer than `after_id`."""
    chat = services_of(request).chat
    page = await chat.list_messages(actor, room_id, before_id=before_id, after_id=after_id, limit=limit)
    return MessagePageOut.of(page)


@router.post("/rooms/{room_id}/messages", tags=["messages"], status_code=201, summary="Post a message")
async def post_message(request: Request, actor: Caller, room_id: int, body: MessageCreate) -> MessageOut:
    """With a `client_message_id`, a retry gets the same answer, the first message, and nothing is saved
    or sent to the room again (as Stripe's idempotency keys: the same response for the same request)."""
    chat = services_of(request).chat
    return MessageOut.of(await chat.post_message(actor, room_id, body.body, client_message_id=body.client_message_id))


@router.patch("/rooms/{room_id}/messages/{message_id}", tags=["messages"], summary="Edit my message")
async def update_message(
    request: Request, actor: Caller, room_id: int, message_id: int, body: MessageEdit
) -> MessageOut:
    return MessageOut.of(await services_of(request).chat.update_message(actor, room_id, message_id, body.body))


@router.delete("/rooms/{room_id}/messages/{message_id}", tags=["messages"], status_code=204, summary="Delete a message")
async def delete_message(request: Request, actor: Caller, room_id: int, message_id: int) -> Response:
    """Mine; owners and moderators (with the admin scope) delete anyone's."""
    await services_of(request).chat.delete_message(actor, room_id, message_id)
    return Response(status_code=204)


@router.post("/rooms/{room_id}/ai/reply", status_code=202, tags=["ai"], summary="Ask the AI to answer now")
async def ask_ai(request: Request, actor: Caller, room_id: int) -> AiReplyOut:
    """The reply streams to the room (the room socket's ai events); it is saved as a message when done."""
    return AiReplyOut.of(await services_of(request).ai.start_reply(actor, room_id))


@router.post("/rooms/{room_id}/ai/stop", tags=["ai"], summary="Stop the AI's running reply")
async def stop_ai(request: Request, actor: Caller, room_id: int) -> StopOut:
    return StopOut(stopped=await services_of(request).ai.stop_reply(actor, room_id))


@router.post("/rooms/{room_id}/ai/regenerate", status_code=202, tags=["ai"], summary="Answer the last reply again")
async def regenerate_ai(request: Request, actor: Caller, room_id: int) -> AiReplyOut:
    return AiReplyOut.of(await services_of(request).ai.regenerate_reply(actor, room_id))
