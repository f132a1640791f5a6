"""The fake OpenAI-compatible provider (tests/fake_llm.py), driven through REAL litellm HTTP calls.

These tests also pin down how litellm 1.110 behaves against a provider that errors, stalls or drops,
which the AI participant relies on: which exception comes out, and how a stream must be closed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network
import litellm
from litellm.exceptions import MidStreamFallbackError  # not exported as litellm.MidStreamFallbackError

from tests.fake_llm import FakeLLM, Script, fake_llm_fixture, split_tokens  # noqa: F401 - the fake_llm fixture
from tests.timing import LIVENESS_S, TIME_SCALE, eventually

SCHEDULE_SLACK_S = 1.0 * TIME_SCALE  # how late a paced reply may end on a loaded machine

MODEL = "openai/fake-model"
MESSAGES = [
    {"role": "system", "content": "You are a helpful member of the room."},
    {"role": "user", "content": "alice: what is the plan for today?"},
]
REPLY = "Hello there, team!  Two spaces,\na newline and the end."


async def open_stream(fake: FakeLLM, timeout: float = LIVENESS_S, **kwargs: Any) -> litellm.CustomStreamWrapper:
    return await litellm.acompletion(
        model=MODEL,
        api_base=fake.base_url,
        api_key="test-key",
        messages=kwargs.pop("messages", MESSAGES),
        stream=True,
        stream_options={"include_usage": True},
        num_retries=0,
        timeout=timeout,
        **kwargs,
    )


def content_of(chunk: Any) -> str:
    return (chunk.choices[0].delta.content or "") if chunk.choices else ""


# --- the happy path ------------------------------------------------------------------------------------


async def test_streamed_text_equals_the_reply_and_usage_comes_last(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(reply=REPLY))
    resp = await open_stream(fake_llm)
    chunks = [chunk async for chunk in resp]

    assert "".join(content_of(c) for c in chunks) == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    assert (usage.prompt_tokens, usage.completion_tokens) == (15, len(split_tokens(REPLY)))
    rec = fake_llm.last_request
    assert rec.usage == {"prompt_tokens": 15, "completion_tokens": 10, "total_tokens": 25}
    assert rec.finished and rec.done and not rec.disconnected_early and rec.tokens_sent == 10
    assert rec.text_sent == REPLY


async def test_the_wire_format_is_openai_chunks_then_usage_then_done(fake_llm: FakeLLM) -> None:
    """The raw SSE (no litellm): role chunk, content deltas, finish chunk, usage-only chunk, [DONE]."""
    fake_llm.push(Script(reply="a b"))
    body = {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{fake_llm.base_url}/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [httpx.Response(200, content=e).json() for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert [c["choices"][0]["delta"] for c in chunks[:4]] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "a "},
        {"content": "b"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:4]] == [None, None, None, "stop"]
    assert all(c["usage"] is None for c in chunks[:4])
    assert chunks[4]["choices"] == [] and chunks[4]["usage"]["completion_tokens"] == 2
    assert len(chunks) == 5


async def test_the_recorded_request_holds_what_was_sent(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(reply="Noted."))
    resp = await litellm.acompletion(
        model=MODEL,
        api_base=fake_llm.base_url,
        api_key="test-key",
        messages=MESSAGES,
        temperature=0.25,
        max_tokens=50,
        num_retries=0,
        timeout=LIVENESS_S,
    )
    assert resp.choices[0].message.content == "Noted."
    assert resp.usage.prompt_tokens == 15 and resp.usage.completion_tokens == 1
    (rec,) = fake_llm.requests
    assert rec.messages == MESSAGES
    assert rec.model == "fake-model" and rec.stream is False and rec.stream_options is None
    assert rec.body["temperature"] == 0.25 and rec.body["max_tokens"] == 50
    assert rec.authorization == "Bearer test-key" and rec.api_key == "test-key"
    assert rec.path == "/v1/chat/completions" and rec.status == 200 and rec.finished


async def test_scripts_are_consumed_in_order_then_the_default(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(reply="one"), Script(tokens=3))
    fake_llm.set_default(Script(reply="default"))
    replies = []
    for _ in range(3):
        resp = await open_stream(fake_llm)
        replies.append("".join([content_of(c) async for c in resp]))
    assert replies == ["one", "tok0 tok1 tok2", "default"]
    assert fake_llm.pending_scripts == 0 and len(fake_llm.wait_for_requests(3)) == 3
    assert all(r.stream and r.stream_options == {"include_usage": True} for r in fake_llm.requests)


def test_a_sync_caller_is_served_too(fake_llm: FakeLLM) -> None:
    fake_llm.set_default(Script(reply="from a sync test"))
    resp = litellm.completion(
        model=MODEL, api_base=fake_llm.base_url, api_key="k", messages=MESSAGES, num_retries=0, timeout=LIVENESS_S
    )
    assert resp.choices[0].message.content == "from a sync test"
    assert fake_llm.wait_for_requests(1)[0].done


# --- pacing ----------------------------------------------------------------------------------------------


async def test_pacing_20_tokens_at_100_per_second_takes_about_0_2_s(fake_llm: FakeLLM) -> None:
    """Tokens go out on a schedule from the first (a late one does not delay the next): 20 waits of 10 ms, and
    not much more on a loaded machine; an unpaced reply takes a fraction of that, measured beside it."""
    fake_llm.push(Script(tokens=20, tokens_per_second=100), Script(tokens=20))
    received = []
    for _ in range(2):
        resp = await open_stream(fake_llm)
        received.append([time.monotonic() async for chunk in resp if content_of(chunk)])
    assert [len(times) for times in received] == [20, 20]
    paced, unpaced = fake_llm.requests
    paced_s, unpaced_s = (r.last_chunk_at - r.first_chunk_at for r in (paced, unpaced))
    assert 0.18 < paced_s < 0.2 + SCHEDULE_SLACK_S
    assert unpaced_s < paced_s / 2, (paced_s, unpaced_s)
    # litellm hands each token on as it comes: the first arrived before the paced reply's last was sent
    assert received[0][0] < paced.last_chunk_at


async def test_delay_first_holds_back_the_answer(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(reply="late", delay_first=0.3))
    started = time.monotonic()
    resp = await open_stream(fake_llm)
    text = "".join([content_of(c) async for c in resp])
    assert text == "late" and time.monotonic() - started >= 0.3
    rec = fake_llm.last_request
    assert rec.first_chunk_at - rec.received_at >= 0.3


# --- errors ----------------------------------------------------------------------------------------------


async def test_500_raises_internal_server_error_without_retry(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(status=500))
    with pytest.raises(litellm.InternalServerError) as caught:
        await open_stream(fake_llm)
    assert caught.value.status_code == 500 and "(fake)" in str(caught.value)
    # Not litellm.APIError: litellm's exceptions share openai.APIError as their common base.
    assert not isinstance(caught.value, litellm.APIError)
    assert len(fake_llm.requests) == 1  # num_retries=0 also stops the openai SDK's own retries


async def test_429_raises_rate_limit_error_with_retry_after(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(status=429, retry_after=7))
    with pytest.raises(litellm.RateLimitError) as caught:
        await open_stream(fake_llm)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert len(fake_llm.requests) == 1 and fake_llm.last_request.status == 429


async def test_a_stall_is_cut_by_asyncio_timeout_and_the_fake_sees_the_disconnect(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(tokens=10, stall_after=3))
    text, cut_from = "", float("inf")
    with pytest.raises(TimeoutError):  # the builtin, from asyncio.timeout
        async with asyncio.timeout(LIVENESS_S) as deadline:
            resp = await open_stream(fake_llm, timeout=LIVENESS_S)
            async for chunk in resp:
                text += content_of(chunk)
                if text == "tok0 tok1 tok2 ":  # the stall comes next: cut it half a second from now
                    cut_from = time.monotonic()
                    deadline.reschedule(asyncio.get_running_loop().time() + 0.5)
    assert time.monotonic() - cut_from >= 0.45
    assert text == "tok0 tok1 tok2 "
    rec = fake_llm.last_request
    await fake_llm.wait_until_async(lambda: rec.done)  # cancellation closed the connection
    assert rec.disconnected_early and not rec.finished and rec.tokens_sent == 3


async def test_a_stall_is_cut_by_litellm_read_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(tokens=10, stall_after=2))
    text = ""
    with pytest.raises(litellm.Timeout):
        resp = await open_stream(fake_llm, timeout=1.0)  # per read, not a deadline for the whole reply
        async for chunk in resp:
            text += content_of(chunk)
    assert text == "tok0 tok1 "
    rec = fake_llm.last_request
    await fake_llm.wait_until_async(lambda: rec.done)
    assert rec.disconnected_early and rec.tokens_sent == 2


async def test_a_dropped_stream_raises_midway_after_partial_text(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(tokens=10, drop_after=3))
    text = ""
    resp = await open_stream(fake_llm)
    with pytest.raises(MidStreamFallbackError) as caught:
        async for chunk in resp:
            text += content_of(chunk)
    assert text == "tok0 tok1 tok2 "
    error = caught.value
    # litellm 1.110 wraps the APIConnectionError: `except litellm.APIConnectionError` does NOT catch it.
    assert isinstance(error.original_exception, litellm.APIConnectionError)
    assert not isinstance(error, litellm.APIConnectionError)
    assert isinstance(error, litellm.ServiceUnavailableError)
    assert error.generated_content == text and error.is_pre_first_chunk is False
    rec = fake_llm.last_request
    assert rec.dropped and not rec.finished and not rec.disconnected_early and rec.tokens_sent == 3


# --- closing a stream early --------------------------------------------------------------------------------


async def test_aclose_makes_the_provider_see_the_disconnect_at_once(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(tokens=2000, tokens_per_second=200))  # 10 s if read to the end
    resp = await open_stream(fake_llm)
    received = 0
    async for chunk in resp:
        received += bool(content_of(chunk))
        if received == 3:
            break
    await resp.aclose()
    rec = fake_llm.last_request
    await fake_llm.wait_until_async(lambda: rec.done)
    assert rec.disconnected_early and not rec.finished
    assert rec.tokens_sent < 2000  # long before the end


async def test_break_without_aclose_leaves_the_provider_generating(fake_llm: FakeLLM) -> None:
    """Why aclose() matters: after a bare `break` the HTTP stream stays open and the fake keeps sending."""
    fake_llm.push(Script(tokens=100, tokens_per_second=200))
    resp = await open_stream(fake_llm)
    async for chunk in resp:
        if content_of(chunk):
            break
    rec = fake_llm.last_request
    sent_at_break = rec.tokens_sent
    await eventually(lambda: rec.tokens_sent > sent_at_break + 10)
    assert not rec.disconnected_early
    await resp.aclose()
    await fake_llm.wait_until_async(lambda: rec.done)
    assert rec.disconnected_early


# --- the server itself --------------------------------------------------------------------------------------


async def test_stopping_the_fake_ends_a_stalled_stream() -> None:
    fake = FakeLLM().start()
    fake.push(Script(tokens=5, stall_after=1))
    resp = await open_stream(fake)
    first = [content_of(c) async for c in _take_content(resp, 1)]
    assert first == ["tok0 "]
    await asyncio.to_thread(fake.stop)
    rec = fake.last_request
    # Ended by stop() itself, not by uvicorn's graceful-shutdown timeout cancelling it.
    assert rec.done and rec.stopped_by_server and not rec.disconnected_early
    with pytest.raises(MidStreamFallbackError):
        async for _ in resp:
            pass


async def _take_content(resp: Any, n: int) -> Any:
    async for chunk in resp:
        if content_of(chunk):
            yield chunk
            n -= 1
            if n == 0:
                return


def test_start_returns_once_serving_and_the_port_is_free_again_after_stop() -> None:
    fake = FakeLLM().start()
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"
    assert httpx.get(f"{fake.base_url}/models").json()["data"][0]["id"] == "fake-model"
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.base_url}/models")


def test_the_command_line_server_runs_until_killed() -> None:
    root = Path(__file__).parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_llm", "--tokens-per-second", "1000", "--reply-tokens", "5"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("fake LLM serving on http://127.0.0.1:"), line
        base_url = line.split()[-1]
        body = {"model": "m", "messages": MESSAGES}
        reply = httpx.post(f"{base_url}/chat/completions", json=body, timeout=LIVENESS_S).json()
        assert reply["choices"][0]["message"]["content"] == "tok0 tok1 tok2 tok3 tok4"
        (seen,) = httpx.get(f"{base_url.removesuffix('/v1')}/_fake/requests", timeout=LIVENESS_S).json()
        assert seen["body"]["messages"] == MESSAGES and seen["tokens_sent"] == 5
    finally:
        proc.terminate()
        assert proc.wait(timeout=LIVENESS_S) == 0
        proc.stdout.close()
