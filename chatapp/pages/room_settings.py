"""The room's settings dialog (owners): its name and topic, when and how the AI answers, its model,
who may invite, and what the AI has used."""

from __future__ import annotations

from nicegui import ui
from nicegui.elements.mixins.disableable_element import DisableableElement

from chatapp.domain.ai_models import ModelUsage, RoomAiView
from chatapp.domain.errors import DomainError, ValidationError
from chatapp.domain.models import Room
from chatapp.domain.room_settings import RoomSettingsChanges
from chatapp.domain.services import Services
from chatapp.pages.notices import refusals_noticed, show_refusal
from chatapp.pages.room_invites import site_url
from chatapp.pages.room_webhooks import RoomWebhooks
from chatapp.pages.session import TabSession

MODE_LABELS = {"off": "Off: the AI never answers", "mention": "When mentioned as @ai", "every": "After every message"}
SERVER_DEFAULT = ""


async def open_room_settings(services: Services, tab: TabSession, room_id: int) -> None:
    """Read the room's AI settings and usage fresh, then show them in a dialog (editable by owners)."""
    with refusals_noticed() as refused:
        actor = await tab.current()
        view = await services.ai_settings.get_ai_settings(actor, room_id)
        usage = await services.ai_settings.list_ai_usage(actor, room_id) if view.can_edit else []
        room = (await services.rooms.get_room_access(actor, room_id)).room
    if refused:
        return
    with ui.dialog() as dialog, ui.card().classes("room-settings"):
        ui.label("Room settings").classes("text-lg font-semibold").props('role="heading" aria-level="2"')
        _room_form(services, tab, room, view, dialog)
        if view.can_edit:
            _usage_table(usage)
            await RoomWebhooks(services, tab, room_id, site_url()).refresh()
            _delete_form(services, tab, room)
    dialog.on("hide", dialog.delete)
    dialog.open()


def _model_options(view: RoomAiView) -> dict[str, str]:
    default = view.default_model or "none configured"
    return {SERVER_DEFAULT: f"Server default ({default})", **{model: model for model in view.models}}


def _room_form(services: Services, tab: TabSession, room: Room, view: RoomAiView, dialog: ui.dialog) -> None:
    form = _RoomForm(services, tab, room, view, dialog)
    with ui.row().classes("w-full justify-end gap-2"):
        ui.button("Close", on_click=dialog.close).props("flat no-caps")
        if view.can_edit:
            ui.button("Save settings", on_click=form.save).props("unelevated no-caps")


class _RoomForm:
    """The settings form's elements (read-only unless the viewer may edit); save() sends them all."""

    def __init__(self, services: Services, tab: TabSession, room: Room, view: RoomAiView, dialog: ui.dialog) -> None:
        self._services, self._tab, self._room_id, self._dialog = services, tab, room.id, dialog
        settings = view.settings
        limits = services.rooms.limits
        self.name = ui.input("Room name", value=room.name).classes("w-full")
        self.name.props(f"counter maxlength={limits.max_name_chars}")
        self.topic = ui.textarea("Topic", value=room.topic).classes("w-full")
        self.topic.props(f"counter maxlength={limits.max_topic_chars} autogrow")
        self.mode = ui.select(MODE_LABELS, value=settings.mode.value, label="When the AI answers").classes("w-full")
        self.instruction = ui.textarea(
            "Instructions for the AI (persona, tone, what to focus on)",
            value=settings.instruction,
        ).classes("w-full")
        self.instruction.props(f"counter maxlength={view.max_instruction_chars} autogrow")
        model_options = _model_options(view)
        self.model = ui.select(model_options, value=settings.model or SERVER_DEFAULT, label="Model").classes("w-full")
        if not view.models:
            ui.label("This server has no AI model configured (CHATAPP_AI_MODEL).").classes("text-sm opacity-70")
        self.guests_ai = ui.switch("Guests may ask the AI", value=room.guests_can_use_ai)
        self.members_invite = ui.switch("Members may create invite links", value=room.members_can_invite)
        self.guests_to_members = ui.switch(
            "Guests who create an account become members", value=room.signed_up_guests_become_members
        )
        # the fields a ValidationError names, by their names in RoomSettingsChanges
        self._fields: dict[str, DisableableElement] = {
            "name": self.name,
            "topic": self.topic,
            "mode": self.mode,
            "instruction": self.instruction,
            "model": self.model,
        }
        for element in self._elements():
            element.set_enabled(view.can_edit)

    def _elements(self) -> list[DisableableElement]:
        return [*self._fields.values(), self.guests_ai, self.members_invite, self.guests_to_members]

    def _changes(self) -> RoomSettingsChanges:
        return RoomSettingsChanges(
            name=self.name.value or "",
            topic=self.topic.value or "",
            mode=self.mode.value,
            instruction=self.instruction.value or "",
            model=self.model.value or SERVER_DEFAULT,
            members_can_invite=self.members_invite.value,
            guests_can_use_ai=self.guests_ai.value,
            signed_up_guests_become_members=self.guests_to_members.value,
        )

    async def save(self) -> None:
        """Send every field; on a refusal mark the fields it names and keep the dialog open."""
        for element in self._fields.values():
            element.props["error"] = False
            element.update()
        try:
            actor = await self._tab.current()
            await self._services.room_settings.update_room_settings(actor, self._room_id, self._changes())
        except ValidationError as exc:
            self._mark_refused(exc)
            ui.notify(exc.message, type="warning")
            return
        except DomainError as exc:
            show_refusal(exc)
            return
        ui.notify("Settings saved.", type="positive")
        self._dialog.close()

    def _mark_refused(self, exc: ValidationError) -> None:
        for field_name, message in exc.fields.items():
            if field_name in self._fields:
                self._fields[field_name].props.update({"error": True, "error-message": message})
                self._fields[field_name].update()


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
