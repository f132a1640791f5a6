"""Every HTTP response of the app carries the anti-framing and content-security headers (in-process, over ASGI)."""

from __future__ import annotations

import httpx
import nicegui
import pytest

from tests.domain.helpers import PASSWORD
from tests.pages.conftest import simulated_app

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def app(settings):
    async with simulated_app(settings) as built:
        yield built


def csp_directives(response: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    policy = response.headers.get("content-security-policy")
    assert policy, f"no Content-Security-Policy on {response.request.method} {response.request.url}"
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def assert_security_headers(response: httpx.Response) -> None:
    """The headers every response must carry, whatever produced it."""
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    assert response.headers.get("x-frame-options") == "DENY", where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "same-origin", where
    csp = csp_directives(response)
    assert csp["frame-ancestors"] == ["'none'"], where
    assert csp["default-src"] == ["'self'"], where
    assert csp["object-src"] == ["'none'"], where
    assert csp["base-uri"] == ["'self'"], where
    assert csp["form-action"] == ["'self'"], where
    assert "'self'" in csp["script-src"], where
    assert not any(source.startswith(("http:", "https:", "*")) for sources in csp.values() for source in sources), where


@SQLITE
async def test_pages_endpoints_redirects_and_static_files_carry_the_security_headers(app) -> None:
    _runtime, new_user = app
    client = new_user().http_client
    page = await client.get("/sign-in")
    assert page.status_code == 200 and "<html" in page.text
    health = await client.get("/healthz")
    assert health.status_code == 200
    redirect = await client.post(
        "/auth/sign-up", data={"username": "alice", "display_name": "Alice", "password": PASSWORD}
    )
    assert redirect.status_code == 303
    failed = await client.post("/auth/sign-in", data={"username": "nobody", "password": "wrong password!"})
    assert failed.status_code == 303
    static = await client.get(f"/_nicegui/{nicegui.__version__}/static/nicegui.js")
    assert static.status_code == 200 and "javascript" in static.headers["content-type"]
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404
    for response in (page, health, redirect, failed, static, missing):
        assert_security_headers(response)


@SQLITE
async def test_headers_are_not_repeated_and_the_rest_of_the_response_is_untouched(app) -> None:
    _runtime, new_user = app
    client = new_user().http_client
    page = await client.get("/sign-in")
    for name in ("content-security-policy", "x-frame-options", "referrer-policy", "x-content-type-options"):
        assert len(page.headers.get_list(name)) == 1, name
    assert page.headers["content-type"].startswith("text/html")
    assert "Sign in" in page.text
