"""The room's AI settings (mode, instruction, model) and its usage: seen by the room, changed by its owner."""

from __future__ import annotations

from chatapp.domain.errors import Forbidden, ValidationError
from chatapp.domain.events import RoomSettingsChanged, room_topic
from chatapp.domain.models import Actor, AiMode, ModelUsage, Role, RoomAiSettings, RoomAiView
from chatapp.domain.ports import PubSub, Transactor, UnitOfWork
from chatapp.domain.rooms import require_owner, room_access
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

    async def view(self, actor: Actor, room_id: int) -> RoomAiView:
        """The room's AI settings and the choices, for anyone in the room (owners may edit them)."""

        def work(uow: UnitOfWork) -> RoomAiView:
            me = room_access(uow, actor, room_id).me
            if me is None:
                raise Forbidden("Join the room to see its settings.")
            return RoomAiView(
                settings=uow.rooms.ai_settings(room_id),
                models=self.models,
                default_model=self.default_model,
                can_edit=me.role is Role.OWNER,
                max_instruction_chars=self.max_instruction_chars,
            )

        return await self._tx.run(work)

    async def update(
        self, actor: Actor, room_id: int, *, mode: str, instruction: str, model: str | None
    ) -> RoomAiSettings:
        """Change the room's AI mode, instruction and model; only the room's owner may."""
        wanted = self._validate(mode, instruction, model)

        def work(uow: UnitOfWork) -> RoomAiSettings:
            require_owner(uow, actor, room_id)
            uow.rooms.set_ai_settings(room_id, wanted)
            return wanted

        saved = await self._tx.run(work, write=True)
        await self._pubsub.publish(room_topic(room_id), RoomSettingsChanged(room_id=room_id))
        return saved

    async def usage(self, actor: Actor, room_id: int) -> list[ModelUsage]:
        """Tokens (and cost, where the model's prices are known) the room's AI used, per model; owners only."""

        def work(uow: UnitOfWork) -> list[ModelUsage]:
            require_owner(uow, actor, room_id)
            return uow.ai_usage.for_room(room_id)

        return await self._tx.run(work)

    def _validate(self, mode: str, instruction: str, model: str | None) -> RoomAiSettings:
        errors: dict[str, str] = {}
        try:
            ai_mode = AiMode(mode)
        except ValueError:
            ai_mode = AiMode.MENTION
            errors["mode"] = "Choose off, on mention or every message."
        text = clean_text(instruction or "")
        if len(text) > self.max_instruction_chars:
            errors["instruction"] = (
                f"The instruction is {len(text)} characters long; the limit is {self.max_instruction_chars}."
            )
        chosen = (model or "").strip() or None
        if chosen is not None and chosen not in self.models:
            errors["model"] = "Choose one of the models this server offers."
        if errors:
            raise ValidationError(errors)
        return RoomAiSettings(mode=ai_mode, instruction=text, model=chosen)
