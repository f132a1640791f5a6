"""The way to the language models: every call goes through litellm (implements the domain's LlmClient).

litellm takes seconds and ~200 MB to import, so it is imported once, in a worker thread: at start-up by
`warm_up()` in the background, or by the first call. Its model cost map is read from the installed
package (LITELLM_LOCAL_MODEL_COST_MAP), never fetched. Provider failures become LlmError with a message
that is safe to show in a room: no key, no URL, no provider internals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from chatapp.domain.errors import LlmError
from chatapp.domain.ports import LlmUsage

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

log = logging.getLogger(__name__)

_module: ModuleType | None = None
_module_lock = threading.Lock()


def _litellm() -> ModuleType:
    """Import litellm once (blocking: call it from a worker thread)."""
    global _module
    with _module_lock:
        if _module is None:
            import litellm

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            litellm.redact_messages_in_exceptions = True  # prompts never end up in error texts or logs
            _module = litellm
        return _module


async def _litellm_off_loop() -> ModuleType:
    return _module if _module is not None else await asyncio.to_thread(_litellm)


class LitellmStream:
    """A streamed reply: text deltas as they come; usage once the provider sends it."""

    def __init__(self, response: Any, litellm: ModuleType) -> None:
        self._response = response
        self._litellm = litellm
        self.usage: LlmUsage | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._deltas()

    async def _deltas(self) -> AsyncIterator[str]:
        try:
            async for chunk in self._response:
                usage = getattr(chunk, "usage", None)
                if usage is not None and getattr(usage, "completion_tokens", None) is not None:
                    self.usage = LlmUsage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))
                for choice in chunk.choices or ():
                    delta = getattr(choice, "delta", None)
                    text = getattr(delta, "content", None) if delta is not None else None
                    if text:
                        yield text
        except LlmError:
            raise
        except Exception as exc:
            raise _as_llm_error(exc, self._litellm, midstream=True) from None

    async def aclose(self) -> None:
        """Stop: close the HTTP stream, so the provider stops generating too."""
        await self._response.aclose()


class LitellmClient:
    """LlmClient on litellm: one provider configuration (API base and key) for every model."""

    def __init__(
        self, *, api_base: str | None = None, api_key: str | None = None, read_timeout: float = 60, retries: int = 1
    ) -> None:
        self._api_base = api_base or None
        self._api_key = api_key or None
        self._read_timeout = read_timeout
        self._retries = retries

    async def warm_up(self) -> None:
        """Import litellm in a worker thread, so the first reply does not pay for it."""
        await _litellm_off_loop()

    async def stream(self, *, model: str, messages: list[dict[str, str]]) -> LitellmStream:
        """Start a streamed completion; raises LlmError if the provider refuses or cannot be reached."""
        if not model:
            raise LlmError(
                "not_configured", "No AI model is configured: the server admin sets CHATAPP_AI_MODEL (see the README)."
            )
        litellm = await _litellm_off_loop()
        options: dict[str, Any] = {"timeout": self._read_timeout, "num_retries": self._retries}
        if self._api_base:
            options["api_base"] = self._api_base
        if self._api_key:
            options["api_key"] = self._api_key
        try:
            response = await litellm.acompletion(
                model=model, messages=messages, stream=True, stream_options={"include_usage": True}, **options
            )
        except Exception as exc:
            raise _as_llm_error(exc, litellm, midstream=False) from None
        return LitellmStream(response, litellm)

    def count_tokens(self, model: str, text: str) -> int:
        """Tokens in `text` for the model (offline; an unknown model counts with cl100k).

        Blocking (it may import litellm and it runs the tokenizer): call it from a worker thread.
        """
        return _litellm().token_counter(model=model or "gpt-4o-mini", text=text)


def _as_llm_error(exc: Exception, litellm: ModuleType, *, midstream: bool) -> LlmError:
    """A failure as a kind and a message fit for a room; the details go to the log only."""
    # The class and status only: provider error texts can echo request details.
    log.warning("AI provider call failed: %s (status %s)", type(exc).__name__, getattr(exc, "status_code", "-"))
    too_long = _classes(getattr(litellm, "ContextWindowExceededError", None))
    declined = _classes(getattr(litellm, "ContentPolicyViolationError", None))
    if isinstance(exc, too_long):
        return LlmError("too_long", "The conversation is too long for the AI model. Try a model with a larger context.")
    if isinstance(exc, declined):
        return LlmError("declined", "The AI provider declined to answer this (content policy).")
    dropped = _classes(getattr(litellm.exceptions, "MidStreamFallbackError", None), litellm.APIConnectionError)
    refused = _classes(
        litellm.AuthenticationError,
        litellm.BadRequestError,
        litellm.NotFoundError,
        getattr(litellm, "PermissionDeniedError", None),
    )
    if isinstance(exc, TimeoutError | litellm.Timeout):
        return LlmError("timeout", "The AI provider did not answer in time.")
    if isinstance(exc, litellm.RateLimitError):
        return LlmError("rate_limited", "The AI provider is rate-limiting requests. Try again in a moment.")
    if midstream and isinstance(exc, dropped):
        return LlmError("dropped", "The connection to the AI provider broke off mid-reply.")
    if isinstance(exc, refused):
        return LlmError("refused", "The AI provider refused the request. Check the model name and the API key.")
    return LlmError("unavailable", "The AI provider is unavailable right now.")


def _classes(*candidates: type | None) -> tuple[type, ...]:
    return tuple(c for c in candidates if isinstance(c, type))
