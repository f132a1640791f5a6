"""Input rules shared by the domain services."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
MAX_DISPLAY_NAME_CHARS = 64


def drop_control_characters(value: str) -> str:
    """Remove control, format, surrogate and unassigned characters (category C) other than newlines and
    tabs: a NUL cannot be stored by PostgreSQL, a lone surrogate by neither database nor JSON."""
    return "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


def clean_text(value: str) -> str:
    """Trim, NFC-normalise and drop control characters other than newlines and tabs."""
    return drop_control_characters(unicodedata.normalize("NFC", value or "")).strip()


def one_line(value: str) -> str:
    """clean_text for single-line fields: inner whitespace runs become one space."""
    return " ".join(clean_text(value).split())


def username_error(username: str) -> str | None:
    """Why a (normalised) username is not acceptable, or None."""
    if not USERNAME_RE.match(username):
        return "Username: 3-32 characters of a-z 0-9 _ . -"
    return None


# Letters and symbols that draw nothing (Hangul fillers, the blank Braille pattern, Khmer inherent
# vowels, the Mongolian vowel separator, the combining grapheme joiner): a name of only these looks empty.
INVISIBLE_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5\u180e\u034f")


def has_visible_character(text: str) -> bool:
    """Whether the text draws anything: one character that is not a space, mark, control or known blank."""
    return any(unicodedata.category(ch)[0] not in "ZMC" and ch not in INVISIBLE_CHARACTERS for ch in text)


# Cyrillic and Greek letters drawn like Latin ones (the common part of Unicode's confusables table).
LOOKALIKES = str.maketrans(
    "\u0430\u0432\u0435\u0456\u0458\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0455\u04cf"
    "\u03b1\u03b2\u03b5\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u0251\u0261\u0131",
    "abeijkmhopctyxsl" + "abeikvoptuxagi",
)


def name_key(name: str) -> str:
    """What two names are compared by when one must not pass for the other: letters and digits that
    draw something, without accents, compatibility-normalised, case-folded and with Cyrillic or Greek
    look-alikes read as Latin ("A.I.", a full-width "AI", a Cyrillic "\u0410I" and "ai" are the same)."""
    decomposed = unicodedata.normalize("NFKD", name).casefold().translate(LOOKALIKES)
    return "".join(ch for ch in decomposed if ch.isalnum() and ch not in INVISIBLE_CHARACTERS)


def room_name_key(name: str) -> str:
    """What display names in one room are compared by, so that a guest cannot take someone's name:
    NFKC-normalised and case-folded, with Cyrillic and Greek look-alikes read as Latin and the known
    blank letters left out ("ALICE", a full-width "Alice", a Cyrillic "\u0410lice" and "Alice" with a
    Hangul filler after it are all "alice"). Accents, marks and punctuation still tell names apart."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold()).translate(LOOKALIKES)
    return "".join(ch for ch in folded if ch not in INVISIBLE_CHARACTERS)


def name_in_use(name: str, names: Iterable[str]) -> bool:
    """Whether `name` is one of `names`, compared by room_name_key."""
    key = room_name_key(name)
    return any(room_name_key(other) == key for other in names)


# Controls a name may contain: whitespace that one_line turns into a space.
WHITESPACE_CONTROLS = frozenset("\t\n\r")
SHOWN_HIDDEN_CHARACTERS = 3


def hidden_characters(text: str) -> list[str]:
    """The characters of `text` (as typed, before cleaning) that draw nothing yet hide or reorder what
    is drawn, each once in order of appearance: format characters (Cf: bidirectional embeddings,
    overrides and isolates, zero-width spaces and joiners, direction marks, the soft hyphen, the
    byte-order mark, word joiner and invisible operators) and controls (Cc) other than tab and newlines."""
    return list(dict.fromkeys(ch for ch in text if _hides(ch)))


def _hides(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category == "Cf" or (category == "Cc" and ch not in WHITESPACE_CONTROLS)


def hidden_character_error(label: str, text: str) -> str | None:
    """Why a name as typed is refused for hidden characters (see hidden_characters), naming the field
    by `label` and the characters by code point, since they cannot be seen; or None."""
    found = hidden_characters(text)
    if not found:
        return None
    codes = ", ".join(f"U+{ord(ch):04X}" for ch in found[:SHOWN_HIDDEN_CHARACTERS])
    more = "…" if len(found) > SHOWN_HIDDEN_CHARACTERS else ""
    if len(found) == 1:
        return f"{label} contains an invisible or text-direction character ({codes}); remove it."
    return f"{label} contains invisible or text-direction characters ({codes}{more}); remove them."


def display_name_error(name: str, *, reserved: tuple[str, ...] = (), typed: str | None = None) -> str | None:
    """Why a (cleaned) display name is not acceptable, or None. `reserved` are names nobody may take
    (the AI's), compared by name_key; `typed` is the name as it was typed, before cleaning, checked for
    hidden characters (which cleaning would otherwise drop without a word)."""
    if typed is not None and (error := hidden_character_error("Display name", typed)):
        return error
    if not name:
        return "Display name is required."
    if len(name) > MAX_DISPLAY_NAME_CHARS:
        return f"Display name must be at most {MAX_DISPLAY_NAME_CHARS} characters."
    if not has_visible_character(name):
        return "Display name needs at least one visible letter, digit or symbol."
    if name_key(name) in {name_key(taken) for taken in reserved}:
        return "That name is the AI's: choose another."
    return None


def password_error(password: str, *, min_chars: int, max_chars: int) -> str | None:
    """Why a password is not acceptable, or None."""
    if len(password) < min_chars:
        return f"Password must be at least {min_chars} characters."
    if len(password) > max_chars:
        return f"Password must be at most {max_chars} characters."
    return None
