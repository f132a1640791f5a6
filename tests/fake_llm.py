"""A fake OpenAI-compatible chat-completions server for tests: real HTTP on 127.0.0.1, no mocks.

The server (uvicorn, a bare ASGI app) runs in a background thread with its own asyncio loop, so sync
tests, async tests and a separate app subprocess can all call it through litellm::

    with FakeLLM() as fake:  # or the `fake_llm` fixture: `from tests.fake_llm import fake_llm_fixture  # noqa: F401`
        fake.push(Script(reply="Hello team", tokens_per_second=50))
        resp = await litellm.acompletion(model="openai/fake-model", api_base=fake.base_url, api_key="k", ...)
        ...
        await fake.wait_until_async(lambda: fake.last_request.done)

Behaviour is scripted: each POST /v1/chat/completions consumes one `Script` from a queue (`push`);
when the queue is empty the default script (`set_default`) is used. Every request is recorded as a
`RecordedRequest` (body, headers, timings, tokens sent, how it ended). Times are `time.monotonic()`
(CLOCK_MONOTONIC: comparable between processes of one machine).

Outside pytest: ``python -m tests.fake_llm --port 8011 --tokens-per-second 50 --reply-tokens 500``
serves until killed (SIGTERM/SIGINT) and prints its base URL; GET /_fake/requests lists what it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import uvicorn

from tests.timing import LIVENESS_S

try:  # the fixture needs pytest; the command line helper does not
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_REPLY",
    "FakeLLM",
    "RecordedRequest",
    "Script",
    "fake_llm",
    "fake_llm_fixture",
    "main",
    "split_tokens",
]

DEFAULT_REPLY = "Hello from the fake LLM."
_TOKEN_RE = re.compile(r"\S+\s*|\s+")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


def split_tokens(text: str) -> list[str]:
    """The fake's tokens: words with their trailing whitespace ("a b" -> ["a ", "b"]); "".join() gives text back."""
    return _TOKEN_RE.findall(text)


def _count_prompt_tokens(messages: Any) -> int:
    """The fake's prompt_tokens: the number of words in all string contents (a deterministic, simple rule)."""
    count = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            count += len(content.split())
        elif isinstance(content, list):  # content parts
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    count += len(part["text"].split())
    return count


@dataclass(frozen=True)
class Script:
    """What the fake does for one request.

    reply: the reply text (split with `split_tokens`); tokens: instead of reply, generate "tok0 tok1 ...".
    tokens_per_second: pacing of the content tokens (None: as fast as possible); the i-th token (from 1)
      goes out i/tokens_per_second after the first chunk. For stream=false the whole body waits that long.
    status: answer at once with this HTTP status and an OpenAI-style JSON error body (None or 200: success);
      error_message overrides the message; 429 carries a Retry-After header of retry_after seconds.
    stall_after: send the role chunk and that many content tokens, then nothing, keeping the connection
      open until the client gives up or the server stops.
    drop_after: send the role chunk and that many content tokens, then abort the TCP connection (no
      terminating chunk, no finish_reason, no [DONE]).
    delay_first: seconds before anything is answered (response headers and first chunk, or the error).
    finish_reason: of the final chunk / choice.
    """

    reply: str | None = None
    tokens: int | None = None
    tokens_per_second: float | None = None
    status: int | None = None
    error_message: str | None = None
    retry_after: float = 1
    stall_after: int | None = None
    drop_after: int | None = None
    delay_first: float = 0.0
    finish_reason: str = "stop"

    def __post_init__(self) -> None:
        if self.reply is not None and self.tokens is not None:
            raise ValueError("give reply or tokens, not both")
        if self.stall_after is not None and self.drop_after is not None:
            raise ValueError("give stall_after or drop_after, not both")
        if self.tokens_per_second is not None and self.tokens_per_second <= 0:
            raise ValueError("tokens_per_second must be > 0 (or None)")

    def token_list(self) -> list[str]:
        """The content tokens this script sends (all of them, before any stall/drop cut)."""
        if self.tokens is not None:
            return split_tokens(" ".join(f"tok{i}" for i in range(self.tokens)))
        return split_tokens(DEFAULT_REPLY if self.reply is None else self.reply)

    @property
    def text(self) -> str:
        """The whole reply text of this script."""
        return "".join(self.token_list())

    @property
    def is_error(self) -> bool:
        return self.status is not None and self.status != 200


@dataclass
class RecordedRequest:
    """One request as the fake saw it. Updated live by the server thread; `done` is set last."""

    index: int
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]  # the parsed JSON body
    script: Script
    received_at: float  # time.monotonic()
    status: int | None = None  # the HTTP status answered (None: nothing was answered)
    first_chunk_at: float | None = None  # first response body bytes (the role chunk; the JSON body)
    first_token_at: float | None = None  # first content token
    last_chunk_at: float | None = None  # last body bytes written
    tokens_sent: int = 0  # content tokens written
    text_sent: str = ""
    usage: dict[str, int] | None = None  # the usage the fake reported (if it got that far)
    finished: bool = False  # the response was completed normally ([DONE] / the whole JSON / the error body)
    disconnected_early: bool = False  # the client went away before the response was complete
    disconnected_at: float | None = None
    dropped: bool = False  # the fake aborted the connection itself (drop_after)
    stopped_by_server: bool = False  # cut because the fake was stopped (e.g. during a stall)
    done: bool = False  # the server side of this request is over (the handler returned)

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages") or []

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def stream_options(self) -> dict[str, Any] | None:
        return self.body.get("stream_options")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def api_key(self) -> str | None:
        """The bearer token of the Authorization header."""
        auth = self.authorization
        if auth and auth.lower().startswith("bearer "):
            return auth[7:]
        return None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["script"] = asdict(self.script)
        return data


class _Stop(Exception):
    """The request must end now (client gone or server stopping); the state is already recorded."""


class _Exchange:
    """One chat-completions request on the server loop: waits that notice a disconnect, writes, abort."""

    def __init__(self, fake: FakeLLM, rec: RecordedRequest, receive: Receive, send: Send) -> None:
        self.fake = fake
        self.rec = rec
        self.send = send
        # After the body, the next receive() returns http.disconnect once the client is gone (uvicorn).
        self.disconnect = asyncio.ensure_future(receive())
        self.disconnect.add_done_callback(self._on_disconnect)
        self.stopping = asyncio.ensure_future(fake._stop_event.wait())

    def _on_disconnect(self, task: asyncio.Future[Any]) -> None:
        rec = self.rec
        if task.cancelled() or rec.finished or rec.dropped or rec.stopped_by_server:
            return
        rec.disconnected_early = True
        rec.disconnected_at = time.monotonic()
        self.fake._changed()

    def close(self) -> None:
        self.disconnect.cancel()
        self.stopping.cancel()

    async def wait(self, seconds: float | None) -> None:
        """Sleep `seconds` (None: forever); raise _Stop early if the client leaves or the server stops."""
        if seconds is not None and seconds <= 0:
            await asyncio.sleep(0)  # let a pending disconnect be noticed
        else:
            await asyncio.wait({self.disconnect, self.stopping}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        await self.check()

    async def check(self) -> None:
        if self.disconnect.done():
            raise _Stop
        if self.stopping.done():
            self.rec.stopped_by_server = True
            await self.abort()
            raise _Stop

    async def abort(self) -> None:
        """Abort the TCP connection (no clean end of the response), then let uvicorn see it."""
        transport = getattr(getattr(self.send, "__self__", None), "transport", None)  # uvicorn's request cycle
        if transport is None:  # pragma: no cover - another server: raising makes it close the connection
            raise RuntimeError("fake LLM: connection aborted on purpose")
        transport.abort()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.disconnect), timeout=1)

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await self.check()
        self.rec.status = status
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def write(self, data: bytes, *, last: bool = False) -> None:
        await self.check()
        now = time.monotonic()
        if self.rec.first_chunk_at is None:
            self.rec.first_chunk_at = now
        self.rec.last_chunk_at = now
        if last:
            self.rec.finished = True  # before the send: a disconnect after the last bytes is not "early"
        await self.send({"type": "http.response.body", "body": data, "more_body": not last})
        self.fake._changed()


class _Server(uvicorn.Server):
    """uvicorn's server, but its main loop waits for the fake's stop event instead of polling every 0.1 s."""

    def __init__(self, config: uvicorn.Config, fake: FakeLLM) -> None:
        super().__init__(config)
        self._fake = fake

    async def main_loop(self) -> None:
        await self.on_tick(0)  # the default headers (date, server)
        await self._fake._stop_event.wait()


class FakeLLM:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 (a free port unless `port` is given)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, default: Script | None = None) -> None:
        self.host = host
        self.port = port
        self._default = default or Script()
        self._queue: deque[Script] = deque()
        self._requests: list[RecordedRequest] = []
        self._cond = threading.Condition(threading.RLock())
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event = asyncio.Event()
        self._sock: socket.socket | None = None
        self._startup_error: BaseException | None = None

    # --- addresses -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The api_base for litellm / the openai SDK, e.g. http://127.0.0.1:PORT/v1."""
        return f"{self.url}/v1"

    # --- scripting -----------------------------------------------------------------------------------

    def push(self, *scripts: Script) -> FakeLLM:
        """Queue scripts; each request consumes the oldest one."""
        with self._cond:
            self._queue.extend(scripts)
        return self

    enqueue = push

    def set_default(self, script: Script) -> None:
        """The script used when the queue is empty."""
        with self._cond:
            self._default = script

    @property
    def default(self) -> Script:
        return self._default

    @property
    def pending_scripts(self) -> int:
        with self._cond:
            return len(self._queue)

    def reset(self) -> None:
        """Forget recorded requests and queued scripts (the default script stays)."""
        with self._cond:
            self._queue.clear()
            self._requests.clear()
            self._cond.notify_all()

    def _next_script(self) -> Script:
        with self._cond:
            return self._queue.popleft() if self._queue else self._default

    # --- recorded requests ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The chat-completions requests so far, oldest first (a copy of the list; the items are live)."""
        with self._cond:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest | None:
        with self._cond:
            return self._requests[-1] if self._requests else None

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[], Any], timeout: float = LIVENESS_S) -> None:
        """Block until predicate() is true (re-checked on every server-side change); TimeoutError otherwise.

        Blocking: from an async test use `await wait_until_async(...)` so the client loop keeps running.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake LLM: condition not met within {timeout} s")
                self._cond.wait(min(remaining, 0.05))

    def wait_for_requests(self, n: int, timeout: float = LIVENESS_S) -> list[RecordedRequest]:
        """Block until at least n requests were received; return them."""
        self.wait_until(lambda: len(self._requests) >= n, timeout)
        return self.requests

    async def wait_until_async(self, predicate: Callable[[], Any], timeout: float = LIVENESS_S) -> None:
        """Like wait_until, polling every 10 ms without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"fake LLM: condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    async def wait_for_requests_async(self, n: int, timeout: float = LIVENESS_S) -> list[RecordedRequest]:
        await self.wait_until_async(lambda: len(self._requests) >= n, timeout)
        return self.requests

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        """Bind the port and serve in a background thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("fake LLM already started")
        self._stop_event = asyncio.Event()
        self._startup_error = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            interface="asgi3",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
        self._server = _Server(config, self)
        self._thread = threading.Thread(target=self._run, name=f"fake-llm-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + LIVENESS_S
        while not self._server.started:
            if self._startup_error is not None or not self._thread.is_alive():
                raise RuntimeError(f"fake LLM failed to start: {self._startup_error!r}")
            if time.monotonic() > deadline:  # pragma: no cover
                raise RuntimeError(f"fake LLM did not start within {LIVENESS_S:.0f} s")
            time.sleep(0.002)
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            assert self._server is not None and self._sock is not None
            loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported by start()
            self._startup_error = exc
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop serving: stalled/paced responses are aborted, the thread is joined."""
        if self._thread is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._stop_event.set)
        assert self._server is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the ASGI app (runs on the server thread's loop) ---------------------------------------------

    async def _app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - lifespan is off, no websockets
            return
        method, path = scope["method"], scope["path"].rstrip("/")
        raw = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
            await self._chat(scope, bytes(raw), receive, send)
        elif method == "GET" and path in ("/v1/models", "/models"):
            models = {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "fake"}]}
            await _send_json(send, 200, models)
        elif method == "GET" and path == "/_fake/requests":
            await _send_json(send, 200, [r.to_dict() for r in self.requests])
        else:
            await _send_json(send, 404, _error_body(404, f"no route {method} {path}"))

    async def _chat(self, scope: dict[str, Any], raw: bytes, receive: Receive, send: Send) -> None:
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            await _send_json(send, 400, _error_body(400, f"invalid JSON body: {exc}"))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        script = self._next_script()
        with self._cond:
            rec = RecordedRequest(
                index=len(self._requests),
                method=scope["method"],
                path=scope["path"],
                headers=headers,
                body=body,
                script=script,
                received_at=time.monotonic(),
            )
            self._requests.append(rec)
            self._cond.notify_all()
        ex = _Exchange(self, rec, receive, send)
        try:
            if script.delay_first:
                await ex.wait(script.delay_first)
            if script.is_error:
                await self._error(ex, script)
            elif rec.stream:
                await self._stream(ex, script, body)
            else:
                await self._complete(ex, script, body)
        except _Stop:
            pass
        finally:
            ex.close()
            rec.done = True
            self._changed()

    async def _error(self, ex: _Exchange, script: Script) -> None:
        status = script.status or 500
        data = json.dumps(_error_body(status, script.error_message)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        if status == 429:
            headers.append((b"retry-after", _num(script.retry_after).encode()))
        await ex.start(status, headers)
        await ex.write(data, last=True)

    async def _stream(self, ex: _Exchange, script: Script, body: dict[str, Any]) -> None:
        rec = ex.rec
        model = str(body.get("model") or "fake-model")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        tokens = script.token_list()
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def event(delta: dict[str, Any] | None, finish_reason: str | None = None, usage: Any = None) -> bytes:
            chunk: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                chunk["usage"] = usage
            return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

        await ex.start(
            200,
            [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-request-id", ident.encode()),
            ],
        )
        await ex.write(event({"role": "assistant", "content": "", "refusal": None}))
        started = time.monotonic()
        cut = script.stall_after if script.stall_after is not None else script.drop_after
        for i, token in enumerate(tokens):
            if cut is not None and i >= cut:
                break
            if script.tokens_per_second:
                await ex.wait(started + (i + 1) / script.tokens_per_second - time.monotonic())
            else:
                await ex.wait(0)
            await ex.write(event({"content": token}))
            rec.tokens_sent += 1
            rec.text_sent += token
            if rec.first_token_at is None:
                rec.first_token_at = rec.last_chunk_at
        if script.stall_after is not None:
            await ex.wait(None)  # until the client leaves or the server stops: both raise _Stop
        if script.drop_after is not None:
            rec.dropped = True
            await ex.abort()
            return
        usage = _usage(body, rec.tokens_sent)
        rec.usage = usage
        tail = event({}, script.finish_reason)
        if include_usage:
            tail += event(None, usage=usage)
        await ex.write(tail)
        await ex.write(b"data: [DONE]\n\n", last=True)

    async def _complete(self, ex: _Exchange, script: Script, body: dict[str, Any]) -> None:
        rec = ex.rec
        tokens = script.token_list()
        cut = script.stall_after if script.stall_after is not None else script.drop_after
        sent = tokens if cut is None else tokens[:cut]
        if script.tokens_per_second:
            await ex.wait(len(sent) / script.tokens_per_second)  # the "generation" time
        if script.stall_after is not None:
            await ex.wait(None)
        if script.drop_after is not None:
            rec.dropped = True
            await ex.abort()
            return
        text = "".join(sent)
        usage = _usage(body, len(sent))
        data = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or "fake-model"),
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": script.finish_reason,
                }
            ],
            "usage": usage,
        }
        raw = json.dumps(data).encode()
        await ex.start(200, [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())])
        rec.tokens_sent, rec.text_sent, rec.usage = len(sent), text, usage
        await ex.write(raw, last=True)
        rec.first_token_at = rec.first_chunk_at if sent else None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt_tokens = _count_prompt_tokens(body.get("messages"))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


_ERRORS = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", None, "Not found."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (fake)."),
    500: ("server_error", None, "The server had an error while processing your request (fake)."),
    503: ("server_error", None, "The engine is currently overloaded (fake)."),
}


def _error_body(status: int, message: str | None) -> dict[str, Any]:
    fallback = ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status} (fake).")
    kind, code, default_message = _ERRORS.get(status, fallback)
    return {"error": {"message": message or default_message, "type": kind, "param": None, "code": code}}


async def _send_json(send: Send, status: int, data: Any) -> None:
    raw = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw, "more_body": False})


if pytest is not None:

    @pytest.fixture(name="fake_llm")
    def fake_llm_fixture() -> Iterator[FakeLLM]:
        """The `fake_llm` fixture: a started FakeLLM for one test (default script: DEFAULT_REPLY, unpaced).

        Use it with `from tests.fake_llm import fake_llm_fixture  # noqa: F401` and a `fake_llm` parameter
        (importing under another name than the fixture's keeps ruff's F811 quiet).
        """
        with FakeLLM() as fake:
            yield fake

    # The same fixture under its own name, for `from tests.fake_llm import fake_llm` (then ruff wants F401 and F811
    # silenced on that import).
    fake_llm = fake_llm_fixture


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT: `python -m tests.fake_llm --port 8011 --tokens-per-second 50 --reply-tokens 500`."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_llm", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    parser.add_argument("--tokens-per-second", type=float, default=None, help="pacing (default: unpaced)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--reply-tokens", type=int, default=None, help='reply with N tokens "tok0 tok1 ..."')
    group.add_argument("--reply", default=None, help="reply with this text")
    parser.add_argument("--delay-first", type=float, default=0.0, help="seconds before the first chunk")
    args = parser.parse_args(argv)
    default = Script(
        reply=args.reply,
        tokens=args.reply_tokens,
        tokens_per_second=args.tokens_per_second,
        delay_first=args.delay_first,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with FakeLLM(args.host, args.port, default=default) as fake:
        print(f"fake LLM serving on {fake.base_url}", flush=True)
        stop.wait()
    print(f"fake LLM stopped after {len(fake.requests)} requests", flush=True)


if __name__ == "__main__":
    main()
