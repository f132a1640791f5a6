"""chatapp/llm.py through real litellm HTTP calls to the fake provider: text, usage, stop, failures."""

from __future__ import annotations

import asyncio
import socket

import pytest

from chatapp.domain.errors import LlmError
from chatapp.llm import LitellmClient
from tests.fake_llm import FakeLLM, Script, fake_llm_fixture  # noqa: F401 - the fake_llm fixture
from tests.timing import LIVENESS_S

MODEL = "openai/fake-model"
KEY = "sk-test-secret-123"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Ann: hello there"}]


def client(fake: FakeLLM, **options) -> LitellmClient:
    return LitellmClient(api_base=fake.base_url, api_key=KEY, retries=0, **options)


async def collect(fake: FakeLLM, **options) -> tuple[str, object]:
    stream = await client(fake, **options).stream(model=MODEL, messages=MESSAGES)
    text = "".join([delta async for delta in stream])
    return text, stream.usage


async def test_text_streams_and_usage_comes_from_the_provider(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(reply="Hello Ann, here is the plan."))
    text, usage = await collect(fake_llm)
    assert text == "Hello Ann, here is the plan."
    request = fake_llm.last_request
    assert usage.completion_tokens == request.tokens_sent and usage.prompt_tokens == request.usage["prompt_tokens"]
    assert request.messages == MESSAGES and request.stream is True
    assert request.stream_options == {"include_usage": True}
    assert request.api_key == KEY


async def test_closing_the_stream_disconnects_the_provider(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(tokens=2000, tokens_per_second=100))  # 20 s if read to the end
    stream = await client(fake_llm).stream(model=MODEL, messages=MESSAGES)
    received = 0
    async for _ in stream:
        received += 1
        if received == 5:
            break
    await stream.aclose()
    request = fake_llm.last_request
    await fake_llm.wait_until_async(lambda: request.done)
    assert request.disconnected_early and request.tokens_sent < 2000


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        (Script(status=500), "unavailable"),
        (Script(status=429), "rate_limited"),
        (Script(status=401), "refused"),
        (Script(status=404), "refused"),
        (
            Script(status=400, error_message="This model's maximum context length is 8192 tokens. Please reduce it."),
            "too_long",
        ),
    ],
)
async def test_refusals_and_errors_become_safe_room_notices(fake_llm: FakeLLM, script: Script, kind: str) -> None:
    fake_llm.push(script)
    with pytest.raises(LlmError) as caught:
        await collect(fake_llm)
    assert caught.value.kind == kind
    assert KEY not in caught.value.message and "127.0.0.1" not in caught.value.message
    assert len(fake_llm.requests) == 1  # retries=0: one attempt


async def test_a_stall_is_a_timeout_and_closes_the_connection(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(tokens=50, stall_after=3))
    with pytest.raises(LlmError) as caught:
        await collect(fake_llm, read_timeout=0.5)
    assert caught.value.kind == "timeout"
    request = fake_llm.last_request
    await fake_llm.wait_until_async(lambda: request.done)
    assert request.disconnected_early


async def test_a_dropped_stream_is_reported_after_the_partial_text(fake_llm: FakeLLM) -> None:
    fake_llm.push(Script(tokens=50, drop_after=5))
    stream = await client(fake_llm).stream(model=MODEL, messages=MESSAGES)
    received = []
    with pytest.raises(LlmError) as caught:
        async for delta in stream:
            received.append(delta)
    assert caught.value.kind == "dropped"
    assert "".join(received) == "tok0 tok1 tok2 tok3 tok4 "


async def test_no_model_and_no_server_are_clear_errors() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    nobody = LitellmClient(api_base=f"http://127.0.0.1:{port}/v1", api_key=KEY, retries=0)
    with pytest.raises(LlmError) as not_configured:
        await nobody.stream(model="", messages=MESSAGES)
    assert not_configured.value.kind == "not_configured"
    with pytest.raises(LlmError) as unreachable:
        await asyncio.wait_for(nobody.stream(model=MODEL, messages=MESSAGES), timeout=LIVENESS_S)
    assert unreachable.value.kind == "unavailable"


def test_tokens_are_counted_offline() -> None:
    counter = LitellmClient()
    assert counter.count_tokens(MODEL, "hello world") == 2
    assert counter.count_tokens("ollama/llama3.2", "hello world") > 0  # unknown to OpenAI's tokenizer
