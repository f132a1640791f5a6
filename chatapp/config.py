"""Settings, read from CHATAPP_* environment variables and an optional .env file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "changethis", "password", "dev"}
MIN_SECRET_CHARS = 32


class Settings(BaseSettings):
    """Every knob of chatapp; each one is documented in README's settings table."""

    model_config = SettingsConfigDict(env_prefix="CHATAPP_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Path("./chatapp-data")
    database_url: str | None = None
    secret_key: SecretStr | None = None

    max_message_chars: int = Field(4000, ge=1, le=100_000)
    page_size: int = Field(50, ge=1, le=500)
    max_room_name_chars: int = Field(80, ge=1, le=500)
    max_topic_chars: int = Field(300, ge=0, le=5000)
    min_password_chars: int = Field(10, ge=8, le=1024)
    session_days: float = Field(30, gt=0)
    cookie_secure: Literal["auto", "always", "never"] = "auto"

    argon2_memory_kib: int = Field(19_456, ge=19_456)
    argon2_time_cost: int = Field(2, ge=2)
    argon2_parallelism: int = Field(1, ge=1)

    reconnect_timeout: float = Field(30.0, ge=1)
    log_level: str = "info"

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
    def resolved_database_url(self) -> str:
        """The database URL in force: CHATAPP_DATABASE_URL, else SQLite in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'chatapp.db').resolve()}"

    def resolved_secret_key(self) -> str:
        """CHATAPP_SECRET_KEY, else the key file in the data dir (created 0600 on first use)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return load_or_create_secret(self.data_dir / SECRET_KEY_FILE)


def load_or_create_secret(path: Path) -> str:
    """Read the secret key file, creating it with mode 0600 if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
