"""The real server (`python -m chatapp` in a subprocess) against hostile clients: forged X-Forwarded-For
from a local hop, and connections that trickle their headers or idle forever."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.sync.client import connect as websocket_connect

from chatapp.pages.session import SESSION_COOKIE, Flash
from tests.browser.conftest import RunningApp, start_app, stop_app
from tests.domain.helpers import PASSWORD
from tests.timing import LIVENESS_S, TIME_SCALE

SECRET = "server-hardening-test-secret-0123456789abcdef"
SIGN_IN_LIMIT = 3
HEADERS_TIMEOUT_S = 2.0
KEEP_ALIVE_TIMEOUT_S = 1.0
# A connection must be closed within SLACK_S of its timeout: well before anything else would close it (the
# trickle lasts over a minute), with room for a loaded machine's scheduling. Checks that a timeout did NOT
# strike wait PAST_S beyond it.
SLACK_S = 5.0 * TIME_SCALE
PAST_S = 1.5
PROXY_VARIABLES = ("FORWARDED_ALLOW_IPS", "CHATAPP_FORWARDED_ALLOW_IPS")


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Start the app with extra settings (no proxy trusted unless a test says so); stopped afterwards."""
    for name in (*PROXY_VARIABLES, "CHATAPP_HEADERS_TIMEOUT", "CHATAPP_KEEP_ALIVE_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    started: list[RunningApp] = []

    def start(**env: str) -> RunningApp:
        settings = {"CHATAPP_SECRET_KEY": SECRET, "CHATAPP_SIGN_IN_LIMIT": str(SIGN_IN_LIMIT), **env}
        started.append(start_app(tmp_path / f"data-{len(started)}", settings))
        return started[-1]

    yield start
    for app in started:
        stop_app(app)


def address(app: RunningApp) -> tuple[str, int]:
    parts = urlsplit(app.base_url)
    return parts.hostname, parts.port


# --- X-Forwarded-For and X-Forwarded-Proto -------------------------------------------------------------


def sign_in_errors(app: RunningApp, attempts: int) -> list[str]:
    """Wrong passwords for a new username each time, each claiming another client address."""
    errors = []
    with httpx.Client(base_url=app.base_url, timeout=LIVENESS_S) as client:
        for n in range(attempts):
            response = client.post(
                "/auth/sign-in",
                data={"username": f"nobody{n}", "password": "not the password"},
                headers={"X-Forwarded-For": f"10.0.0.{n + 1}"},
            )
            assert response.status_code == 303, response.text
            flash = parse_qs(urlsplit(response.headers["location"]).query)["f"][0]
            errors.append(Flash(SECRET).load(flash)["error"])
    return errors


def session_cookie_is_secure(app: RunningApp, username: str) -> bool:
    """Sign up over plain http, claiming (X-Forwarded-Proto) that a proxy received it over https."""
    response = httpx.post(
        f"{app.base_url}/auth/sign-up",
        data={"username": username, "display_name": username.title(), "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
        timeout=LIVENESS_S,
    )
    assert response.status_code == 303, response.text
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{SESSION_COOKIE}="):
            cookie = SimpleCookie()
            cookie.load(header)
            return bool(cookie[SESSION_COOKIE]["secure"])
    raise AssertionError("no session cookie")


def test_by_default_no_proxy_is_trusted_so_a_forged_address_does_not_escape_the_limit(serve) -> None:
    app = serve()
    errors = sign_in_errors(app, SIGN_IN_LIMIT + 2)
    assert errors[:SIGN_IN_LIMIT] == ["Invalid username or password."] * SIGN_IN_LIMIT
    assert all(error.startswith("Too many failed sign-in attempts.") for error in errors[SIGN_IN_LIMIT:]), errors
    assert not session_cookie_is_secure(app, "alice"), "X-Forwarded-Proto from an untrusted client was believed"
    # The admin is told, once, that a local proxy's addresses are not believed.
    port = app.base_url.rsplit(":", 1)[1]
    server_log = (app.data_dir.parent / f"server-{port}.log").read_text()
    assert server_log.count("a proxy on this machine sends X-Forwarded-For, which is not believed") == 1


def test_forwarded_headers_are_honoured_from_the_proxies_the_admin_names(serve) -> None:
    app = serve(FORWARDED_ALLOW_IPS="127.0.0.1")
    assert sign_in_errors(app, SIGN_IN_LIMIT + 2) == ["Invalid username or password."] * (SIGN_IN_LIMIT + 2)
    assert session_cookie_is_secure(app, "alice")
    port = app.base_url.rsplit(":", 1)[1]
    assert "which is not believed" not in (app.data_dir.parent / f"server-{port}.log").read_text()


# --- header and keep-alive timeouts --------------------------------------------------------------------


def seconds_until_closed(sock: socket.socket, trickle: bytes, *, give_up_after: float) -> float | None:
    """Send `trickle` one byte a second; how long until the server closed the connection (None: never)."""
    started = time.monotonic()
    sock.settimeout(1.0)
    for byte in trickle:
        try:
            sock.sendall(bytes([byte]))
            answer = sock.recv(4096)  # waits up to a second: the trickle's pace
        except TimeoutError:
            if time.monotonic() - started > give_up_after:
                return None
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        assert answer == b"", f"the server answered an incomplete request: {answer!r}"
        return time.monotonic() - started
    return None


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (with a Content-Length) from the socket."""
    sock.settimeout(LIVENESS_S)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head


HEADER_BYTES = b"Host: 127.0.0.1\r\nUser-Agent: " + b"slow" * 10


@pytest.fixture
def timeouts_app(serve) -> RunningApp:
    return serve(CHATAPP_HEADERS_TIMEOUT=str(HEADERS_TIMEOUT_S), CHATAPP_KEEP_ALIVE_TIMEOUT=str(KEEP_ALIVE_TIMEOUT_S))


def test_a_new_connection_that_trickles_its_headers_is_closed(timeouts_app: RunningApp) -> None:
    with socket.create_connection(address(timeouts_app)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        closed_after = seconds_until_closed(sock, HEADER_BYTES, give_up_after=HEADERS_TIMEOUT_S + SLACK_S + 2)
    assert closed_after is not None, "a connection sending a header byte a second was never closed"
    assert closed_after <= HEADERS_TIMEOUT_S + SLACK_S


def test_a_kept_alive_connection_that_trickles_its_next_request_is_closed(timeouts_app: RunningApp) -> None:
    with socket.create_connection(address(timeouts_app)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        closed_after = seconds_until_closed(
            sock, b"GET / HTTP/1.1\r\n" + HEADER_BYTES, give_up_after=HEADERS_TIMEOUT_S + SLACK_S + 2
        )
    assert closed_after is not None, "the next request's trickle kept the connection open for good"
    assert closed_after <= HEADERS_TIMEOUT_S + SLACK_S


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(serve) -> None:
    app = serve(CHATAPP_HEADERS_TIMEOUT="30", CHATAPP_KEEP_ALIVE_TIMEOUT=str(KEEP_ALIVE_TIMEOUT_S))  # only keep-alive
    with socket.create_connection(address(app)) as sock:
        started = time.monotonic()  # before the request: the server's timer cannot have started earlier
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        sock.settimeout(KEEP_ALIVE_TIMEOUT_S + SLACK_S + 2)
        assert sock.recv(1) == b""
        assert time.monotonic() - started <= KEEP_ALIVE_TIMEOUT_S + SLACK_S


def test_requests_and_the_websocket_outlive_the_header_timeout(timeouts_app: RunningApp) -> None:
    with httpx.Client(base_url=timeouts_app.base_url, timeout=LIVENESS_S) as client:  # one kept-alive connection
        assert client.get("/healthz").status_code == 200
        time.sleep(KEEP_ALIVE_TIMEOUT_S / 2)
        assert client.get("/sign-in").status_code == 200
    host, port = address(timeouts_app)
    url = f"ws://{host}:{port}/_nicegui_ws/socket.io/?EIO=4&transport=websocket"
    with websocket_connect(url, open_timeout=LIVENESS_S) as ws:
        assert ws.recv(timeout=LIVENESS_S).startswith("0{")  # engine.io's open packet
        time.sleep(HEADERS_TIMEOUT_S + PAST_S)
        ws.send("40")  # socket.io: connect to the default namespace
        assert ws.recv(timeout=LIVENESS_S).startswith("40{"), "the websocket was closed by the header timeout"


# --- the options themselves ------------------------------------------------------------------------


async def _asgi_app(scope, receive, send) -> None:
    """A stand-in application for uvicorn.Config."""


@pytest.mark.parametrize(
    ("env", "trusted"),
    [
        ({}, ""),
        ({"FORWARDED_ALLOW_IPS": "10.1.2.3"}, "10.1.2.3"),
        (
            {"FORWARDED_ALLOW_IPS": "10.1.2.3", "CHATAPP_FORWARDED_ALLOW_IPS": "10.9.9.9,10.8.0.0/16"},
            "10.9.9.9,10.8.0.0/16",
        ),
    ],
)
def test_uvicorn_is_told_exactly_which_proxies_to_trust(monkeypatch: pytest.MonkeyPatch, env, trusted) -> None:
    import uvicorn
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from chatapp.config import Settings
    from chatapp.server import HeadersTimeoutProtocol, uvicorn_options

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    options = uvicorn_options(Settings(_env_file=None, headers_timeout=3, keep_alive_timeout=4))
    assert options["forwarded_allow_ips"] == trusted
    config = uvicorn.Config(_asgi_app, log_config=None, **options)
    config.load()
    assert isinstance(config.loaded_app, ProxyHeadersMiddleware) is bool(trusted)
    assert issubclass(config.http_protocol_class, HeadersTimeoutProtocol)
    assert config.http_protocol_class.headers_timeout == 3
    assert config.timeout_keep_alive == 4
