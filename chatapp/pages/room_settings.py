"""The room's settings dialog (owners): its name and topic, when and how the AI answers, its model,
who may invite, and what the AI has used."""

from __future__ import annotations

from nicegui import ui
from nicegui.elements.mixins.disableable_element import DisableableElement

from chatapp.domain.errors import DomainError, ValidationError
from chatapp.domain.models import ModelUsage, Room, RoomAiView
from chatapp.domain.room_settings import RoomSettingsChanges
from chatapp.domain.services import Services
from chatapp.pages.notices import refusals_noticed, show_refusal
from chatapp.pages.session import TabSession

MODE_LABELS = {"off": "Off: the AI never answers", "mention": "When mentioned as @ai", "every": "After every message"}
SERVER_DEFAULT = ""


async def open_room_settings(services: Services, tab: TabSession, room_id: int) -> None:
    """Read the room's AI settings and usage fresh, then show them in a dialog (editable by owners)."""
    with refusals_noticed() as refused:
        actor = await tab.current()
        view = await services.ai_settings.view(actor, room_id)
        usage = await services.ai_settings.usage(actor, room_id) if view.can_edit else []
        room = (await services.rooms.access(actor, room_id)).room
    if refused:
        return
    with ui.dialog() as dialog, ui.card().classes("room-settings"):
        ui.label("Room settings").classes("text-lg font-semibold").props('role="heading" aria-level="2"')
        _room_form(services, tab, room, view, dialog)
        if view.can_edit:
            _usage_table(usage)
            _delete_form(services, tab, room)
    dialog.on("hide", dialog.delete)
    dialog.open()


def _model_options(view: RoomAiView) -> dict[str, str]:
    default = view.default_model or "none configured"
    return {SERVER_DEFAULT: f"Server default ({default})", **{model: model for model in view.models}}


def _room_form(services: Services, tab: TabSession, room: Room, view: RoomAiView, dialog: ui.dialog) -> None:
    room_id = room.id
    settings = view.settings
    limits = services.rooms.limits
    name = ui.input("Room name", value=room.name).classes("w-full").props(f"counter maxlength={limits.max_name_chars}")
    topic = ui.textarea("Topic", value=room.topic).classes("w-full")
    topic.props(f"counter maxlength={limits.max_topic_chars} autogrow")
    mode = ui.select(MODE_LABELS, value=settings.mode.value, label="When the AI answers").classes("w-full")
    instruction = ui.textarea(
        "Instructions for the AI (persona, tone, what to focus on)",
        value=settings.instruction,
    ).classes("w-full")
    instruction.props(f"counter maxlength={view.max_instruction_chars} autogrow")
    model = ui.select(_model_options(view), value=settings.model or SERVER_DEFAULT, label="Model").classes("w-full")
    if not view.models:
        ui.label("This server has no AI model configured (CHATAPP_AI_MODEL).").classes("text-sm opacity-70")
    guests_ai = ui.switch("Guests may ask the AI", value=room.guests_can_use_ai)
    members_invite = ui.switch("Members may create invite links", value=room.members_can_invite)
    guests_to_members = ui.switch(
        "Guests who create an account become members", value=room.signed_up_guests_become_members
    )
    fields = {"name": name, "topic": topic, "mode": mode, "instruction": instruction, "model": model}
    editable: list[DisableableElement] = [name, topic, mode, instruction, model, guests_ai, members_invite]
    for element in [*editable, guests_to_members]:
        element.set_enabled(view.can_edit)

    async def save() -> None:
        for element in fields.values():
            element.props["error"] = False
            element.update()
        try:
            actor = await tab.current()
            changes = RoomSettingsChanges(
                name=name.value or "",
                topic=topic.value or "",
                mode=mode.value,
                instruction=instruction.value or "",
                model=model.value or SERVER_DEFAULT,
                members_can_invite=members_invite.value,
                guests_can_use_ai=guests_ai.value,
                signed_up_guests_become_members=guests_to_members.value,
            )
            await services.room_settings.update_room_settings(actor, room_id, changes)
        except ValidationError as exc:
            for field_name, message in exc.fields.items():
                if field_name in fields:
                    fields[field_name].props.update({"error": True, "error-message": message})
                    fields[field_name].update()
            ui.notify(exc.message, type="warning")
            return
        except DomainError as exc:
            show_refusal(exc)
            return
        ui.notify("Settings saved.", type="positive")
        dialog.close()

    with ui.row().classes("w-full justify-end gap-2"):
        ui.button("Close", on_click=dialog.close).props("flat no-caps")
        if view.can_edit:
            ui.button("Save settings", on_click=save).props("unelevated no-caps")


def _usage_table(usage: list[ModelUsage]) -> None:
    ui.label("AI usage in this room").classes("text-base font-semibold mt-2").props('role="heading" aria-level="3"')
    if not usage:
        ui.label("The AI has not answered here yet.").classes("text-sm opacity-70")
        return
    columns = [
        {"name": "model", "label": "Model", "field": "model", "align": "left"},
        {"name": "replies", "label": "Replies", "field": "replies"},
        {"name": "prompt", "label": "Prompt tokens", "field": "prompt"},
        {"name": "completion", "label": "Reply tokens", "field": "completion"},
        {"name": "cost", "label": "Cost (USD)", "field": "cost"},
    ]
    rows = [
        {
            "model": u.model,
            "replies": u.replies,
            "prompt": f"{u.prompt_tokens:,}",
            "completion": f"{u.completion_tokens:,}",
            "cost": f"${u.cost_usd:.4f}" if u.cost_usd is not None else "unknown",
        }
        for u in usage
    ]
    ui.table(columns=columns, rows=rows, row_key="model").props("flat dense").classes("w-full")
    ui.label("Cost uses litellm's price list; it is unknown for models without a listed price.").classes(
        "text-xs opacity-70"
    )


def _delete_form(services: Services, tab: TabSession, room: Room) -> None:
    """Delete the room for good: the owner types its name first."""
    with ui.column().classes("w-full gap-1 mt-4 room-delete"):
        ui.label("Delete this room").classes("text-base font-semibold").props('role="heading" aria-level="3"')
        ui.label("Its messages, people and invite links are deleted for good; everyone in it is sent out.").classes(
            "text-sm opacity-80"
        )
        confirm = ui.input("Type the room's name to delete it").classes("w-full")

        async def delete() -> None:
            confirm.props["error"] = False
            try:
                await services.rooms.delete_room(await tab.current(), room.id, confirm_name=confirm.value or "")
            except ValidationError as exc:
                confirm.props.update({"error": True, "error-message": exc.fields.get("confirm_name", exc.message)})
                confirm.update()
                return
            except DomainError as exc:
                show_refusal(exc)
                return
            ui.navigate.to("/?left=deleted")

        ui.button("Delete room forever", icon="delete_forever", on_click=delete).props("outline no-caps color=negative")
