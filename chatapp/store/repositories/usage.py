"""AI usage: the tokens (and, where known, the cost) of every AI reply, summed per room and model."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, func, select
from sqlmodel import Session, col

from chatapp.domain.ai_models import ModelUsage, UsageRecord
from chatapp.store.tables import AiUsageRow


class SqlAiUsage:
    def __init__(self, session: Session) -> None:
        self.s = session

    def record(self, *, room_id: int, usage: UsageRecord, now: datetime) -> None:
        self.s.add(
            AiUsageRow(
                room_id=room_id,
                model=usage.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=usage.cost_usd,
                estimated=usage.estimated,
                created_at=now,
            )
        )
        self.s.flush()

    def for_room(self, room_id: int) -> list[ModelUsage]:
        unpriced = func.sum(func.cast(col(AiUsageRow.cost_usd).is_(None), Integer))
        stmt = (
            select(
                col(AiUsageRow.model),
                func.count(),
                func.sum(AiUsageRow.prompt_tokens),
                func.sum(AiUsageRow.completion_tokens),
                func.sum(AiUsageRow.cost_usd),
                unpriced,
            )
            .where(col(AiUsageRow.room_id) == room_id)
            .group_by(col(AiUsageRow.model))
            .order_by(col(AiUsageRow.model))
        )
        return [
            ModelUsage(
                model=model,
                replies=replies,
                prompt_tokens=int(prompt or 0),
                completion_tokens=int(completion or 0),
                cost_usd=float(cost) if cost is not None and not missing_prices else None,
            )
            for model, replies, prompt, completion, cost, missing_prices in self.s.execute(stmt)
        ]
