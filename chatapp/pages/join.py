"""GET /join/<token>: where an invite link leads. It shows the room's name and how to join, and
changes nothing; the form POSTs to /join/<token>/accept (pages/auth_routes.py)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from chatapp.domain.invites import InviteInvalid
from chatapp.domain.services import Services
from chatapp.pages.auth_pages import Field, form_fields, native_form
from chatapp.pages.session import Flash, request_actor
from chatapp.pages.theme import APP_NAME, header


def invalid_link_page() -> None:
    """One page for every unusable link: unknown, expired, revoked or used up alike."""
    ui.context.client.status_code = 404
    with ui.card().classes("auth-card"):
        ui.label("This invite link is not valid").classes("text-2xl font-semibold").props('role="heading"')
        ui.label("It may have expired, been revoked or used up. Ask whoever sent it for a new one.").classes(
            "opacity-80"
        )
        ui.link("Sign in", "/sign-in")


def register_join(services: Services, flash: Flash) -> None:
    """Register /join/{token}."""

    @ui.page("/join/{token}", title=f"Join · {APP_NAME}")
    async def join_page(request: Request, token: str, f: str = ""):
        actor, _ = await request_actor(services.accounts, request)
        try:
            preview = await services.invites.get_invite_preview(token, actor)
        except InviteInvalid:
            header(actor)
            invalid_link_page()
            return None
        if preview.member_of_room_id is not None:  # already in: the link just leads back to the room
            return RedirectResponse(f"/rooms/{preview.member_of_room_id}", status_code=303)
        header(actor)
        data = flash.load(f)
        errors = data.get("errors", {})
        with ui.card().classes("auth-card"):
            ui.label("You are invited to").classes("opacity-80")
            ui.label(preview.room_name).classes("text-2xl font-semibold").props('role="heading" aria-level="1"')
            if errors.get("display_name") and actor is not None:
                ui.label(errors["display_name"]).classes("text-negative").props('role="alert"')
            with native_form(f"/join/{token}/accept"):
                if actor is None:
                    hint = "How others in the room will see you (you join as a guest)"
                    form_fields(data, errors, Field("Your name", "display_name", "name", hint))
                    ui.button("Join as a guest").props('type="submit" unelevated').classes("w-full")
                else:
                    who = f"{actor.display_name} (guest)" if actor.is_guest else actor.display_name
                    ui.button(f"Join as {who}").props('type="submit" unelevated').classes("w-full")
            if actor is None:
                with ui.row().classes("gap-1 text-sm"):
                    ui.label("Have an account?")
                    ui.link("Sign in first", f"/sign-in?next=/join/{token}")
