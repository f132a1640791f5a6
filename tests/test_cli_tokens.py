"""`python -m chatapp create-token` as an operator meets it: a real subprocess, then the token used."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chatapp.app import build_runtime
from chatapp.config import Settings
from chatapp.domain.tokens import TOKEN_PREFIX
from tests.test_cli_and_config import chatapp, clean_env


def actor_of(data_dir: Path, token: str):
    runtime = build_runtime(Settings(data_dir=data_dir))
    try:
        return asyncio.run(runtime.services.tokens.authenticate_token(token))
    finally:
        runtime.engine.dispose()


def test_create_token_prints_the_token_last_and_it_works(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = clean_env(data_dir)
    assert chatapp(["create-user", "ops", "--password-stdin"], env, stdin="correct horse battery\n").returncode == 0
    made = chatapp(["create-token", "ops", "--name", "deploy", "--scopes", "read", "ai"], env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith(TOKEN_PREFIX) and " " not in token
    actor = actor_of(data_dir, token)
    assert actor is not None and actor.username == "ops" and sorted(actor.scopes or ()) == ["ai", "read"]

    for_bot = chatapp(["create-token", "ops", "--name", "bot", "--bot", "deploybot"], env)
    assert for_bot.returncode == 0, for_bot.stderr
    bot = actor_of(data_dir, for_bot.stdout.strip().splitlines()[-1])
    assert bot is not None and bot.is_bot and bot.username == "deploybot"
    again = chatapp(["create-token", "ops", "--name", "bot 2", "--bot", "deploybot"], env)
    assert again.returncode == 0, again.stderr  # the same bot, a second token


def test_create_token_refuses_clearly(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "data")
    nobody = chatapp(["create-token", "ghost", "--name", "x"], env)
    assert nobody.returncode == 1 and "No account has the username 'ghost'" in nobody.stderr
    assert "Traceback" not in nobody.stderr
    assert chatapp(["create-user", "ops", "--password-stdin"], env, stdin="correct horse battery\n").returncode == 0
    bad = chatapp(["create-token", "ops", "--name", "x", "--scopes", "root"], env)
    assert bad.returncode == 1 and "Unknown scope 'root'" in bad.stderr and "Traceback" not in bad.stderr
    helped = chatapp(["create-token", "--help"], env)
    assert helped.returncode == 0 and "--scopes" in helped.stdout and "last line" in helped.stdout
