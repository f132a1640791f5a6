"""The shared look: CSS, the header with the app name and the user menu."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.exception_handlers import http_exception_handler
from nicegui import Client, app, ui
from starlette.exceptions import HTTPException

from chatapp.domain.models import Actor
from chatapp.live.markdown import code_css

APP_NAME = "chatapp"

CSS = """
:root { --chat-accent: #4f46e5; }
.nicegui-content { padding: 0; }
.page-narrow { width: 100%; max-width: 960px; margin: 0 auto; padding: 1rem; }
.auth-card { width: 100%; max-width: 420px; margin: 2rem auto; }
.room-page { height: calc(100dvh - 52px); width: 100%; display: flex; flex-direction: column; }
.room-head { padding: .5rem 1rem; border-bottom: 1px solid rgba(127,127,127,.25); }
.room-topic { opacity: .75; font-size: .875rem; overflow-wrap: anywhere; }
.chat-log-wrap { flex: 1 1 auto; min-height: 0; position: relative; display: flex; flex-direction: column; }
.chat-log { flex: 1 1 auto; overflow-y: auto; padding: .5rem 1rem; outline: none; }
.chat-older { text-align: center; padding: .5rem 0; font-size: .8rem; opacity: .8; }
.chat-older-btn, .chat-jump { border: 1px solid rgba(127,127,127,.4); border-radius: 999px; padding: .25rem .9rem;
  background: transparent; color: inherit; cursor: pointer; font-size: .8rem; }
.chat-jump { position: absolute; bottom: .75rem; left: 50%; transform: translateX(-50%);
  background: var(--chat-accent); color: white; border: none; box-shadow: 0 2px 8px rgba(0,0,0,.25); }
.chat-empty { text-align: center; opacity: .7; margin-top: 2rem; }
.chat-msg { position: relative; padding: .35rem .25rem; border-radius: 6px; }
.chat-msg:hover { background: rgba(127,127,127,.08); }
.chat-msg.chat-cont { padding-top: 0; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.chat-msg-head { display: flex; gap: .5rem; align-items: baseline; }
.chat-author { font-weight: 600; }
.chat-badge { font-size: 0.7rem; font-weight: 600; padding: 0 0.35rem; border-radius: 0.25rem;
  background: rgba(25, 118, 210, 0.14); color: inherit; letter-spacing: 0.03em; }
.chat-badge-guest { background: rgba(217, 119, 6, 0.2); }
.chat-badge-bot { background: rgba(14, 116, 144, 0.2); }
.chat-time { font-size: .75rem; opacity: .65; }
.chat-body { overflow-wrap: anywhere; line-height: 1.45; }
.chat-body p { margin: 0 0 .25rem 0; }
.chat-body pre { background: rgba(127,127,127,.12); padding: .5rem .75rem; border-radius: 6px; overflow-x: auto; }
.chat-body code { font-size: .875em; background: rgba(127,127,127,.12); padding: 0 .2em; border-radius: 3px; }
.chat-body pre code { background: none; padding: 0; }
.chat-body blockquote { border-left: 3px solid rgba(127,127,127,.5); margin: 0; padding-left: .75rem; opacity: .9; }
.chat-body ul { list-style: disc; padding-left: 1.5rem; margin: .25rem 0; }
.chat-body ol { list-style: decimal; padding-left: 1.5rem; margin: .25rem 0; }
.chat-body h1, .chat-body h2, .chat-body h3 { font-weight: 600; font-size: 1.1rem; margin: .35rem 0; }
.chat-body table { border-collapse: collapse; }
.chat-body td, .chat-body th { border: 1px solid rgba(127,127,127,.4); padding: .2rem .5rem; }
.chat-body a { color: var(--chat-accent); text-decoration: underline; }
.body--dark .chat-body a { color: #a5b4fc; }
.chat-stream { white-space: pre-wrap; }
.chat-status { font-size: .7rem; text-transform: uppercase; letter-spacing: .03em; opacity: .75;
  border: 1px solid rgba(127,127,127,.5); border-radius: 4px; padding: 0 .3rem; }
.chat-actions { display: flex; gap: .4rem; }
.chat-actions:empty { display: none; }
.chat-delete-btn { position: absolute; top: .2rem; right: .4rem; border: 0; background: inherit; color: inherit;
  opacity: 0; cursor: pointer; font-size: .75rem; padding: .1rem .4rem; border-radius: 4px; }
.chat-msg:hover .chat-delete-btn, .chat-delete-btn:focus, .chat-delete-btn[aria-label^="Confirm"] { opacity: .75; }
.chat-delete-btn[aria-label^="Confirm"] { color: #b91c1c; opacity: 1; }
.chat-regen-btn { margin-top: .25rem; border: 1px solid rgba(127,127,127,.5); border-radius: 999px;
  padding: .1rem .8rem; background: transparent; color: inherit; cursor: pointer; font-size: .8rem; }
.chat-stop-btn { margin-top: .25rem; border: 1px solid rgba(127,127,127,.5); border-radius: 999px;
  padding: .1rem .8rem; background: transparent; color: inherit; cursor: pointer; font-size: .8rem; }
.chat-notice { margin: .5rem 0; padding: .4rem .75rem; border-radius: 6px; font-size: .875rem;
  background: rgba(242,192,55,.18); }
.composer { padding: .5rem 1rem .75rem; border-top: 1px solid rgba(127,127,127,.25); }
.composer-row { display: flex; align-items: flex-start; gap: .5rem; width: 100%; }
.composer-input { flex: 1 1 auto; min-width: 0; }
.composer-send { margin-top: 2px; }
.composer-outbox { list-style: none; margin: 0 0 .4rem; padding: 0; display: flex; flex-direction: column; gap: .2rem; }
.outbox-item { display: flex; gap: .75rem; align-items: baseline; padding: .2rem .25rem; border-radius: 6px;
  border-left: 3px solid rgba(127,127,127,.5); padding-left: .5rem; }
.outbox-item[data-state="retrying"] { border-left-color: #d97706; }
.outbox-text { flex: 1 1 auto; min-width: 0; white-space: pre-wrap; overflow-wrap: anywhere; opacity: .7; }
.outbox-state { flex: none; font-size: .75rem; font-style: italic; opacity: .8; }
.people-you { opacity: .6; font-weight: normal; }
.people-actions { display: flex; gap: .35rem; margin-top: .2rem; align-items: center; }
.people-role-select { font-size: .75rem; padding: 0 .2rem; border: 1px solid rgba(127,127,127,.5); border-radius: 4px;
  background: transparent; color: inherit; }
.people-remove { font-size: .75rem; border: 1px solid rgba(185,28,28,.5); color: #b91c1c; background: transparent;
  border-radius: 999px; padding: 0 .5rem; cursor: pointer; }
.people-readmit, .people-make-member { font-size: .75rem; border: 1px solid rgba(127,127,127,.5); color: inherit;
  background: transparent; border-radius: 999px; padding: 0 .5rem; cursor: pointer; }
.people-removed { margin-top: 1rem; }
.people-show-removed { font-size: .8rem; background: transparent; border: none; color: inherit; opacity: .8;
  text-decoration: underline; cursor: pointer; padding: 0; }
.people-none { font-size: .85rem; opacity: .7; margin: 0; }
/* NiceGUI puts Quasar's !important colour classes in a cascade layer (quasar_importants); an
   !important declaration wins only from an earlier layer, so these overrides go in "overrides". */
@layer overrides {
  .body--dark .room-head .q-btn, .body--dark .q-btn.text-primary { color: #a5b4fc !important; }
  .body--dark .leave-room, .body--dark .q-btn.text-negative { color: #fca5a5 !important; }
}
.body--dark .people-remove { color: #fca5a5; border-color: rgba(252,165,165,.55); }
.room-title { overflow-wrap: anywhere; min-width: 0; display: -webkit-box; -webkit-box-orient: vertical;
  -webkit-line-clamp: 2; overflow: hidden; }
.user-menu-button .q-btn__content { max-width: 40vw; flex-wrap: nowrap; }
.user-menu-button .block { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.room-settings .q-textarea textarea { max-height: 12rem; overflow-y: auto; }
.people-heading { font-size: 1rem; font-weight: 600; margin: 0 0 .5rem 0; }
.people-list { list-style: none; margin: 0; padding: 0; }
.people-item { display: flex; align-items: center; gap: .75rem; padding: .35rem .25rem; }
.people-icon { opacity: .8; }
.people-text { display: flex; flex-direction: column; min-width: 0; line-height: 1.25; }
.people-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.people-role { font-size: .75rem; opacity: .65; }
.lobby-preview { opacity: .75; font-size: .875rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
"""

# NiceGUI's "Connection lost. Trying to reconnect..." popup (#popup, and its "message too long" sibling) sits
# at the bottom left and would hide the composer, its outbox line and the draft exactly when they matter:
# made a small pill at the top centre, over the header. NiceGUI's rules live in its "nicegui" cascade
# layer and these are unlayered, so they win without !important; its show/hide (aria-hidden, the 2 s
# delay before showing) and pointer-events: none (clicks go through) are kept.
RECONNECT_NOTICE_CSS = """
.nicegui-error-popup { top: .5rem; bottom: auto; left: 50%; right: auto; transform: translateX(-50%);
  margin: 0; padding: .3rem .9rem; max-width: calc(100vw - 1rem); width: max-content;
  flex-direction: row; flex-wrap: wrap; justify-content: center; column-gap: .35rem; row-gap: 0;
  font-size: .875rem; line-height: 1.35; text-align: center; border-radius: 999px;
  background-color: #fef3c7; color: #78350f; border: 1px solid #d97706; box-shadow: 0 2px 8px rgba(0,0,0,.25); }
.body--dark .nicegui-error-popup, .body--light .nicegui-error-popup { background-color: #fef3c7; }
.nicegui-error-popup > span:first-child::before { position: static; margin-right: .3rem; }
"""

# The popup has no live-region role, and it is the element NiceGUI aria-hides, so a role on it would
# appear already filled (often not announced). A status region around it is always there: its content
# appearing (aria-hidden false, then visible) is what a screen reader announces, politely.
RECONNECT_NOTICE_SCRIPT = """<script>
document.addEventListener("DOMContentLoaded", () => {
  for (const popup of document.querySelectorAll(".nicegui-error-popup")) {
    const region = Object.assign(document.createElement("div"), { className: "nicegui-popup-status" });
    region.setAttribute("role", "status");
    region.setAttribute("aria-atomic", "true");
    popup.before(region);
    region.append(popup);
  }
});
</script>"""


def install_theme() -> None:
    """Add the shared CSS to every page, and make NiceGUI's reconnect notice a top banner that screen
    readers announce (call once at start-up)."""
    ui.add_css(CSS + RECONNECT_NOTICE_CSS + code_css(), shared=True)
    ui.add_head_html(RECONNECT_NOTICE_SCRIPT, shared=True)


def header(actor: Actor | None) -> None:
    """The top bar: app name (home link) and, when signed in, the user menu."""
    ui.colors(primary="#4f46e5")
    with ui.header(elevated=False).classes("items-center justify-between px-4 py-2 bg-primary"):
        ui.link(APP_NAME, "/").classes("text-lg font-bold text-white no-underline")
        if actor is None:
            return
        name = f"{actor.display_name} (guest)" if actor.is_guest else actor.display_name
        menu_button = ui.button(name, icon="account_circle").props("flat no-caps color=white")
        menu_button.classes("user-menu-button")
        with menu_button, ui.menu().props("auto-close"):
            if actor.is_guest:
                ui.label("You joined as a guest").classes("px-4 pt-2 text-sm opacity-70")
                ui.menu_item("Create an account (keeps your messages)", lambda: ui.navigate.to("/sign-up"))
                ui.label("Signing out ends your guest pass: coming back takes a new link.").classes(
                    "px-4 text-xs opacity-70 max-w-[16rem]"
                )
            else:
                ui.label(f"@{actor.username}").classes("px-4 pt-2 text-sm opacity-70")
                ui.menu_item("Account settings", lambda: ui.navigate.to("/account"))
            with ui.element("form").props('method="post" action="/auth/sign-out"').classes("w-full"):
                ui.button("Sign out", icon="logout").props('type="submit" flat no-caps align="left"').classes("w-full")


def error_page() -> None:
    """What a visitor sees when building a page failed: no exception text (it may hold SQL or
    hostnames); the details go to the server log."""
    header(None)
    with ui.column().classes("page-narrow"):
        ui.label("Something went wrong").classes("text-2xl font-semibold")
        ui.label("The page could not be shown. Please try again in a moment.").classes("opacity-80")
        ui.link("Back to your rooms", "/")


def install_not_found_page() -> None:
    """Unknown addresses get the app's own "Page not found" (NiceGUI's default shows the exception's
    name); a plain endpoint's 404 (e.g. an API route) stays plain JSON, as FastAPI gives it."""

    @app.exception_handler(404)
    async def not_found(request: Request, exception: Exception) -> Response:
        endpoint = request.scope.get("endpoint")
        if endpoint is not None and not request.scope.get("nicegui_page_path") and isinstance(exception, HTTPException):
            return await http_exception_handler(request, exception)
        with Client(ui.page(""), request=request) as client:
            header(None)
            with ui.column().classes("page-narrow"):
                ui.label("Page not found").classes("text-2xl font-semibold").props('role="heading" aria-level="1"')
                ui.label("There is nothing at this address.").classes("opacity-80")
                ui.link("Back to your rooms", "/")
        return client.build_response(request, 404)
