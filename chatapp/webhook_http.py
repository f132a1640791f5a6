"""The way out to bots' outgoing webhooks: HTTP with httpx (implements the domain's HookSender).

One client for the process (its connections are reused), no redirects followed (a redirect could lead
to an address the instance refuses), and at most `max_answer_bytes` of an answer read.
"""

from __future__ import annotations

import asyncio
import socket

import httpx

from chatapp.domain.ports import HookCallFailed, HookResponse

MAX_ANSWER_BYTES = 64 * 1024  # a reply of the longest message, with room to spare


class HttpxHookSender:
    """Posts signed webhook calls; failures become HookCallFailed with a message fit for the calls' log."""

    def __init__(self, *, max_answer_bytes: int = MAX_ANSWER_BYTES, max_connections: int = 50) -> None:
        self._max_answer_bytes = max_answer_bytes
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=10),
            trust_env=False,  # no proxy from the environment: calls go where the URL says
        )

    async def addresses(self, host: str) -> list[str]:
        """The IP addresses of a host name (off the event loop: the resolver blocks)."""
        loop = asyncio.get_running_loop()
        try:
            found = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as error:
            raise HookCallFailed(f"Cannot resolve {host}: {error.strerror or error}.") from None
        return sorted({str(info[4][0]) for info in found})

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> HookResponse:
        """POST the body; the answer's status and at most max_answer_bytes of its body."""
        try:
            async with asyncio.timeout(timeout):
                async with self._client.stream("POST", url, content=body, headers=headers, timeout=timeout) as answer:
                    return HookResponse(status=answer.status_code, body=await self._read_some(answer))
        except TimeoutError:
            raise HookCallFailed(f"No answer within {timeout:g} s.") from None
        except httpx.HTTPError as error:
            raise HookCallFailed(f"The call failed: {type(error).__name__}.") from None

    async def _read_some(self, answer: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self._max_answer_bytes:
                break
        return b"".join(chunks)[: self._max_answer_bytes]

    async def close(self) -> None:
        """Close the connections (the server is stopping)."""
        await self._client.aclose()
