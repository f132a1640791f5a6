"""The room's AI settings (mode, instruction, model) and its usage: seen by the room, checked here; the owner
changes them with the room's other settings (room_settings.py)."""

from __future__ import annotations

from typing import Any

from chatapp.domain.access import require_member, require_owner
from chatapp.domain.ai_models import ModelUsage, RoomAiSettings, RoomAiView
from chatapp.domain.errors import ValidationError
from chatapp.domain.models import Actor, AiMode, Role, Scope
from chatapp.domain.ports import PubSub, Transactor, UnitOfWork
from chatapp.domain.validation import clean_text


class AiSettings:
    """Owners choose how their room's AI behaves; the choices are limited to what the server offers."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        models: tuple[str, ...],
        default_model: str,
        max_instruction_chars: int,
    ) -> None:
        self._tx = tx
        self._pubsub = pubsub
        self.models = models
        self.default_model = default_model
        self.max_instruction_chars = max_instruction_chars

    def model_for(self, settings: RoomAiSettings) -> str:
        """The model a room's replies use: its choice while the server still offers it, else the default."""
        if settings.model and settings.model in self.models:
            return settings.model
        return self.default_model

    async def get_ai_settings(self, actor: Actor, room_id: int) -> RoomAiView:
        """The room's AI settings and the choices, for anyone in the room (owners may edit them)."""

        def work(uow: UnitOfWork) -> RoomAiView:
            me = require_member(uow, actor, room_id, scope=Scope.READ, to="see its settings").member
            return RoomAiView(
                settings=uow.rooms.ai_settings(room_id),
                models=self.models,
                default_model=self.default_model,
                can_edit=me.role is Role.OWNER,
                max_instruction_chars=self.max_instruction_chars,
            )

        return await self._tx.run(work)

    async def list_ai_usage(self, actor: Actor, room_id: int) -> list[ModelUsage]:
        """Tokens (and cost, where the model's prices are known) the room's AI used, per model; owners only."""

        def work(uow: UnitOfWork) -> list[ModelUsage]:
            require_owner(uow, actor, room_id)
            return uow.ai_usage.for_room(room_id)

        return await self._tx.run(work)

    def validate_settings(
        self, *, mode: str | None = None, instruction: str | None = None, model: str | None = None
    ) -> dict[str, Any]:
        """The given AI settings as they are saved, by RoomAiSettings field (one left out or None is not
        in it; a model of "" is the server's default, saved as None); a ValidationError names each one
        that is not acceptable."""
        cleaned: dict[str, Any] = {}
        errors: dict[str, str] = {}
        if mode is not None:
            try:
                cleaned["mode"] = AiMode(mode)
            except ValueError:
                errors["mode"] = "Choose off, on mention or every message."
        if instruction is not None:
            cleaned["instruction"] = text = clean_text(instruction)
            if len(text) > self.max_instruction_chars:
                errors["instruction"] = (
                    f"The instruction is {len(text)} characters long; the limit is {self.max_instruction_chars}."
                )
        if model is not None:
            cleaned["model"] = chosen = model.strip() or None
            if chosen is not None and chosen not in self.models:
                errors["model"] = "Choose one of the models this server offers."
        if errors:
            raise ValidationError(errors)
        return cleaned
