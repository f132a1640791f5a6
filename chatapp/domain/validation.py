"""Input rules shared by the domain services."""

from __future__ import annotations

import re
import unicodedata

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
MAX_DISPLAY_NAME_CHARS = 64


def clean_text(value: str) -> str:
    """Trim, NFC-normalise and drop control characters other than newlines and tabs."""
    value = unicodedata.normalize("NFC", value or "")
    value = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return value.strip()


def one_line(value: str) -> str:
    """clean_text for single-line fields: inner whitespace runs become one space."""
    return " ".join(clean_text(value).split())


def username_error(username: str) -> str | None:
    """Why a (normalised) username is not acceptable, or None."""
    if not USERNAME_RE.match(username):
        return "Username: 3-32 characters of a-z 0-9 _ . -"
    return None


def display_name_error(name: str) -> str | None:
    """Why a display name is not acceptable, or None."""
    if not name:
        return "Display name is required."
    if len(name) > MAX_DISPLAY_NAME_CHARS:
        return f"Display name must be at most {MAX_DISPLAY_NAME_CHARS} characters."
    return None


def password_error(password: str, *, min_chars: int, max_chars: int) -> str | None:
    """Why a password is not acceptable, or None."""
    if len(password) < min_chars:
        return f"Password must be at least {min_chars} characters."
    if len(password) > max_chars:
        return f"Password must be at most {max_chars} characters."
    return None
