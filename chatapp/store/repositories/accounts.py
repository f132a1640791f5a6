"""Accounts: users, their sessions, and guests (people without an account) with theirs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session, col, delete

from chatapp.domain.models import Actor, User, UserCredentials
from chatapp.store.repositories.rows import aware, insert_new, saved_id, user_from_row
from chatapp.store.tables import GuestRow, GuestSessionRow, SessionRow, UserRow


class SqlUsers:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, *, username: str, display_name: str, password_hash: str, now: datetime) -> User:
        row = UserRow(
            username=username, display_name=display_name, password_hash=password_hash, created_at=now, updated_at=now
        )
        insert_new(self.s, row, "users.username")
        return user_from_row(row)

    def add_bot(self, *, username: str, display_name: str, owner_id: int, now: datetime) -> User:
        # No password can match "!": argon2 refuses it as a hash, and sign-in refuses bots before that.
        row = UserRow(
            username=username,
            display_name=display_name,
            password_hash="!",  # noqa: S106 (not a password: the mark of an account without one)
            created_at=now,
            updated_at=now,
            bot_owner_id=owner_id,
        )
        insert_new(self.s, row, "users.username")
        return user_from_row(row)

    def get(self, user_id: int) -> User | None:
        row = self.s.get(UserRow, user_id)
        return user_from_row(row) if row else None

    def by_username(self, username: str) -> User | None:
        row = self.s.execute(select(UserRow).where(col(UserRow.username) == username)).scalars().first()
        return user_from_row(row) if row else None

    def bots_of(self, owner_id: int) -> list[User]:
        stmt = select(UserRow).where(col(UserRow.bot_owner_id) == owner_id).order_by(col(UserRow.id))
        return [user_from_row(row) for row in self.s.execute(stmt).scalars()]

    def credentials_by_username(self, username: str) -> UserCredentials | None:
        row = self.s.execute(select(UserRow).where(col(UserRow.username) == username)).scalars().first()
        return UserCredentials(user=user_from_row(row), password_hash=row.password_hash) if row else None

    def credentials(self, user_id: int, *, lock: bool = False) -> UserCredentials | None:
        # lock: SELECT ... FOR UPDATE on PostgreSQL; SQLite writers already hold the database lock.
        row = self.s.get(UserRow, user_id, with_for_update=lock, populate_existing=lock)
        return UserCredentials(user=user_from_row(row), password_hash=row.password_hash) if row else None

    def set_display_name(self, user_id: int, display_name: str, now: datetime) -> None:
        self._update(user_id, now, display_name=display_name)

    def set_password_hash(self, user_id: int, password_hash: str, now: datetime) -> None:
        self._update(user_id, now, password_hash=password_hash)

    def _update(self, user_id: int, now: datetime, **values: str) -> None:
        self.s.exec(update(UserRow).where(col(UserRow.id) == user_id).values(**values, updated_at=now))


class SqlSessions:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, *, user_id: int, token_hash: str, created_at: datetime, expires_at: datetime) -> int:
        row = SessionRow(user_id=user_id, token_hash=token_hash, created_at=created_at, expires_at=expires_at)
        self.s.add(row)
        self.s.flush()
        return saved_id(row.id)

    def actor_for(self, token_hash: str, now: datetime) -> Actor | None:
        stmt = (
            select(col(SessionRow.expires_at), UserRow)
            .join(UserRow, col(UserRow.id) == col(SessionRow.user_id))
            .where(col(SessionRow.token_hash) == token_hash)
        )
        found = self.s.execute(stmt).first()
        if found is None or aware(found.expires_at) <= now:
            return None
        user = found.UserRow
        return Actor(user_id=user.id, username=user.username, display_name=user.display_name)

    def delete_by_hash(self, token_hash: str) -> int | None:
        row = self.s.execute(select(SessionRow).where(col(SessionRow.token_hash) == token_hash)).scalars().first()
        if row is None:
            return None
        self.s.delete(row)
        return row.user_id

    def delete_for_user(self, user_id: int) -> int:
        result = self.s.exec(delete(SessionRow).where(col(SessionRow.user_id) == user_id))
        return result.rowcount or 0

    def delete_expired_for_user(self, user_id: int, now: datetime) -> int:
        stmt = delete(SessionRow).where(col(SessionRow.user_id) == user_id, col(SessionRow.expires_at) <= now)
        return self.s.exec(stmt).rowcount or 0


class SqlGuests:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, *, display_name: str, now: datetime) -> int:
        row = GuestRow(display_name=display_name, created_at=now)
        self.s.add(row)
        self.s.flush()
        return saved_id(row.id)

    def add_session(self, *, guest_id: int, token_hash: str, created_at: datetime, expires_at: datetime) -> None:
        self.s.add(
            GuestSessionRow(guest_id=guest_id, token_hash=token_hash, created_at=created_at, expires_at=expires_at)
        )
        self.s.flush()

    def actor_for(self, token_hash: str, now: datetime) -> Actor | None:
        stmt = (
            select(col(GuestSessionRow.expires_at), GuestRow)
            .join(GuestRow, col(GuestRow.id) == col(GuestSessionRow.guest_id))
            .where(col(GuestSessionRow.token_hash) == token_hash)
        )
        found = self.s.execute(stmt).first()
        if found is None or aware(found.expires_at) <= now:
            return None
        guest = found.GuestRow
        return Actor(user_id=None, username="", display_name=guest.display_name, guest_id=guest.id)

    def delete_session(self, token_hash: str) -> int | None:
        stmt = select(GuestSessionRow).where(col(GuestSessionRow.token_hash) == token_hash)
        row = self.s.execute(stmt).scalars().first()
        if row is None:
            return None
        self.s.delete(row)
        return row.guest_id

    def delete_sessions(self, guest_id: int) -> int:
        return self.s.exec(delete(GuestSessionRow).where(col(GuestSessionRow.guest_id) == guest_id)).rowcount or 0

    def has_live_session(self, guest_id: int, now: datetime) -> bool:
        stmt = select(col(GuestSessionRow.id)).where(
            col(GuestSessionRow.guest_id) == guest_id, col(GuestSessionRow.expires_at) > now
        )
        return self.s.execute(stmt.limit(1)).first() is not None
