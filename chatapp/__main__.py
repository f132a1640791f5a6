"""Command line: `python -m chatapp [serve|migrate|create-user|create-token]`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _parser() -> argparse.ArgumentParser:
    address = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: `--port 9000 serve` and `serve --port 9000` both work (no default overwrites the other).
    address.add_argument(
        "--host", default=argparse.SUPPRESS, help="address to listen on (CHATAPP_HOST, default 127.0.0.1)"
    )
    address.add_argument(
        "--port", type=int, default=argparse.SUPPRESS, help="port to listen on (CHATAPP_PORT, default 8080)"
    )
    parser = argparse.ArgumentParser(
        prog="python -m chatapp",
        parents=[address],
        description="chatapp: self-hosted team chat where an AI is a member of the room. "
        "Settings come from CHATAPP_* environment variables or a .env file (see README).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the web app (the default command)", parents=[address])
    commands.add_parser("migrate", help="apply database migrations and exit")
    create = commands.add_parser("create-user", help="create an account (asks for the password)")
    create.add_argument("username")
    create.add_argument("--display-name", help="defaults to the username")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _token_parser(commands)
    return parser


def _token_parser(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser(
        "create-token",
        help="print a new personal access token of a user or of their bot (the token alone on the last line)",
        description="Create a personal access token for the REST API and the room socket, without starting "
        "the server. It is printed once, alone on the last line; only its hash is stored. Revoke it in "
        "Account settings or with DELETE /api/v1/tokens/ID.",
    )
    token.add_argument("username", help="the account the token (or its bot) belongs to")
    token.add_argument("--name", required=True, help="what the token is for, e.g. 'deploy script'")
    token.add_argument(
        "--scopes",
        nargs="+",
        default=["read", "write"],
        metavar="SCOPE",
        help="any of read, write, ai, admin (default: read write)",
    )
    token.add_argument(
        "--bot", metavar="BOTNAME", help="make the token the bot's, a bot of USERNAME (created if it does not exist)"
    )
    token.add_argument("--bot-display-name", metavar="NAME", help="the new bot's display name (default: BOTNAME)")
    token.add_argument(
        "--expires-days", type=float, metavar="DAYS", help="expire after this many days (default: never)"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m chatapp` and the `chatapp` script."""
    args = _parser().parse_args(argv)
    from pydantic import ValidationError

    from chatapp.config import Settings

    try:
        settings = Settings()
        settings.resolved_secret_key()
        if settings.ai_router_config:  # a bad router file is a settings error, said before anything starts
            from chatapp.llm import read_router_config

            read_router_config(settings.ai_router_config)
    except ValidationError as exc:
        problems = "\n".join(f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        print(f"Invalid settings:\n{problems}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"Invalid settings: {exc}", file=sys.stderr)
        return 2
    overrides = {key: getattr(args, key, None) for key in ("host", "port")}
    settings = settings.model_copy(update={key: value for key, value in overrides.items() if value})
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from chatapp.log_redaction import install_log_redaction

    install_log_redaction()
    from chatapp.store.migrate import DatabaseUnreachable

    try:
        return _run_command(settings, args)
    except DatabaseUnreachable as exc:
        print(exc, file=sys.stderr)
        return 1


def _run_command(settings, args) -> int:
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "create-user":
        return _create_user(settings, args)
    if args.command == "create-token":
        from chatapp.cli_tokens import create_token

        return create_token(settings, args)
    from chatapp.app import run_web_app
    from chatapp.store.single_process import AnotherProcessServes, serve_alone

    try:
        lock = serve_alone(settings)
    except AnotherProcessServes as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        run_web_app(settings)
    finally:
        lock.release()
    return 0


def _migrate(settings) -> int:
    from chatapp.app import build_runtime, migrate_database
    from chatapp.store.migrate import current_revision

    runtime = build_runtime(settings)
    migrate_database(runtime)
    print(f"Database is at revision {current_revision(runtime.engine)}.")
    return 0


def _create_user(settings, args) -> int:
    from chatapp.app import build_runtime, migrate_database
    from chatapp.domain.accounts import SignUpForm
    from chatapp.domain.errors import ValidationError

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            print("Passwords do not match.", file=sys.stderr)
            return 1
    runtime = build_runtime(settings)
    migrate_database(runtime)
    form = SignUpForm(username=args.username, display_name=args.display_name or args.username, password=password)
    try:
        user = asyncio.run(runtime.services.accounts.create_user(form))
    except ValidationError as exc:
        for field, message in exc.fields.items():
            print(f"{field}: {message}", file=sys.stderr)
        return 1
    print(f"Created user @{user.username} (id {user.id}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
