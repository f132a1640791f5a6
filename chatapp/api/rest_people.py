"""REST: a room's participants (list, add a bot, change a role, remove) and its invite links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from chatapp.api.auth import current_actor, services_of
from chatapp.api.schemas import BotAdd, InviteCreate, InviteOut, NewInviteOut, ParticipantOut, RoleChange
from chatapp.domain.models import Actor

router = APIRouter()
Caller = Annotated[Actor, Depends(current_actor)]


@router.get("/rooms/{room_id}/participants", tags=["participants"], summary="Everyone in the room")
async def list_participants(request: Request, actor: Caller, room_id: int) -> list[ParticipantOut]:
    people = await services_of(request).membership.list_participants(actor, room_id)
    return [ParticipantOut.of(participant) for participant in people]


@router.post("/rooms/{room_id}/bots", tags=["participants"], status_code=201, summary="Add a bot (moderators)")
async def add_bot(request: Request, actor: Caller, room_id: int, body: BotAdd) -> ParticipantOut:
    return ParticipantOut.of(await services_of(request).membership.add_bot(actor, room_id, body.username))


@router.patch("/rooms/{room_id}/participants/{participant_id}", tags=["participants"], summary="Change a role")
async def update_role(
    request: Request, actor: Caller, room_id: int, participant_id: int, body: RoleChange
) -> ParticipantOut:
    membership = services_of(request).membership
    return ParticipantOut.of(await membership.update_role(actor, room_id, participant_id, body.role))


@router.delete(
    "/rooms/{room_id}/participants/{participant_id}", tags=["participants"], status_code=204, summary="Remove"
)
async def remove_participant(request: Request, actor: Caller, room_id: int, participant_id: int) -> Response:
    await services_of(request).membership.remove_participant(actor, room_id, participant_id)
    return Response(status_code=204)


@router.get("/rooms/{room_id}/invites", tags=["invites"], summary="The room's invite links")
async def list_invites(request: Request, actor: Caller, room_id: int) -> list[InviteOut]:
    return [InviteOut.of(invite) for invite in await services_of(request).invites.list_invites(actor, room_id)]


@router.post("/rooms/{room_id}/invites", tags=["invites"], status_code=201, summary="Create an invite link")
async def create_invite(request: Request, actor: Caller, room_id: int, body: InviteCreate) -> NewInviteOut:
    invites = services_of(request).invites
    new = await invites.create_invite(actor, room_id, expires_in_days=body.expires_in_days, max_uses=body.max_uses)
    return NewInviteOut(invite=InviteOut.of(new.invite), url_path=f"/join/{new.token}")


@router.delete("/rooms/{room_id}/invites/{invite_id}", tags=["invites"], status_code=204, summary="Revoke a link")
async def revoke_invite(request: Request, actor: Caller, room_id: int, invite_id: int) -> Response:
    await services_of(request).invites.revoke_invite(actor, room_id, invite_id)
    return Response(status_code=204)
