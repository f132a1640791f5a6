"""REST: who I am, and rooms (list, get, create, update, delete, join, leave)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from chatapp.api.auth import current_actor, services_of
from chatapp.api.schemas import MeOut, RoomCreate, RoomOut, RoomsOut, RoomUpdate
from chatapp.domain.models import Actor, Role
from chatapp.domain.room_settings import RoomSettingsChanges

router = APIRouter()
Caller = Annotated[Actor, Depends(current_actor)]


@router.get("/me", tags=["me"], summary="Who the token acts for")
async def get_me(actor: Caller) -> MeOut:
    return MeOut.of(actor)


@router.get("/rooms", tags=["rooms"], summary="Rooms I am in, and public rooms I could join")
async def list_rooms(request: Request, actor: Caller) -> RoomsOut:
    lobby = await services_of(request).rooms.list_rooms(actor)
    return RoomsOut(
        rooms=[RoomOut.of_summary(summary) for summary in lobby.my_rooms],
        public_rooms=[RoomOut.of(room, None) for room in lobby.public_rooms],
    )


@router.post("/rooms", tags=["rooms"], status_code=201, summary="Create a room (I am its owner)")
async def create_room(request: Request, actor: Caller, body: RoomCreate) -> RoomOut:
    room = await services_of(request).rooms.create_room(actor, name=body.name, topic=body.topic, private=body.private)
    return RoomOut.of(room, Role.OWNER.value)


@router.get("/rooms/{room_id}", tags=["rooms"], summary="A room I can see")
async def get_room(request: Request, actor: Caller, room_id: int) -> RoomOut:
    return RoomOut.of_access(await services_of(request).rooms.get_room_access(actor, room_id))


@router.patch("/rooms/{room_id}", tags=["rooms"], summary="Change a room's settings (owners)")
async def update_room(request: Request, actor: Caller, room_id: int, body: RoomUpdate) -> RoomOut:
    changes = RoomSettingsChanges(
        name=body.name,
        topic=body.topic,
        mode=body.ai_mode,
        instruction=body.ai_instruction,
        model=body.ai_model,
        members_can_invite=body.members_can_invite,
        guests_can_use_ai=body.guests_can_use_ai,
        signed_up_guests_become_members=body.signed_up_guests_become_members,
    )
    room = await services_of(request).room_settings.update_room_settings(actor, room_id, changes)
    return RoomOut.of(room, Role.OWNER.value)


@router.delete("/rooms/{room_id}", tags=["rooms"], status_code=204, summary="Delete a room for good (owners)")
async def delete_room(
    request: Request, actor: Caller, room_id: int, confirm_name: Annotated[str, Query(description="The room's name")]
) -> Response:
    await services_of(request).rooms.delete_room(actor, room_id, confirm_name=confirm_name)
    return Response(status_code=204)


@router.post("/rooms/{room_id}/join", tags=["rooms"], summary="Join a public room")
async def join_room(request: Request, actor: Caller, room_id: int) -> RoomOut:
    services = services_of(request)
    await services.membership.join(actor, room_id)
    return RoomOut.of_access(await services.rooms.get_room_access(actor, room_id))


@router.post("/rooms/{room_id}/leave", tags=["rooms"], status_code=204, summary="Leave a room")
async def leave_room(request: Request, actor: Caller, room_id: int) -> Response:
    await services_of(request).membership.leave(actor, room_id)
    return Response(status_code=204)
