"""The composition root: builds adapters and services once, wires them into the web app."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatapp.config import Settings
from chatapp.domain.accounts import Accounts
from chatapp.domain.ai import AiReplies
from chatapp.domain.ai_settings import AiSettings
from chatapp.domain.bot_hooks import HookSettings, OutgoingHooks
from chatapp.domain.chat import Chat
from chatapp.domain.invites import InvitePolicy, Invites
from chatapp.domain.limits import Limits, MemoryRateStore, Rate, RateStore, SharedRateLimiter
from chatapp.domain.live import LiveRooms, SessionWatch
from chatapp.domain.membership import Membership
from chatapp.domain.passwords import PasswordPolicy, Passwords
from chatapp.domain.ports import PubSub, utc_now
from chatapp.domain.room_settings import RoomSettings
from chatapp.domain.rooms import RoomLimits, Rooms, give_every_room_its_ai
from chatapp.domain.services import Services
from chatapp.domain.tokens import ApiTokens, TokenLimits
from chatapp.domain.webhooks import IncomingWebhooks, WebhookLimits
from chatapp.llm import LitellmClient
from chatapp.store import migrate
from chatapp.store.bus import PEER_LOST_AFTER_S, BusPubSub
from chatapp.store.bus_postgres import PostgresTransport
from chatapp.store.bus_redis import RedisTransport
from chatapp.store.db import SqlTransactor, is_sqlite, make_engine, make_sqlite_file_private
from chatapp.store.pubsub import InProcessPubSub
from chatapp.store.rates_postgres import PostgresRateStore
from chatapp.store.rates_redis import RedisRateStore
from chatapp.store.repositories import SqlUnitOfWork
from chatapp.webhook_http import HttpxHookSender

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything built from settings: the engine (to dispose), the transactor (whose queued writes are
    committed before the process exits) and the services."""

    settings: Settings
    engine: Engine
    tx: SqlTransactor
    pubsub: PubSub
    services: Services
    rate_store: RateStore  # where the rate limits are counted (shared by the processes, or this one's)


def build_runtime(settings: Settings) -> Runtime:
    """Create the engine, pub/sub and domain services. Does not touch the schema."""
    engine = _open_database(settings)
    tx = SqlTransactor(engine)
    pubsub = make_pubsub(settings.resolved_pubsub_url, peer_lost_after=settings.bus_peer_lost_after)
    rate_store = make_rate_store(settings)
    limits = build_limits(settings, rate_store)
    room_limits = _room_limits(settings)
    llm = _llm(settings)
    ai_settings = _ai_settings(settings, tx, pubsub, llm)
    ai = _ai_replies(settings, tx, pubsub, llm, ai_settings, limits)
    ai.subscribe()  # the AI hears of every message posted, and decides whether to answer
    chat = Chat(
        tx=tx,
        pubsub=pubsub,
        max_message_chars=settings.max_message_chars,
        page_size=settings.page_size,
        max_page_size=settings.max_page_size,
        post_limit=limits.posts,
    )
    bot_hooks = _bot_hooks(settings, tx, pubsub, chat)
    bot_hooks.subscribe()  # bots with an outgoing webhook hear of the messages meant for them
    services = Services(
        accounts=_accounts(settings, tx, pubsub, limits),
        invites=_invites(settings, tx, pubsub, limits),
        tokens=ApiTokens(
            tx=tx,
            pubsub=pubsub,
            limits=TokenLimits(settings.tokens_per_account, settings.bots_per_account),
            reserved_names=(settings.ai_name,),
        ),
        rooms=Rooms(tx=tx, pubsub=pubsub, limits=room_limits, ai_name=settings.ai_name, on_deleted=ai.drop_room),
        membership=Membership(tx=tx, pubsub=pubsub),
        chat=chat,
        webhooks=IncomingWebhooks(
            tx=tx,
            pubsub=pubsub,
            chat=chat,
            post_limit=limits.posts,
            limits=WebhookLimits(settings.webhooks_per_room),
            reserved_names=reserved_names(settings),
        ),
        bot_hooks=bot_hooks,
        ai=ai,
        ai_settings=ai_settings,
        room_settings=RoomSettings(tx=tx, pubsub=pubsub, limits=room_limits, ai=ai_settings),
        llm_warm_up=llm.warm_up,
        live=LiveRooms(tx=tx, pubsub=pubsub),
        session_watch=SessionWatch(pubsub),
        database_ok=partial(_database_ok, tx),
        bus_ok=pubsub.healthy,
    )
    return Runtime(settings=settings, engine=engine, tx=tx, pubsub=pubsub, services=services, rate_store=rate_store)


def make_pubsub(url: str, *, peer_lost_after: float = PEER_LOST_AFTER_S) -> PubSub:
    """The bus CHATAPP_PUBSUB_URL names: in this process only, or to the other processes through
    PostgreSQL LISTEN/NOTIFY or Redis pub/sub (store/bus.py); a process silent for `peer_lost_after`
    seconds is taken for dead."""
    if url.startswith("memory://"):
        return InProcessPubSub()
    transport = RedisTransport(url) if url.startswith(("redis://", "rediss://")) else PostgresTransport(url)
    return BusPubSub(transport, peer_lost_after_s=peer_lost_after)


def _llm(settings: Settings) -> LitellmClient:
    """The model client (litellm) of the configured provider or router."""
    return LitellmClient(
        api_base=settings.ai_api_base,
        api_key=settings.ai_api_key.get_secret_value() if settings.ai_api_key else None,
        read_timeout=min(60.0, settings.ai_timeout),
        retries=settings.ai_retries,
        router_config=settings.ai_router_config,
    )


def _open_database(settings: Settings) -> Engine:
    """The engine of the configured database; an SQLite file is made readable by its owner only."""
    url = settings.resolved_database_url
    if is_sqlite(url):
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        make_sqlite_file_private(url)
    return make_engine(url)


async def _database_ok(tx: SqlTransactor) -> bool:
    """The health check: the database answers within 3 s."""
    try:
        await asyncio.wait_for(asyncio.to_thread(tx.ping), timeout=3)
    except Exception:  # any failure means "not healthy"; the reason goes to the log
        log.warning("health check: database unreachable", exc_info=True)
        return False
    return True


def _accounts(settings: Settings, tx: SqlTransactor, pubsub: PubSub, limits: Limits) -> Accounts:
    policy = PasswordPolicy(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        min_chars=settings.min_password_chars,
    )
    passwords = Passwords(policy)
    passwords.warm_up()
    return Accounts(
        tx=tx,
        pubsub=pubsub,
        passwords=passwords,
        session_lifetime=timedelta(days=settings.session_days),
        limits=limits,
        reserved_names=reserved_names(settings),
    )


def _invites(settings: Settings, tx: SqlTransactor, pubsub: PubSub, limits: Limits) -> Invites:
    return Invites(
        tx=tx,
        pubsub=pubsub,
        policy=InvitePolicy(
            default_expiry_days=settings.invite_days,
            guest_session_days=settings.session_days,
            reserved_names=reserved_names(settings),
        ),
        join_limit=limits.joins,
    )


def _ai_replies(
    settings: Settings,
    tx: SqlTransactor,
    pubsub: PubSub,
    llm: LitellmClient,
    ai_settings: AiSettings,
    limits: Limits,
) -> AiReplies:
    return AiReplies(
        tx=tx,
        pubsub=pubsub,
        llm=llm,
        ai_name=settings.ai_name,
        settings=ai_settings,
        context_tokens=settings.ai_context_tokens,
        timeout=settings.ai_timeout,
        limit=limits.posts,
        lost_after=settings.ai_reply_lost_after,
    )


def _bot_hooks(settings: Settings, tx: SqlTransactor, pubsub: PubSub, chat: Chat) -> OutgoingHooks:
    """Bots' outgoing webhooks, called over HTTP; their answers are posted through the chat."""
    hook_settings = HookSettings(
        timeout_s=settings.webhook_timeout,
        attempts=settings.webhook_attempts,
        backoff_s=settings.webhook_backoff,
        max_in_flight=settings.webhook_max_in_flight,
        max_waiting=settings.webhook_max_waiting,
        deliveries_kept=settings.webhook_deliveries_kept,
        allow_private_addresses=settings.webhook_allow_private,
    )
    return OutgoingHooks(tx=tx, pubsub=pubsub, sender=HttpxHookSender(), chat=chat, settings=hook_settings)


def _room_limits(settings: Settings) -> RoomLimits:
    return RoomLimits(max_name_chars=settings.max_room_name_chars, max_topic_chars=settings.max_topic_chars)


def _ai_settings(settings: Settings, tx: SqlTransactor, pubsub: PubSub, llm: LitellmClient) -> AiSettings:
    """The rooms' AI settings, offering the configured models (or the router's)."""
    models = settings.offered_ai_models or llm.router_models()
    return AiSettings(
        tx=tx,
        pubsub=pubsub,
        models=models,
        default_model=settings.ai_model or (models[0] if models else ""),
        max_instruction_chars=settings.ai_max_instruction_chars,
    )


def reserved_names(settings: Settings) -> tuple[str, ...]:
    """Display names nobody may take, so that nobody passes for the AI: its name, and "AI" (@ai)."""
    return (settings.ai_name, "AI")


def build_limits(settings: Settings, store: RateStore | None = None) -> Limits:
    """The rate limits from settings (a limit of 0 switches that one off), kept in `store` (by default
    where the bus says: this process, PostgreSQL or Redis)."""
    store = store or make_rate_store(settings)
    sign_in = Rate.per_window(settings.sign_in_limit, settings.sign_in_window_minutes * 60)
    sign_ups = Rate.per_window(settings.sign_up_limit, settings.sign_up_window_minutes * 60)
    joins = Rate.per_window(settings.join_limit, settings.join_window_minutes * 60)
    return Limits(
        posts=SharedRateLimiter(Rate(settings.message_burst, settings.message_per_second), store, "posts"),
        joins=SharedRateLimiter(joins, store, "joins"),
        sign_in_user=SharedRateLimiter(sign_in, store, "sign-in"),
        sign_in_ip=SharedRateLimiter(sign_in, store, "sign-in-ip"),
        sign_ups=SharedRateLimiter(sign_ups, store, "sign-ups"),
    )


def make_rate_store(settings: Settings) -> RateStore:
    """Where the limits are counted: with the bus of several processes (PostgreSQL or Redis), else here."""
    url = settings.resolved_pubsub_url
    if url.startswith(("redis://", "rediss://")):
        return RedisRateStore(url)
    if url.startswith("memory://"):
        return MemoryRateStore()
    return PostgresRateStore(settings.resolved_database_url)


def migrate_database(runtime: Runtime) -> None:
    """Apply pending migrations (under an advisory lock on PostgreSQL), then give every room its AI."""
    migrate.upgrade(runtime.engine)
    with Session(runtime.engine) as session:  # rooms made before the AI was in every room get theirs
        give_every_room_its_ai(SqlUnitOfWork(session), runtime.settings.ai_name, utc_now())
        session.commit()


# The cyclic garbage collector's full collections walk every object of every open tab: with 500 tabs
# one took ~0.7 s, stalling the event loop (fan-out p99 684-834 ms at N = 500). Young collections
# every 10,000 allocations instead of 700, and a full one at most every 50 middle ones instead of 10,
# make them rare (p99 121-138 ms; bench/fanout.py, docs/BENCHMARKS.md).
GC_THRESHOLDS = (10_000, 50, 50)


def tune_garbage_collector() -> None:
    """Rarer collections, and the objects of start-up (imports, routes) left out of them for good."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()
    gc.freeze()


def run_web_app(settings: Settings) -> Runtime:
    """Build, migrate, register pages and run the server (returns at once under NiceGUI's test simulation)."""
    from nicegui import app, background_tasks, ui

    from chatapp.api import register_api
    from chatapp.live.presence import RoomPresence
    from chatapp.live.presence_sync import PresenceSync
    from chatapp.pages import register
    from chatapp.pages.unavailable import DatabaseUnavailablePage
    from chatapp.server import uvicorn_options

    runtime = build_runtime(settings)
    migrate_database(runtime)
    # who is in each room: browser tabs and room sockets, of this process and (told over the bus) the others
    origin = getattr(runtime.pubsub, "origin", None) or secrets.token_hex(8)
    presence = RoomPresence(origin)
    lost_after = settings.presence_lost_after
    presence_sync = PresenceSync(presence, runtime.pubsub, origin, beat_s=lost_after / 3, lost_after_s=lost_after)
    register(runtime.services, settings, presence)
    register_api(app, runtime.services, settings, presence)
    app.add_middleware(DatabaseUnavailablePage, database_ok=runtime.services.database_ok)  # 503, not 500
    app.on_startup(tune_garbage_collector)
    app.on_startup(runtime.pubsub.start)
    app.on_startup(presence_sync.start)
    app.on_shutdown(presence_sync.stop)
    app.on_startup(runtime.services.ai.start_sweeping)  # replies whose process died are saved as interrupted
    app.on_shutdown(runtime.services.ai.stop_sweeping)
    app.on_shutdown(runtime.services.bot_hooks.stop)  # calls of outgoing webhooks under way end
    app.on_shutdown(runtime.pubsub.stop)  # what is queued for the subscribers is handled first
    if isinstance(runtime.rate_store, PostgresRateStore):
        app.on_shutdown(runtime.rate_store.close)
    app.on_shutdown(runtime.tx.wait_until_idle)  # queued writes are committed before the process exits
    app.on_shutdown(runtime.engine.dispose)
    if settings.ai_model or settings.ai_router_config:  # litellm takes seconds to import: in the background
        app.on_startup(lambda: background_tasks.create(runtime.services.llm_warm_up(), name="warm up litellm"))
    ui.run(
        host=settings.host,
        port=settings.port,
        title="chatapp",
        reload=False,
        show=False,
        dark=None,
        storage_secret=settings.resolved_secret_key(),
        reconnect_timeout=settings.reconnect_timeout,
        show_welcome_message=False,
        favicon="💬",
        uvicorn_logging_level=settings.log_level,
        endpoint_documentation="none",
        **uvicorn_options(settings),  # trusted proxies, header and keep-alive timeouts (passed on to uvicorn)
    )
    return runtime
