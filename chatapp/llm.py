"""The way to the language models: every call goes through litellm (implements the domain's LlmClient).

litellm takes seconds and ~200 MB to import, so it is imported once, in a worker thread: at start-up by
`warm_up()` in the background, or by the first call. Its model cost map is read from the installed
package (LITELLM_LOCAL_MODEL_COST_MAP), never fetched. Provider failures become LlmError with a message
that is safe to show in a room: no key, no URL, no provider internals.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from chatapp.domain.errors import LlmError, no_model_configured
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
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):  # its INFO lines, once per request,
                logging.getLogger(name).setLevel(logging.WARNING)  # came out twice (its handler and ours)
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


class RouterConfigError(ValueError):
    """CHATAPP_AI_ROUTER_CONFIG cannot be used; the message says why (and never holds a key)."""


def read_router_config(path: Path) -> dict[str, Any]:
    """Read a litellm Router YAML, the format litellm proxy users have: `model_list` (entries of
    `model_name` and `litellm_params`), and `fallbacks` at the top, under `router_settings` or under
    `litellm_settings`; other `router_settings` go to the Router as they are."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise RouterConfigError(f"cannot read the AI router config {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise RouterConfigError(f"the AI router config {path} is not valid YAML") from None
    models = data.get("model_list") if isinstance(data, dict) else None
    if not isinstance(models, list) or not models:
        raise RouterConfigError(f"the AI router config {path} has no model_list")
    for entry in models:
        usable = isinstance(entry, dict) and entry.get("model_name") and isinstance(entry.get("litellm_params"), dict)
        if not usable:
            raise RouterConfigError(f"every model_list entry in {path} needs model_name and litellm_params")
    router_settings = data.get("router_settings") or {}
    litellm_settings = data.get("litellm_settings") or {}
    if not isinstance(router_settings, dict) or not isinstance(litellm_settings, dict):
        raise RouterConfigError(f"router_settings and litellm_settings in {path} must be mappings")
    options = {k: v for k, v in router_settings.items() if k != "model_list"}
    fallbacks = data.get("fallbacks") or router_settings.get("fallbacks") or litellm_settings.get("fallbacks")
    if fallbacks:
        options["fallbacks"] = fallbacks
    return {"model_list": models, **options}


class LitellmClient:
    """LlmClient on litellm: one provider configuration (API base and key) for every model, or a
    litellm Router (CHATAPP_AI_ROUTER_CONFIG) whose model names are the models offered, with its
    fallbacks between deployments."""

    def __init__(
        self,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        read_timeout: float = 60,
        retries: int = 1,
        router_config: Path | None = None,
    ) -> None:
        self._api_base = api_base or None
        self._api_key = api_key or None
        self._read_timeout = read_timeout
        self._retries = retries
        self._router_config = read_router_config(router_config) if router_config else None
        self._router: Any = None
        self._router_lock = threading.Lock()

    def router_models(self) -> tuple[str, ...]:
        """The model names of the router config, in order (empty without one)."""
        if self._router_config is None:
            return ()
        return tuple(dict.fromkeys(entry["model_name"] for entry in self._router_config["model_list"]))

    async def warm_up(self) -> None:
        """Import litellm (and build the router) in a worker thread, so the first reply does not pay."""
        await _litellm_off_loop()
        if self._router_config is not None:
            await asyncio.to_thread(self._get_router)

    def _get_router(self) -> Any:
        """The litellm Router, built once (blocking: call it from a worker thread)."""
        config = self._router_config
        assert config is not None, "only called with a router config"
        with self._router_lock:
            if self._router is None:
                litellm = _litellm()
                accepted = inspect.signature(litellm.Router.__init__).parameters
                options = {k: v for k, v in config.items() if k in accepted}
                ignored = sorted(set(config) - set(options))
                if ignored:
                    log.warning("AI router config: ignoring settings litellm's Router does not take: %s", ignored)
                options.setdefault("num_retries", self._retries)
                options.setdefault("timeout", self._read_timeout)
                self._router = litellm.Router(**options)
            return self._router

    def _deployment_model(self, model: str) -> str:
        """The provider model behind a router model name (for prices); the name itself otherwise."""
        for entry in (self._router_config or {}).get("model_list", ()):
            if entry["model_name"] == model:
                return str(entry["litellm_params"].get("model", model))
        return model

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """What the tokens cost in US dollars by litellm's (local) price map; None for unknown models."""
        if _module is None or not model:
            return None
        try:
            prompt_cost, completion_cost = _module.cost_per_token(
                model=self._deployment_model(model), prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception:  # litellm raises for models it has no prices for
            return None
        return float(prompt_cost + completion_cost)

    async def stream(self, *, model: str, messages: list[dict[str, str]]) -> LitellmStream:
        """Start a streamed completion; raises LlmError if the provider refuses or cannot be reached."""
        if not model:
            raise no_model_configured()
        litellm = await _litellm_off_loop()
        options: dict[str, Any]
        if self._router_config is not None:
            router = self._router or await asyncio.to_thread(self._get_router)
            complete, options = router.acompletion, {}
        else:
            complete = litellm.acompletion
            options = {"timeout": self._read_timeout, "num_retries": self._retries}
            if self._api_base:
                options["api_base"] = self._api_base
            if self._api_key:
                options["api_key"] = self._api_key
        try:
            response = await complete(
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
