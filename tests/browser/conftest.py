"""Real-browser tests: the app runs as `python -m chatapp` in a subprocess; Debian's chromium drives it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ARTIFACTS
from tests.timing import LIVENESS_MS, LIVENESS_S, SERVER_START_S

REQUIRE_BROWSER = os.environ.get("CHATAPP_REQUIRE_BROWSER") == "1"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def _chromium() -> str | None:
    return os.environ.get("CHATAPP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (CHATAPP_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PatientBrowser:
    """The launched browser, whose pages wait up to LIVENESS_S for what a test waits for (an element, a URL):
    Playwright's own default is 30 s, and a wait returns as soon as the thing happens."""

    def __init__(self, launched) -> None:
        self._launched = launched

    def new_context(self, **options):
        context = self._launched.new_context(**options)
        context.set_default_timeout(LIVENESS_MS)
        return context

    def new_page(self, **options):
        page = self._launched.new_page(**options)
        page.set_default_timeout(LIVENESS_MS)
        return page

    def __getattr__(self, name: str):
        return getattr(self._launched, name)


@pytest.fixture
def browser():
    """A headless Debian chromium (never a downloaded browser), one per test, as a PatientBrowser.

    Playwright's sync API runs an event loop on this thread while it is open; keeping it per test
    means no async test ever starts while that loop is still running.
    """
    path = _chromium()
    if path is None:
        _skip_or_fail("Debian chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield PatientBrowser(launched)
        launched.close()


class RunningApp:
    def __init__(self, base_url: str, process: subprocess.Popen, data_dir: Path) -> None:
        self.base_url = base_url
        self.process = process
        self.data_dir = data_dir


def start_app(data_dir: Path, env_extra: dict[str, str] | None = None, port: int | None = None) -> RunningApp:
    """Start `python -m chatapp` (on a free port unless given) and wait for /healthz (up to SERVER_START_S)."""
    port = port or _free_port()
    env = {
        **os.environ,
        "CHATAPP_DATA_DIR": str(data_dir),
        "CHATAPP_PORT": str(port),
        "CHATAPP_HOST": "127.0.0.1",
        "CHATAPP_LOG_LEVEL": "warning",
        **(env_extra or {}),
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    log = open(data_dir.parent / f"server-{port}.log", "w")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen([sys.executable, "-m", "chatapp"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return RunningApp(base_url, process, data_dir)
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"chatapp did not start: see {log.name}")


def stop_app(app: RunningApp) -> None:
    app.process.terminate()
    try:
        app.process.wait(timeout=LIVENESS_S)
    except subprocess.TimeoutExpired:
        app.process.kill()


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[RunningApp]:
    app = start_app(tmp_path / "data")
    yield app
    stop_app(app)


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where screenshots go: test-artifacts/<test name>/."""
    folder = ARTIFACTS / request.node.name.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
