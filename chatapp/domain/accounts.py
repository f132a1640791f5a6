"""Accounts: sign-up, sign-in, sessions, password changes."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from chatapp.domain.access import require_browser, require_scope
from chatapp.domain.errors import AlreadyExists, Forbidden, InvalidCredentials, NotAuthenticated, ValidationError
from chatapp.domain.events import ParticipantsChanged, SessionsRevoked, guest_topic, room_topic, user_topic
from chatapp.domain.limits import Limits, reserve
from chatapp.domain.models import Actor, NewSession, Scope, User, UserCredentials
from chatapp.domain.participants import become_user
from chatapp.domain.passwords import Passwords
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.validation import (
    display_name_error,
    one_line,
    password_error,
    username_error,
)

TOKEN_BYTES = 32


def _require_unchanged(uow: UnitOfWork, checked: UserCredentials) -> None:
    """Lock the user row and make sure the hash we verified is still the stored one."""
    current = uow.users.credentials(checked.user.id, lock=True)
    if current is None or current.password_hash != checked.password_hash:
        raise InvalidCredentials()


def _account_of(actor: Actor, refusal: str) -> int:
    """The user id of an actor with an account; Forbidden with `refusal` for a guest."""
    if actor.is_guest or actor.user_id is None:
        raise Forbidden(refusal)
    return actor.user_id


USERNAME_TAKEN = "That username is taken."


def _require_free(uow: UnitOfWork, username: str) -> None:
    if uow.users.credentials_by_username(username) is not None:
        raise ValidationError({"username": USERNAME_TAKEN})


def _add_user(uow: UnitOfWork, *, username: str, display_name: str, password_hash: str, now: datetime) -> User:
    """The new account, or the same refusal as _require_free when another request took the name meanwhile."""
    try:
        return uow.users.add(username=username, display_name=display_name, password_hash=password_hash, now=now)
    except AlreadyExists as exc:
        raise ValidationError({"username": USERNAME_TAKEN}) from exc


def new_token() -> str:
    """32 random bytes, URL-safe base64 without padding: the value of a session cookie."""
    return base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()


def hash_token(token: str) -> str:
    """What is stored for a token: its SHA-256, hex. A leaked table cannot be replayed."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignUpForm:
    username: str
    display_name: str
    password: str


class Accounts:
    """The accounts context. Every operation that changes sessions publishes SessionsRevoked."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        passwords: Passwords,
        session_lifetime: timedelta,
        limits: Limits | None = None,
        reserved_names: tuple[str, ...] = (),
        clock: Clock = utc_now,
    ) -> None:
        self._reserved_names = reserved_names  # nobody may look like the AI
        self._limits = limits or Limits.off()
        self._tx = tx
        self._pubsub = pubsub
        self._passwords = passwords
        self._lifetime = session_lifetime
        self._clock = clock

    async def sign_up(self, form: SignUpForm, *, ip: str | None = None) -> NewSession:
        """Create an account and sign it in. Raises ValidationError (per field) or on a taken name;
        attempts are limited per IP (RateLimited)."""
        user = await self.create_user(form, ip=ip)
        return await self._tx.run(lambda uow: self._issue_session(uow, user), write=True)

    async def create_user(self, form: SignUpForm, *, ip: str | None = None) -> User:
        """Create an account without a session (the CLI's create-user, with no IP and no limit)."""
        username, display_name, password_hash = await self._checked_new_account(form, ip)

        def work(uow: UnitOfWork) -> User:
            _require_free(uow, username)
            return _add_user(
                uow, username=username, display_name=display_name, password_hash=password_hash, now=self._clock()
            )

        return await self._tx.run(work, write=True)

    async def _checked_new_account(self, form: SignUpForm, ip: str | None) -> tuple[str, str, str]:
        """Validate a sign-up, reserve its attempt (per IP), refuse a taken name, and only then hash
        the password: argon2 never runs for a name that is taken (a flood of those queued hashing in
        front of real sign-ins). The name is checked again when the account is written."""
        username, display_name = self._validate_new_account(form)
        await reserve(
            (self._limits.sign_ups, f"ip:{ip}" if ip else None), message="Too many sign-ups from your network."
        )
        await self._tx.run(lambda uow: _require_free(uow, username))
        return username, display_name, await self._passwords.hash(form.password)

    async def sign_in(
        self, *, username: str, password: str, previous_token: str | None = None, ip: str | None = None
    ) -> NewSession:
        """Check credentials and issue a fresh session, revoking the browser's previous one.

        Attempts are limited per username and per IP (RateLimited says when to try again): each is
        reserved before its password is checked, and a successful one gives its place back and clears
        the username's count. While a username is over its limit even the right password is refused:
        that is what stops guessing, at the price that someone guessing can hold an account's sign-in
        off for the window (docs/ARCHITECTURE.md)."""
        name = one_line(username).lower()
        ip_key, user_key = (f"ip:{ip}" if ip else None), f"user:{name}"
        attempt = ((self._limits.sign_in_ip, ip_key), (self._limits.sign_in_user, user_key))
        await reserve(*attempt, message="Too many failed sign-in attempts.")  # before argon2: bursts stop here
        creds = await self._tx.run(lambda uow: uow.users.credentials_by_username(name))
        if creds is not None and creds.user.is_bot:  # bots act through tokens; as slow as an unknown name
            creds = None
        ok = await self._passwords.verify(creds.password_hash if creds else None, password)
        if creds is None or not ok:
            raise InvalidCredentials()  # the attempt stays counted
        await self._limits.sign_in_user.reset(user_key)
        if ip_key is not None:  # a successful sign-in does not count against a shared address
            await self._limits.sign_in_ip.refund(ip_key)
        new_hash = None
        if self._passwords.needs_rehash(creds.password_hash):
            new_hash = await self._passwords.hash(password)

        def work(uow: UnitOfWork) -> tuple[NewSession, int | None]:
            # The password may have changed while argon2 ran: then the one we checked is stale.
            _require_unchanged(uow, creds)
            if new_hash is not None:
                uow.users.set_password_hash(creds.user.id, new_hash, self._clock())
            previous_user = uow.sessions.delete_by_hash(hash_token(previous_token)) if previous_token else None
            return self._issue_session(uow, creds.user), previous_user

        session, previous_user = await self._tx.run(work, write=True)
        if previous_user is not None:  # that browser's other tabs must stop using the old session
            await self._pubsub.publish(user_topic(previous_user), SessionsRevoked(user_id=previous_user))
        return session

    async def authenticate(self, token: str | None) -> Actor | None:
        """The actor behind a session token, or None when it is missing, unknown or expired."""
        if not token:
            return None
        token_hash = hash_token(token)
        return await self._tx.run(lambda uow: uow.sessions.actor_for(token_hash, self._clock()))

    async def authenticate_guest(self, token: str | None) -> Actor | None:
        """The guest behind a guest session token, or None when it is missing, unknown or expired."""
        if not token:
            return None
        token_hash = hash_token(token)
        return await self._tx.run(lambda uow: uow.guests.actor_for(token_hash, self._clock()))

    async def sign_up_guest(self, guest: Actor, form: SignUpForm, *, ip: str | None = None) -> NewSession:
        """A guest creates an account: their messages become the new user's, they stay guests in their
        rooms until an owner or moderator changes their role (unless a room welcomes members by
        sign-up), their guest sessions end, and the new account is signed in."""
        guest_id = guest.guest_id
        if guest_id is None:
            raise Forbidden("You already have an account.")
        username, display_name, password_hash = await self._checked_new_account(form, ip)

        def work(uow: UnitOfWork) -> tuple[NewSession, list[int]]:
            _require_free(uow, username)
            if uow.guests.delete_sessions(guest_id) == 0:  # signed up (or out) meanwhile
                raise NotAuthenticated()
            user = _add_user(
                uow, username=username, display_name=display_name, password_hash=password_hash, now=self._clock()
            )
            room_ids = become_user(uow, guest_id, user.id)
            return self._issue_session(uow, user), room_ids

        session, room_ids = await self._tx.run(work, write=True)
        await self._pubsub.publish(guest_topic(guest_id), SessionsRevoked(user_id=None, guest_id=guest_id))
        for room_id in room_ids:
            await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
        return session

    async def require_actor(self, token: str | None) -> Actor:
        """Like authenticate, but raises NotAuthenticated instead of returning None."""
        actor = await self.authenticate(token)
        if actor is None:
            raise NotAuthenticated()
        return actor

    async def sign_out(self, token: str | None) -> None:
        """Revoke this session; the user's tabs that used it are told at once."""
        if not token:
            return
        user_id = await self._tx.run(lambda uow: uow.sessions.delete_by_hash(hash_token(token)), write=True)
        if user_id is not None:
            await self._pubsub.publish(user_topic(user_id), SessionsRevoked(user_id=user_id))

    async def sign_out_guest(self, token: str | None) -> None:
        """End a guest session (the guest stays in their rooms; following a link again makes a new guest)."""
        if not token:
            return
        guest_id = await self._tx.run(lambda uow: uow.guests.delete_session(hash_token(token)), write=True)
        if guest_id is not None:
            await self._pubsub.publish(guest_topic(guest_id), SessionsRevoked(user_id=None, guest_id=guest_id))

    async def update_display_name(self, actor: Actor, display_name: str) -> str:
        """The user's new display name, here and in every room they are in (their messages show it);
        open tabs of those rooms update their people lists. Guests keep the name they joined with."""
        require_scope(actor, Scope.ADMIN)
        user_id = _account_of(actor, "Guests keep the name they joined with; create an account to choose another.")
        name = one_line(display_name)
        if error := display_name_error(name, reserved=self._reserved_names, typed=display_name):
            raise ValidationError({"display_name": error})

        def work(uow: UnitOfWork) -> list[int]:
            uow.users.set_display_name(user_id, name, self._clock())
            return uow.participants.rename_user(user_id, name)

        for room_id in await self._tx.run(work, write=True):
            await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
        return name

    async def update_password(self, actor: Actor, *, current: str, new: str) -> NewSession:
        """Replace the password, revoke every session and personal access token of the user and issue a
        new session."""
        require_browser(actor)
        user_id = _account_of(actor, "Guests have no password; create an account first.")
        creds = await self._tx.run(lambda uow: uow.users.credentials(user_id))
        if creds is None:
            raise NotAuthenticated()
        errors: dict[str, str] = {}
        if not await self._passwords.verify(creds.password_hash, current):
            errors["current_password"] = "Current password is wrong."  # noqa: S105 (a message, not a password)
        policy = self._passwords.policy
        if error := password_error(new, min_chars=policy.min_chars, max_chars=policy.max_chars):
            errors["new_password"] = error
        if errors:
            raise ValidationError(errors)
        new_hash = await self._passwords.hash(new)

        def work(uow: UnitOfWork) -> NewSession:
            try:
                _require_unchanged(uow, creds)
            except InvalidCredentials:
                message = "Your password was just changed elsewhere; please try again."
                raise ValidationError({"current_password": message}) from None
            uow.users.set_password_hash(user_id, new_hash, self._clock())
            uow.sessions.delete_for_user(user_id)
            uow.api_tokens.delete_for_user(user_id)  # the person's own; their bots' tokens stay
            return self._issue_session(uow, creds.user)

        session = await self._tx.run(work, write=True)
        await self._pubsub.publish(user_topic(user_id), SessionsRevoked(user_id=user_id))
        return session

    async def sign_out_everywhere(self, actor: Actor) -> None:
        """End every session of the user (this one too) and revoke their personal access tokens (their
        bots' stay); every tab and socket that used them is told at once and closes."""
        require_browser(actor)
        user_id = _account_of(actor, "Guests have one session only: sign out instead.")

        def work(uow: UnitOfWork) -> None:
            uow.sessions.delete_for_user(user_id)
            uow.api_tokens.delete_for_user(user_id)

        await self._tx.run(work, write=True)
        await self._pubsub.publish(user_topic(user_id), SessionsRevoked(user_id=user_id))

    def _issue_session(self, uow: UnitOfWork, user: User) -> NewSession:
        token = new_token()
        now = self._clock()
        expires_at = now + self._lifetime
        uow.sessions.delete_expired_for_user(user.id, now)  # sessions left to expire are tidied at sign-in
        uow.sessions.add(user_id=user.id, token_hash=hash_token(token), created_at=now, expires_at=expires_at)
        return NewSession(user=user, token=token, expires_at=expires_at)

    def _validate_new_account(self, form: SignUpForm) -> tuple[str, str]:
        username = one_line(form.username).lower()
        display_name = one_line(form.display_name)
        policy = self._passwords.policy
        errors = {
            "username": username_error(username),
            "display_name": display_name_error(display_name, reserved=self._reserved_names, typed=form.display_name),
            "password": password_error(form.password, min_chars=policy.min_chars, max_chars=policy.max_chars),
        }
        found = {field: message for field, message in errors.items() if message}
        if found:
            raise ValidationError(found)
        return username, display_name
