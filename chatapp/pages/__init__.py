"""NiceGUI pages and the plain HTTP endpoints beside them."""

from __future__ import annotations

from nicegui import app

from chatapp.config import Settings
from chatapp.domain.services import Services
from chatapp.live.presence import RoomPresence
from chatapp.pages.auth_pages import register_auth_pages
from chatapp.pages.auth_routes import register_auth_routes
from chatapp.pages.http_headers import SecurityHeaders, UntrustedProxyWarning
from chatapp.pages.join import register_join
from chatapp.pages.lobby import register_lobby
from chatapp.pages.room import register_room
from chatapp.pages.session import Flash
from chatapp.pages.socket_guard import install_socket_guard
from chatapp.pages.theme import error_page, install_not_found_page, install_theme


def register(services: Services, settings: Settings, presence: RoomPresence | None = None) -> None:
    """Register every page and endpoint on the NiceGUI app (open room tabs count in `presence`)."""
    flash = Flash(settings.resolved_secret_key())
    app.add_middleware(SecurityHeaders)  # CSP, anti-framing and friends on every HTTP response
    app.add_middleware(UntrustedProxyWarning, trusted=bool(settings.forwarded_allow_ips.strip()))
    install_socket_guard()  # a page's socket must come from the session that rendered the page
    install_theme()
    app.on_page_exception(error_page)
    install_not_found_page()
    register_auth_routes(services, settings, flash)
    register_auth_pages(services, settings, flash)
    register_join(services, flash)
    register_lobby(services)
    register_room(services, ai_name=settings.ai_name, max_backlog=settings.live_max_backlog, presence=presence)
