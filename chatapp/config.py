"""Settings, read from CHATAPP_* environment variables and an optional .env file."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "changethis", "password", "dev"}
MIN_SECRET_CHARS = 32


PUBSUB_SCHEMES = ("memory://", "postgresql://", "postgresql+psycopg://", "postgres://", "redis://", "rediss://")


class Settings(BaseSettings):
    """Every knob of chatapp; each one is documented in README's settings table."""

    model_config = SettingsConfigDict(env_prefix="CHATAPP_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Path("./chatapp-data")
    database_url: str | None = None
    # How the processes hear each other: memory:// (one process), postgresql://... (LISTEN/NOTIFY), redis://...
    pubsub_url: str | None = None  # None: memory:// on SQLite, the database itself on PostgreSQL
    secret_key: SecretStr | None = None

    max_message_chars: int = Field(4000, ge=1, le=100_000)
    page_size: int = Field(50, ge=1, le=500)
    max_page_size: int = Field(200, ge=1, le=1000)  # the most messages one API request may ask for
    tokens_per_account: int = Field(50, ge=1)  # personal access tokens of one person, and of each bot
    bots_per_account: int = Field(20, ge=0)
    # Webhooks (domain/webhooks.py: incoming; domain/bot_hooks.py: bots' outgoing ones)
    webhooks_per_room: int = Field(20, ge=0)
    webhook_timeout: float = Field(5.0, gt=0, le=60)  # seconds per call of an outgoing webhook
    webhook_attempts: int = Field(3, ge=1, le=10)  # the first call and its retries
    webhook_backoff: float = Field(1.0, ge=0, le=60)  # seconds before the first retry, doubled each time
    webhook_max_in_flight: int = Field(20, ge=1)  # calls at once, per process
    webhook_max_waiting: int = Field(500, ge=0)  # calls waiting their turn; more are dropped (and logged)
    webhook_deliveries_kept: int = Field(100, ge=1, le=10_000)  # calls logged per bot
    webhook_allow_private: bool = False  # outgoing webhooks to loopback/private addresses (bots on the LAN)
    # The room socket (api/socket.py)
    socket_max_frame_bytes: int = Field(65_536, ge=1024, le=10_000_000)
    socket_max_channels: int = Field(100, ge=1)  # rooms one socket may join at once
    socket_idle_timeout: float = Field(60.0, gt=0)  # seconds without a frame (heartbeats come every 30)
    socket_max_backlog: int = Field(1000, ge=10)  # frames queued for a slow client before it is closed
    socket_frames_burst: int = Field(100, ge=1)  # frames a socket may send at once...
    socket_frames_per_second: float = Field(50.0, gt=0)  # ...then this many a second
    max_room_name_chars: int = Field(80, ge=1, le=200)  # the column holds 200
    max_topic_chars: int = Field(300, ge=0, le=5000)
    min_password_chars: int = Field(10, ge=10, le=1024)
    session_days: float = Field(30, gt=0)
    cookie_secure: Literal["auto", "always", "never"] = "auto"

    argon2_memory_kib: int = Field(19_456, ge=19_456)
    argon2_time_cost: int = Field(2, ge=2)
    argon2_parallelism: int = Field(1, ge=1)

    message_burst: int = Field(20, ge=0)  # messages a participant may send at once (0: no limit)...
    message_per_second: float = Field(1.0, gt=0)  # ...then this many a second
    join_limit: int = Field(20, ge=0)  # invite links followed per IP (0: no limit)...
    join_window_minutes: float = Field(60, gt=0)  # ...per this many minutes
    sign_in_limit: int = Field(10, ge=0)  # sign-in attempts per username and per IP (0: no limit)...
    sign_in_window_minutes: float = Field(15, gt=0)  # ...per this many minutes
    sign_up_limit: int = Field(20, ge=0)  # sign-up attempts per IP (0: no limit)...
    sign_up_window_minutes: float = Field(60, gt=0)  # ...per this many minutes
    invite_days: float = Field(7, gt=0, le=365)  # default expiry of a new invite link

    reconnect_timeout: float = Field(30.0, ge=1)
    # Room broadcasts a tab may have been sent without saying it took them in; beyond, the broadcasts leave
    # it out until it has, and it then catches up from the database (live/flow.py).
    live_max_backlog: int = Field(200, ge=10)
    log_level: str = "info"

    # The HTTP server (chatapp/server.py): proxies whose X-Forwarded-* headers are believed (comma-separated
    # addresses or networks, "*" for any; empty: none), and how long a connection may take to send a
    # request's headers, or stay idle between requests, before it is closed.
    forwarded_allow_ips: str = Field(
        "", validation_alias=AliasChoices("CHATAPP_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS", "forwarded_allow_ips")
    )
    headers_timeout: float = Field(10.0, gt=0, le=300)
    keep_alive_timeout: float = Field(5.0, gt=0, le=300)

    ai_name: str = Field("Assistant", min_length=1, max_length=64)
    ai_model: str = ""  # a litellm model string; empty: the AI says how to configure one
    ai_models: str = ""  # comma-separated: the models a room owner may choose from
    ai_router_config: Path | None = None  # a litellm Router YAML (model_list, fallbacks)
    ai_max_instruction_chars: int = Field(2000, ge=0, le=2000)  # the column holds 2000
    ai_api_base: str | None = None
    ai_api_key: SecretStr | None = None
    ai_context_tokens: int = Field(8000, ge=1000, le=2_000_000)
    ai_timeout: float = Field(120.0, gt=0)
    ai_retries: int = Field(1, ge=0, le=10)
    bus_peer_lost_after: float = Field(5.0, ge=2, le=600)  # seconds: a silent process died (its news is reloaded)
    presence_lost_after: float = Field(15.0, ge=1, le=600)  # seconds: a silent process's connections leave
    ai_reply_lost_after: float = Field(15.0, ge=3, le=600)  # seconds without a beat: the reply's process died

    @field_validator("pubsub_url")
    @classmethod
    def _known_bus(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(PUBSUB_SCHEMES):
            raise ValueError("CHATAPP_PUBSUB_URL starts with memory://, postgresql:// or redis:// (or rediss://)")
        return value

    @field_validator("secret_key")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if raw.lower() in _PLACEHOLDER_SECRETS or len(raw) < MIN_SECRET_CHARS:
            raise ValueError(f"CHATAPP_SECRET_KEY must be a random string of at least {MIN_SECRET_CHARS} chars")
        return value

    @property
    def offered_ai_models(self) -> tuple[str, ...]:
        """CHATAPP_AI_MODELS as a list, without blanks or repeats (the default model first when set)."""
        names = [self.ai_model, *self.ai_models.split(",")] if self.ai_model else self.ai_models.split(",")
        return tuple(dict.fromkeys(name.strip() for name in names if name.strip()))

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: CHATAPP_DATABASE_URL, else SQLite in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'chatapp.db').resolve()}"

    @property
    def resolved_pubsub_url(self) -> str:
        """The bus in force: CHATAPP_PUBSUB_URL, else the PostgreSQL database itself, else memory://."""
        if self.pubsub_url:
            return self.pubsub_url
        database = self.resolved_database_url
        return database if database.startswith("postgresql") else "memory://"

    def resolved_secret_key(self) -> str:
        """CHATAPP_SECRET_KEY, else the key file in the data dir (created 0600 on first use)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return load_or_create_secret(self.data_dir / SECRET_KEY_FILE)


def load_or_create_secret(path: Path) -> str:
    """Read the secret key file, creating it (mode 0600) if it does not exist yet.

    The key is written to a temporary file first and linked into place, so no process ever sees a
    half-written key; a file that holds less than a key is refused rather than used.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # created 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                os.link(tmp_name, path)
        finally:
            os.unlink(tmp_name)
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_CHARS:
        raise ValueError(
            f"The secret key file {path} holds less than {MIN_SECRET_CHARS} characters; "
            "delete it to have a new key generated, or set CHATAPP_SECRET_KEY."
        )
    return key
