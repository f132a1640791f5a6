"""`python -m chatapp create-token`: a token for a script or a bot, made by whoever runs the server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta

from chatapp.config import Settings
from chatapp.domain.errors import DomainError, ValidationError
from chatapp.domain.models import NewApiToken
from chatapp.domain.services import Services


def create_token(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, make the token (and the bot, when asked and missing) and print it last; 1 on a refusal."""
    from chatapp.app import build_runtime, migrate_database

    runtime = build_runtime(settings)
    migrate_database(runtime)
    try:
        new = asyncio.run(_create(runtime.services, args))
    except DomainError as refusal:
        problems = refusal.fields.values() if isinstance(refusal, ValidationError) else [refusal.message]
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    finally:
        runtime.engine.dispose()
    scopes = " ".join(sorted(new.token.scopes))
    print(f"Token {new.token.name!r} (scopes: {scopes}; id {new.token.id}). It is shown only now:")
    print(new.value)
    return 0


async def _create(services: Services, args: argparse.Namespace) -> NewApiToken:
    tokens = services.tokens
    owner = await tokens.operator_acts_as(args.username)
    bot_id = None
    if args.bot:
        bot = await tokens.find_or_create_bot(owner, username=args.bot, display_name=args.bot_display_name or args.bot)
        bot_id = bot.id
    expires_at = datetime.now(UTC) + timedelta(days=args.expires_days) if args.expires_days else None
    return await tokens.create_token(owner, name=args.name, scopes=args.scopes, expires_at=expires_at, bot_id=bot_id)
