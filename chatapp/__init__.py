"""chatapp: self-hosted team chat where an AI is a member of the room."""

__version__ = "0.1.0"
