"""The command line and the settings, as an operator meets them: real subprocesses, a temp data dir."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from chatapp.config import Settings
from chatapp.store.migrate import head_revision
from tests.timing import LIVENESS_S, SERVER_START_S

# How fast the server starts (the 3 s target) is measured by bench/startup.py (docs/BENCHMARKS.md), not here.
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any CHATAPP_* setting, pointed at a temp data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATAPP_") and k != "PYTEST_CURRENT_TEST"}
    env.update({"CHATAPP_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), **extra})
    return env


def chatapp(
    args: list[str], env: dict[str, str], *, stdin: str = "", cwd: Path | None = None, timeout: float = SERVER_START_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatapp", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        check=False,
    )


def count_users(db: Path, username: str) -> int:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM users WHERE username = :u"), {"u": username}).scalar_one()
    finally:
        engine.dispose()


# --- the command line --------------------------------------------------------------------------------


def test_help_lists_the_commands_and_options(tmp_path: Path) -> None:
    result = chatapp(["--help"], clean_env(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    for word in ("serve", "migrate", "create-user", "--host", "--port"):
        assert word in result.stdout, f"{word!r} missing from --help:\n{result.stdout}"
    assert not (tmp_path / "data").exists(), "--help must not create the data dir"


def test_migrate_creates_the_sqlite_database_and_prints_the_revision(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = chatapp(["migrate"], clean_env(data_dir))
    assert result.returncode == 0, result.stderr
    assert f"Database is at revision {head_revision()}." in result.stdout
    db = data_dir / "chatapp.db"
    assert db.is_file()
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    engine.dispose()


def test_create_user_then_a_duplicate_and_a_short_password_fail_clearly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = clean_env(data_dir)

    created = chatapp(["create-user", "bob", "--password-stdin"], env, stdin="correct horse battery\n")
    assert created.returncode == 0, created.stderr
    assert "Created user @bob" in created.stdout
    assert count_users(data_dir / "chatapp.db", "bob") == 1

    again = chatapp(["create-user", "bob", "--password-stdin"], env, stdin="another long password\n")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "That username is taken." in again.stderr
    assert "Traceback" not in again.stderr
    assert count_users(data_dir / "chatapp.db", "bob") == 1

    short = chatapp(["create-user", "carol", "--password-stdin"], env, stdin="short\n")
    assert short.returncode == 1, short.stdout + short.stderr
    assert "Password must be at least 10 characters." in short.stderr
    assert "Traceback" not in short.stderr
    assert count_users(data_dir / "chatapp.db", "carol") == 0


def test_a_placeholder_secret_key_is_refused(tmp_path: Path) -> None:
    result = chatapp(["migrate"], clean_env(tmp_path / "data", CHATAPP_SECRET_KEY="changeme"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CHATAPP_SECRET_KEY must be a random string of at least 32 chars" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "chatapp.db").exists(), "nothing may happen with invalid settings"


def test_a_rejected_secret_key_is_not_echoed(tmp_path: Path) -> None:
    secret = "Zq8-real-but-too-short-Kx1"  # a real random-looking key, just too short: it must not leak to logs
    result = chatapp(["migrate"], clean_env(tmp_path / "data", CHATAPP_SECRET_KEY=secret))
    assert result.returncode == 2
    assert "CHATAPP_SECRET_KEY" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_an_empty_secret_key_file_is_never_used_as_the_key(tmp_path: Path) -> None:
    """A crash between creating the key file and writing it (or a second process reading it in that
    moment) leaves an empty file; signing with an empty key must not happen."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "secret_key").touch(mode=0o600)
    settings = Settings(_env_file=None, data_dir=data_dir)
    try:
        key = settings.resolved_secret_key()
    except (ValueError, RuntimeError, OSError):
        return  # refusing to start is an acceptable answer
    assert len(key) >= 32


# --- settings ----------------------------------------------------------------------------------------


@pytest.fixture
def no_chatapp_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory and no CHATAPP_* variables from the outside."""
    for key in list(os.environ):
        if key.startswith("CHATAPP_"):
            monkeypatch.delenv(key)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def test_settings_read_max_message_chars_from_the_environment(
    no_chatapp_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().max_message_chars == 4000
    monkeypatch.setenv("CHATAPP_MAX_MESSAGE_CHARS", "1234")
    assert Settings().max_message_chars == 1234


def test_settings_read_a_dotenv_file_in_the_working_directory(
    no_chatapp_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_chatapp_env / ".env").write_text("CHATAPP_MAX_MESSAGE_CHARS=777\n")
    assert Settings().max_message_chars == 777
    monkeypatch.setenv("CHATAPP_MAX_MESSAGE_CHARS", "888")
    assert Settings().max_message_chars == 888, "the environment wins over .env"


def test_out_of_range_settings_are_refused(no_chatapp_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("CHATAPP_MAX_MESSAGE_CHARS", "0")
    with pytest.raises(ValidationError, match="max_message_chars"):
        Settings()


def test_the_cli_honours_a_dotenv_file_in_its_working_directory(tmp_path: Path) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    data_dir = tmp_path / "from-dotenv"
    (workdir / ".env").write_text(f"CHATAPP_DATA_DIR={data_dir}\n")
    env = clean_env(tmp_path / "unused")
    del env["CHATAPP_DATA_DIR"]
    result = chatapp(["migrate"], env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (data_dir / "chatapp.db").is_file()


# --- serving -----------------------------------------------------------------------------------------


class Server:
    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=LIVENESS_S)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def start(servers: list[Server], args: list[str], env: dict[str, str], name: str) -> Server:
    log = Path(env["CHATAPP_DATA_DIR"]).parent / f"{name}.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatapp", *args], env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT
        )
    server = Server(process, log)
    servers.append(server)
    return server


def wait_healthy(server: Server, url: str) -> None:
    """Wait until url/healthz answers 200 (up to SERVER_START_S); fails at once if the server exits.

    One client for all attempts, no proxy lookup: the poller must not steal the CPU the server starts on.
    """
    deadline = time.monotonic() + SERVER_START_S
    with httpx.Client(base_url=url, timeout=1, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"chatapp exited with {server.process.returncode}:\n{server.output()}")
            try:
                response = client.get("/healthz")
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "ok"
            return
    pytest.fail(f"/healthz did not answer within {SERVER_START_S:.0f} s:\n{server.output()}")


def test_serve_answers_healthz_and_reuses_its_secret_key(tmp_path: Path, servers) -> None:
    data_dir = tmp_path / "data"
    port = _free_port()
    first = start(servers, ["--port", str(port)], clean_env(data_dir), "first")
    wait_healthy(first, f"http://127.0.0.1:{port}")

    key_file = data_dir / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, oct(key_file.stat().st_mode)
    key = key_file.read_text()
    assert len(key.strip()) >= 32

    # Something signed with the key: the flash of a failed sign-up (field errors carried by a redirect).
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=LIVENESS_S) as client:
        response = client.post("/auth/sign-up", data={"username": "bob", "display_name": "Bob", "password": "short"})
    assert response.status_code == 303
    flash_url = response.headers["location"]
    assert flash_url.startswith("/sign-up?f=")

    first.process.terminate()
    first.process.wait(timeout=LIVENESS_S)

    # Second start on the same data dir, this time host and port from CHATAPP_HOST / CHATAPP_PORT.
    port2 = _free_port()
    env = clean_env(data_dir, CHATAPP_HOST="127.0.0.2", CHATAPP_PORT=str(port2))
    second = start(servers, [], env, "second")
    wait_healthy(second, f"http://127.0.0.2:{port2}")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port2}/healthz", timeout=1)  # bound to CHATAPP_HOST only

    assert key_file.read_text() == key, "the secret key file must be reused, not regenerated"
    page = httpx.get(f"http://127.0.0.2:{port2}{flash_url}", timeout=LIVENESS_S)
    assert page.status_code == 200
    assert "Password must be at least 10 characters." in page.text, "flash signed before the restart was rejected"


def test_serve_subcommand_takes_its_own_port(tmp_path: Path, servers) -> None:
    port, env_port = _free_port(), _free_port()
    env = clean_env(tmp_path / "data", CHATAPP_PORT=str(env_port))
    server = start(servers, ["serve", "--port", str(port)], env, "serve")
    wait_healthy(server, f"http://127.0.0.1:{port}")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{env_port}/healthz", timeout=1)  # the flag wins over CHATAPP_PORT


def test_a_second_server_on_one_sqlite_database_is_refused_and_cli_commands_still_run(tmp_path: Path, servers) -> None:
    data_dir, port = tmp_path / "data", _free_port()
    first = start(servers, ["--port", str(port)], clean_env(data_dir), "first")
    wait_healthy(first, f"http://127.0.0.1:{port}")
    second = chatapp(["--port", str(_free_port())], clean_env(data_dir))
    assert second.returncode == 1
    assert "Another chatapp server is already running on the SQLite database" in second.stderr
    assert "CHATAPP_DATABASE_URL" in second.stderr and "Traceback" not in second.stderr
    migrated = chatapp(["migrate"], clean_env(data_dir))  # beside the server, as before
    assert migrated.returncode == 0, migrated.stderr
    first.process.terminate()
    first.process.wait(timeout=LIVENESS_S)
    again = start(servers, ["--port", str(port)], clean_env(data_dir), "again")  # the lock went with it
    wait_healthy(again, f"http://127.0.0.1:{port}")
