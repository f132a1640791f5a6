"""Personal access tokens and bot accounts: how scripts, bots and other clients act for someone.

A token belongs to a person or to one of their bots, carries scopes (models.Scope) and maybe an expiry,
and is shown once: only its SHA-256 is stored. A bot is an account with an owner and no password; it
sees only the rooms it was added to (membership.py) and acts only through its tokens. Revoking a token
(or a password change, which revokes the person's own) tells every socket of that account to check its
token again, which closes those whose token is gone.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chatapp.domain.access import is_valid_id, require_scope
from chatapp.domain.accounts import hash_token
from chatapp.domain.errors import AlreadyExists, Forbidden, NotFound, ValidationError
from chatapp.domain.events import SessionsRevoked, user_topic
from chatapp.domain.models import Actor, ApiToken, NewApiToken, Scope, User
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.validation import display_name_error, hidden_character_error, one_line, username_error

TOKEN_PREFIX = "chat_"  # noqa: S105 (not a secret) says what a leaked string is (secret scanners look for such prefixes)
TOKEN_BYTES = 32
SHOWN_PREFIX_CHARS = 12  # "chat_" and 7 random characters: enough to tell tokens apart in a list
MAX_TOKEN_NAME_CHARS = 64
# The last use is noted at most this often per token: a script polling every second would otherwise
# turn every read into a write.
LAST_USE_PRECISION = timedelta(minutes=1)


def new_token_value() -> str:
    """A new token: the prefix and 32 random bytes, URL-safe base64 without padding."""
    return TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenLimits:
    """How many tokens and bots one person may have."""

    tokens_per_account: int = 50
    bots_per_account: int = 20


def account_of(actor: Actor) -> int:
    """The person managing tokens and bots: a signed-in user, not a guest and not a bot."""
    require_scope(actor, Scope.ADMIN)
    if actor.user_id is None or actor.is_guest:
        raise Forbidden("Create an account to use tokens and bots.")
    if actor.is_bot:
        raise Forbidden("A bot cannot manage tokens or bots.")
    return actor.user_id


def owned_bot(uow: UnitOfWork, owner_id: int, bot_id: int) -> User:
    """The bot with this id if it belongs to the owner; NotFound otherwise (another's bot is not shown)."""
    bot = uow.users.get(bot_id) if is_valid_id(bot_id) else None
    if bot is None or bot.bot_owner_id != owner_id:
        raise NotFound("Bot not found.")
    return bot


def _checked_name(name: str) -> str:
    cleaned = one_line(name) if isinstance(name, str) else ""
    if isinstance(name, str) and (error := hidden_character_error("Name", name)):
        raise ValidationError({"name": error})
    if not cleaned:
        raise ValidationError({"name": "Give the token a name (what it is for)."})
    if len(cleaned) > MAX_TOKEN_NAME_CHARS:
        raise ValidationError({"name": f"Name must be at most {MAX_TOKEN_NAME_CHARS} characters."})
    return cleaned


def checked_scopes(scopes: object) -> frozenset[Scope]:
    """The scopes named (a list of their names), or ValidationError for none or an unknown one."""
    known = {scope.value for scope in Scope}
    if not isinstance(scopes, list | tuple | set | frozenset) or not scopes:
        raise ValidationError({"scopes": "Choose at least one scope: " + ", ".join(sorted(known)) + "."})
    unknown = [str(name) for name in scopes if name not in known]
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope {unknown[0]!r}: choose from " + ", ".join(sorted(known))})
    return frozenset(Scope(name) for name in scopes)


class ApiTokens:
    """The tokens context: create, list and revoke tokens; create and list bots; authenticate a token."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        limits: TokenLimits | None = None,
        reserved_names: tuple[str, ...] = (),
        clock: Clock = utc_now,
    ) -> None:
        self._reserved_names = reserved_names  # no bot may look like the AI
        self._tx = tx
        self._pubsub = pubsub
        self._limits = limits or TokenLimits()
        self._clock = clock

    async def create_token(
        self,
        actor: Actor,
        *,
        name: str,
        scopes: object,
        expires_at: datetime | None = None,
        bot_id: int | None = None,
    ) -> NewApiToken:
        """A new token for the actor (or for one of their bots): its value is returned once."""
        owner_id = account_of(actor)
        clean_name, clean_scopes = _checked_name(name), checked_scopes(scopes)
        now = self._clock()
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)  # a time without a zone is taken as UTC
        if expires_at is not None and expires_at <= now:
            raise ValidationError({"expires_at": "The expiry must be in the future."})
        value = new_token_value()

        def work(uow: UnitOfWork) -> ApiToken:
            user_id = owned_bot(uow, owner_id, bot_id).id if bot_id is not None else owner_id
            if len(uow.api_tokens.of_users([user_id])) >= self._limits.tokens_per_account:
                raise Forbidden(f"At most {self._limits.tokens_per_account} tokens each: revoke one first.")
            return uow.api_tokens.add(
                user_id=user_id,
                name=clean_name,
                scopes=clean_scopes,
                token_hash=hash_token(value),
                prefix=value[:SHOWN_PREFIX_CHARS],
                now=now,
                expires_at=expires_at,
            )

        return NewApiToken(token=await self._tx.run(work, write=True), value=value)

    async def list_tokens(self, actor: Actor) -> list[ApiToken]:
        """The actor's tokens and their bots' tokens, oldest first (`user_id` says whose)."""
        owner_id = account_of(actor)

        def work(uow: UnitOfWork) -> list[ApiToken]:
            bot_ids = [bot.id for bot in uow.users.bots_of(owner_id)]
            return uow.api_tokens.of_users([owner_id, *bot_ids])

        return await self._tx.run(work)

    async def revoke_token(self, actor: Actor, token_id: int) -> None:
        """Revoke one of the actor's (or their bots') tokens: its next request is refused, and every
        socket using it closes."""
        owner_id = account_of(actor)

        def work(uow: UnitOfWork) -> int:
            token = uow.api_tokens.get(token_id) if is_valid_id(token_id) else None
            if token is None:
                raise NotFound("Token not found.")
            if token.user_id != owner_id:
                owned_bot(uow, owner_id, token.user_id)
            uow.api_tokens.delete(token.id)
            return token.user_id

        user_id = await self._tx.run(work, write=True)
        await self._pubsub.publish(user_topic(user_id), SessionsRevoked(user_id=user_id))

    async def create_bot(self, actor: Actor, *, username: str, display_name: str) -> User:
        """A new bot account owned by the actor: it has no password and acts through its tokens."""
        owner_id = account_of(actor)
        name, shown = one_line(username).lower(), one_line(display_name)
        errors = {
            "username": username_error(name),
            "display_name": display_name_error(shown, reserved=self._reserved_names, typed=display_name),
        }
        if found := {field: message for field, message in errors.items() if message}:
            raise ValidationError(found)

        def work(uow: UnitOfWork) -> User:
            if len(uow.users.bots_of(owner_id)) >= self._limits.bots_per_account:
                raise Forbidden(f"At most {self._limits.bots_per_account} bots each.")
            try:
                return uow.users.add_bot(username=name, display_name=shown, owner_id=owner_id, now=self._clock())
            except AlreadyExists as exc:
                raise ValidationError({"username": "That username is taken."}) from exc

        return await self._tx.run(work, write=True)

    async def find_or_create_bot(self, actor: Actor, *, username: str, display_name: str) -> User:
        """The actor's bot of that username, created when there is none (for the command line)."""
        owner_id = account_of(actor)
        name = one_line(username).lower()
        for bot in await self._tx.run(lambda uow: uow.users.bots_of(owner_id)):
            if bot.username == name:
                return bot
        return await self.create_bot(actor, username=username, display_name=display_name)

    async def operator_acts_as(self, username: str) -> Actor:
        """The person of that username, as whoever runs the server acts for them on the command line
        (create-token): a trusted caller, with a browser session's rights. NotFound for none, or a bot."""
        user = await self._tx.run(lambda uow: uow.users.by_username(one_line(username).lower()))
        if user is None or user.is_bot:
            raise NotFound(f"No account has the username {username!r}.")
        return Actor(user_id=user.id, username=user.username, display_name=user.display_name)

    async def list_bots(self, actor: Actor) -> list[User]:
        """The actor's bots, oldest first."""
        owner_id = account_of(actor)
        return await self._tx.run(lambda uow: uow.users.bots_of(owner_id))

    async def authenticate_token(self, value: str | None) -> Actor | None:
        """The actor behind a token (with its scopes), or None when it is missing, unknown, revoked or
        expired. Notes when it was last used (to the minute)."""
        if not value or not value.startswith(TOKEN_PREFIX):
            return None
        token_hash, now = hash_token(value), self._clock()
        found = await self._tx.run(lambda uow: uow.api_tokens.actor_for(token_hash, now))
        if found is None:
            return None
        actor, token = found
        if token.last_used_at is None or now - token.last_used_at >= LAST_USE_PRECISION:
            await self._tx.run(lambda uow: uow.api_tokens.touch(token.id, now), write=True)
        return actor
