"""Incoming webhooks (found by the hash of their secret) and bots' outgoing webhooks with their calls' log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel import Session, col, delete

from chatapp.domain.models import (
    DeliveryStatus,
    HookDelivery,
    HookTarget,
    IncomingWebhook,
    OutgoingHook,
    ParticipantKind,
)
from chatapp.store.repositories.rows import (
    ACTIVE,
    aware,
    insert_new,
    participant_from_row,
    saved_id,
    user_from_row,
)
from chatapp.store.tables import HookDeliveryRow, IncomingWebhookRow, OutgoingHookRow, ParticipantRow, UserRow


def _webhook_from_row(row: IncomingWebhookRow) -> IncomingWebhook:
    return IncomingWebhook(
        id=saved_id(row.id),
        room_id=row.room_id,
        participant_id=row.participant_id,
        name=row.name,
        created_by=row.created_by,
        created_at=aware(row.created_at),
        last_used_at=aware(row.last_used_at) if row.last_used_at else None,
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
    )


class SqlIncomingWebhooks:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self, *, room_id: int, participant_id: int, name: str, token_hash: str, created_by: int, now: datetime
    ) -> IncomingWebhook:
        row = IncomingWebhookRow(
            room_id=room_id,
            participant_id=participant_id,
            name=name,
            token_hash=token_hash,
            created_by=created_by,
            created_at=now,
        )
        insert_new(self.s, row, "incoming_webhooks.token_hash")
        return _webhook_from_row(row)

    def get(self, webhook_id: int) -> IncomingWebhook | None:
        row = self.s.get(IncomingWebhookRow, webhook_id)
        return _webhook_from_row(row) if row else None

    def by_hash(self, token_hash: str) -> IncomingWebhook | None:
        stmt = select(IncomingWebhookRow).where(col(IncomingWebhookRow.token_hash) == token_hash)
        row = self.s.execute(stmt).scalars().first()
        return _webhook_from_row(row) if row else None

    def for_room(self, room_id: int) -> list[IncomingWebhook]:
        stmt = (
            select(IncomingWebhookRow)
            .where(col(IncomingWebhookRow.room_id) == room_id)
            .order_by(col(IncomingWebhookRow.id).desc())
        )
        return [_webhook_from_row(row) for row in self.s.execute(stmt).scalars()]

    def count_active(self, room_id: int) -> int:
        stmt = select(func.count()).where(
            col(IncomingWebhookRow.room_id) == room_id, col(IncomingWebhookRow.revoked_at).is_(None)
        )
        return int(self.s.execute(stmt).scalar_one())

    def revoke(self, webhook_id: int, now: datetime) -> None:
        live = col(IncomingWebhookRow.id) == webhook_id, col(IncomingWebhookRow.revoked_at).is_(None)
        self.s.execute(update(IncomingWebhookRow).where(*live).values(revoked_at=now))

    def touch(self, webhook_id: int, now: datetime) -> None:
        self.s.execute(
            update(IncomingWebhookRow).where(col(IncomingWebhookRow.id) == webhook_id).values(last_used_at=now)
        )


def _hook_from_row(row: OutgoingHookRow) -> OutgoingHook:
    return OutgoingHook(bot_id=row.bot_id, url=row.url, secret=row.secret, created_at=aware(row.created_at))


def _delivery_from_row(row: HookDeliveryRow) -> HookDelivery:
    return HookDelivery(
        id=saved_id(row.id),
        bot_id=row.bot_id,
        event_id=row.event_id,
        room_id=row.room_id,
        message_id=row.message_id,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        created_at=aware(row.created_at),
        http_status=row.http_status,
        error=row.error,
        finished_at=aware(row.finished_at) if row.finished_at else None,
        reply_message_id=row.reply_message_id,
    )


class SqlOutgoingHooks:
    def __init__(self, session: Session) -> None:
        self.s = session

    def put(self, hook: OutgoingHook) -> None:
        row = self.s.get(OutgoingHookRow, hook.bot_id)
        if row is None:
            row = OutgoingHookRow(bot_id=hook.bot_id, url=hook.url, secret=hook.secret, created_at=hook.created_at)
        row.url, row.secret, row.created_at = hook.url, hook.secret, hook.created_at
        self.s.add(row)
        self.s.flush()

    def get(self, bot_id: int) -> OutgoingHook | None:
        row = self.s.get(OutgoingHookRow, bot_id)
        return _hook_from_row(row) if row else None

    def delete(self, bot_id: int) -> bool:
        result = self.s.execute(delete(OutgoingHookRow).where(col(OutgoingHookRow.bot_id) == bot_id))
        return bool(getattr(result, "rowcount", 0))

    def targets_in(self, room_id: int) -> list[HookTarget]:
        stmt = (
            select(ParticipantRow, UserRow, OutgoingHookRow)
            .join(UserRow, col(UserRow.id) == col(ParticipantRow.user_id))
            .join(OutgoingHookRow, col(OutgoingHookRow.bot_id) == col(UserRow.id))
            .where(
                col(ParticipantRow.room_id) == room_id,
                col(ParticipantRow.kind) == ParticipantKind.BOT.value,
                ACTIVE,
            )
            .order_by(col(ParticipantRow.id))
        )
        return [
            HookTarget(participant=participant_from_row(p), bot=user_from_row(u), hook=_hook_from_row(h))
            for p, u, h in self.s.execute(stmt)
        ]

    def add_delivery(self, delivery: HookDelivery) -> HookDelivery:
        row = HookDeliveryRow(
            bot_id=delivery.bot_id,
            event_id=delivery.event_id,
            room_id=delivery.room_id,
            message_id=delivery.message_id,
            status=delivery.status.value,
            attempts=delivery.attempts,
            error=delivery.error,
            created_at=delivery.created_at,
        )
        insert_new(self.s, row, "hook_deliveries.event_id")
        return _delivery_from_row(row)

    def finish_delivery(self, delivery: HookDelivery) -> None:
        self.s.execute(
            update(HookDeliveryRow)
            .where(col(HookDeliveryRow.id) == delivery.id)
            .values(
                status=delivery.status.value,
                attempts=delivery.attempts,
                http_status=delivery.http_status,
                error=delivery.error,
                finished_at=delivery.finished_at,
                reply_message_id=delivery.reply_message_id,
            )
        )

    def deliveries(self, bot_id: int, limit: int) -> list[HookDelivery]:
        stmt = (
            select(HookDeliveryRow)
            .where(col(HookDeliveryRow.bot_id) == bot_id)
            .order_by(col(HookDeliveryRow.id).desc())
            .limit(limit)
        )
        return [_delivery_from_row(row) for row in self.s.execute(stmt).scalars()]

    def prune_deliveries(self, bot_id: int, keep: int) -> None:
        newest = (
            select(col(HookDeliveryRow.id))
            .where(col(HookDeliveryRow.bot_id) == bot_id)
            .order_by(col(HookDeliveryRow.id).desc())
            .offset(keep)
            .limit(1)
        )
        cutoff = self.s.execute(newest).scalar_one_or_none()
        if cutoff is not None:
            self.s.execute(
                delete(HookDeliveryRow).where(col(HookDeliveryRow.bot_id) == bot_id, col(HookDeliveryRow.id) <= cutoff)
            )
