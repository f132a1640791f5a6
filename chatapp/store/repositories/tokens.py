"""Personal access tokens (of people and of bots), found by the hash of their value."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session, col, delete

from chatapp.domain.models import Actor, ApiToken, Scope
from chatapp.store.repositories.rows import aware, insert_new, saved_id
from chatapp.store.tables import ApiTokenRow, UserRow


def _token_from_row(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=saved_id(row.id),
        user_id=row.user_id,
        name=row.name,
        scopes=frozenset(Scope(name) for name in row.scopes.split()),
        prefix=row.prefix,
        created_at=aware(row.created_at),
        expires_at=aware(row.expires_at) if row.expires_at else None,
        last_used_at=aware(row.last_used_at) if row.last_used_at else None,
    )


class SqlApiTokens:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self,
        *,
        user_id: int,
        name: str,
        scopes: frozenset[Scope],
        token_hash: str,
        prefix: str,
        now: datetime,
        expires_at: datetime | None,
    ) -> ApiToken:
        row = ApiTokenRow(
            user_id=user_id,
            name=name,
            scopes=" ".join(sorted(scopes)),
            token_hash=token_hash,
            prefix=prefix,
            created_at=now,
            expires_at=expires_at,
        )
        insert_new(self.s, row, "api_tokens.token_hash")
        return _token_from_row(row)

    def get(self, token_id: int) -> ApiToken | None:
        row = self.s.get(ApiTokenRow, token_id)
        return _token_from_row(row) if row else None

    def of_users(self, user_ids: list[int]) -> list[ApiToken]:
        stmt = select(ApiTokenRow).where(col(ApiTokenRow.user_id).in_(user_ids)).order_by(col(ApiTokenRow.id))
        return [_token_from_row(row) for row in self.s.execute(stmt).scalars()]

    def actor_for(self, token_hash: str, now: datetime) -> tuple[Actor, ApiToken] | None:
        stmt = (
            select(ApiTokenRow, UserRow)
            .join(UserRow, col(UserRow.id) == col(ApiTokenRow.user_id))
            .where(col(ApiTokenRow.token_hash) == token_hash)
        )
        found = self.s.execute(stmt).first()
        if found is None:
            return None
        token, user = _token_from_row(found.ApiTokenRow), found.UserRow
        if token.is_expired(now):
            return None
        actor = Actor(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            scopes=token.scopes,
            token_id=token.id,
            is_bot=user.bot_owner_id is not None,
        )
        return actor, token

    def touch(self, token_id: int, now: datetime) -> None:
        self.s.exec(update(ApiTokenRow).where(col(ApiTokenRow.id) == token_id).values(last_used_at=now))

    def delete(self, token_id: int) -> None:
        self.s.exec(delete(ApiTokenRow).where(col(ApiTokenRow.id) == token_id))

    def delete_for_user(self, user_id: int) -> int:
        return self.s.exec(delete(ApiTokenRow).where(col(ApiTokenRow.user_id) == user_id)).rowcount or 0
