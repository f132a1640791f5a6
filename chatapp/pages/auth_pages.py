"""Sign-in, sign-up and account pages. Their forms POST to /auth/* (see auth_routes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from nicegui import ui

from chatapp.config import Settings
from chatapp.domain.accounts import Accounts
from chatapp.domain.services import Services
from chatapp.pages.account_tokens import AccountTokens
from chatapp.pages.session import Flash, TabSession, guest_token, safe_next, session_token, sign_in_url
from chatapp.pages.theme import APP_NAME, header

# A submitted form replaces the page. The tab's socket is closed first, so news pushed to the tab meanwhile
# (the password change revokes this tab's own session, which would send it to sign-in) cannot cancel the
# form's redirect and its notice.
_CLOSE_SOCKET_ON_SUBMIT = 'onsubmit="window.socket && window.socket.disconnect()"'


def _form(action: str) -> ui.element:
    return (
        ui.element("form")
        .props(f'method="post" action="{action}" {_CLOSE_SOCKET_ON_SUBMIT}')
        .classes("flex flex-col gap-3 w-full")
    )


def _hidden(name: str, value: str) -> None:
    field = ui.element("input")
    field.props["type"] = "hidden"
    field.props["name"] = name
    field.props["value"] = value


@dataclass(frozen=True)
class Field:
    """One labelled input of a native form: what the person sees and the name the browser posts it under."""

    label: str
    name: str
    autocomplete: str = ""
    hint: str = ""
    password: bool = False


def form_fields(data: dict[str, Any], errors: dict[str, str], *fields: Field) -> None:
    """Labelled inputs of a native form, refilled from `data` (never a password) and marked with `errors`."""
    for field in fields:
        value = "" if field.password else str(data.get(field.name, ""))
        _input(field, value, errors.get(field.name))


def _input(field: Field, value: str, error: str | None) -> ui.input:
    element = ui.input(field.label, value=value, password=field.password)
    element.props("outlined stack-label").classes("w-full")
    element.props["name"] = field.name
    element.props["for"] = field.name
    if field.autocomplete:
        element.props["autocomplete"] = field.autocomplete
    if field.hint:
        element.props["hint"] = field.hint
    if error:
        element.error = error
    return element


_USERNAME = Field("Username", "username", "username")


def _new_password(label: str, name: str, settings: Settings) -> Field:
    return Field(label, name, "new-password", f"At least {settings.min_password_chars} characters", password=True)


def native_form(action: str) -> ui.element:
    """A native <form method=post> (the browser posts it; the page is replaced)."""
    return _form(action)


def register_auth_pages(services: Services, settings: Settings, flash: Flash) -> None:
    """Register /sign-in, /sign-up and /account."""
    # Thin closures: NiceGUI and FastAPI read each page's parameters (the query's `next` and `f`).

    @ui.page("/sign-in", title=f"Sign in · {APP_NAME}")
    async def sign_in_page(request: Request, next: str = "/", f: str = ""):
        return await _sign_in_page(services.accounts, flash, request, next, f)

    @ui.page("/sign-up", title=f"Create account · {APP_NAME}")
    async def sign_up_page(request: Request, next: str = "/", f: str = ""):
        return await _sign_up_page(services.accounts, settings, flash, request, next, f)

    @ui.page("/account", title=f"Account · {APP_NAME}")
    async def account_page(request: Request, f: str = ""):
        return await _account_page(services, settings, flash, request, f)


async def _sign_in_page(accounts: Accounts, flash: Flash, request: Request, next: str, f: str) -> Response | None:
    target = safe_next(next)
    if await accounts.authenticate(session_token(request)):
        return RedirectResponse(target, status_code=303)
    data = flash.load(f)
    header(None)
    with ui.card().classes("auth-card"):
        ui.label("Sign in").classes("text-2xl font-semibold")
        if data.get("error"):
            ui.label(data["error"]).classes("text-negative").props('role="alert"')
        with _form("/auth/sign-in"):
            _hidden("next", safe_next(data.get("next") or target))
            form_fields(data, {}, _USERNAME, Field("Password", "password", "current-password", password=True))
            ui.button("Sign in").props('type="submit" unelevated').classes("w-full")
        with ui.row().classes("gap-1 text-sm"):
            ui.label("New here?")
            ui.link("Create an account", "/sign-up?" + urlencode({"next": target}))
    return None


async def _sign_up_page(
    accounts: Accounts, settings: Settings, flash: Flash, request: Request, next: str, f: str
) -> Response | None:
    target = safe_next(next)
    if await accounts.authenticate(session_token(request)):
        return RedirectResponse(target, status_code=303)
    data = flash.load(f)
    errors = data.get("errors", {})
    guest = await accounts.authenticate_guest(guest_token(request))
    header(None)
    with ui.card().classes("auth-card"):
        ui.label("Create your account").classes("text-2xl font-semibold")
        if guest is not None:
            ui.label(
                f"You are in as the guest {guest.display_name}: your rooms and messages come with your new account."
            ).classes("text-sm opacity-80")
            data.setdefault("display_name", guest.display_name)
        if data.get("error"):  # e.g. too many sign-ups from one address
            ui.label(str(data["error"])).classes("text-negative").props('role="alert"')
        elif errors:
            ui.label("Please fix the fields marked below.").classes("text-negative").props('role="alert"')
        _sign_up_form(data, errors, safe_next(data.get("next") or target), settings)
        with ui.row().classes("gap-1 text-sm"):
            ui.label("Already have an account?")
            ui.link("Sign in", "/sign-in")
    return None


def _sign_up_form(data: dict[str, Any], errors: dict[str, str], target: str, settings: Settings) -> None:
    with _form("/auth/sign-up"):
        _hidden("next", target)
        form_fields(
            data,
            errors,
            Field("Username", "username", "username", "3-32 characters: a-z, 0-9, _ . -"),
            Field("Display name", "display_name", "name", "How others see you"),
            _new_password("Password", "password", settings),
        )
        ui.button("Create account").props('type="submit" unelevated').classes("w-full")


async def _account_page(
    services: Services, settings: Settings, flash: Flash, request: Request, f: str
) -> Response | None:
    accounts = services.accounts
    actor = await accounts.authenticate(session_token(request))
    if actor is None:
        return RedirectResponse(sign_in_url("/account"), status_code=303)
    data = flash.load(f)
    errors = data.get("errors", {})
    tab = TabSession(accounts, session_token(request), actor, ui.context.client)
    tab.watch_revocations(services.session_watch.watch)
    header(actor)
    with ui.card().classes("auth-card"):
        ui.label("Account").classes("text-2xl font-semibold")
        ui.label(f"Signed in as {actor.display_name} (@{actor.username})").classes("opacity-80")
        if data.get("notice"):
            ui.label(data["notice"]).classes("text-positive").props('role="status"')
        ui.label("Display name").classes("text-lg font-medium mt-2")
        _display_name_form(data.get("display_name", actor.display_name), errors)
        ui.label("Change password").classes("text-lg font-medium mt-2")
        _password_form(errors, settings)
        await AccountTokens(services, tab).refresh()
        _sign_out_everywhere_form()
        ui.link("Back to rooms", "/")
    return None


def _sign_out_everywhere_form() -> None:
    ui.label("Sessions").classes("text-lg font-medium mt-2").props('role="heading" aria-level="2"')
    ui.label(
        "Sign out every browser you are signed in on, this one too, and revoke your personal access tokens "
        "(your bots' tokens stay). Their open rooms and sockets close at once."
    ).classes("text-sm opacity-70")
    with _form("/auth/sign-out-everywhere"):
        ui.button("Sign out everywhere", icon="logout").props('type="submit" outline color=negative no-caps')


def _display_name_form(display_name: str, errors: dict[str, str]) -> None:
    with _form("/auth/display-name"):
        form_fields(
            {"display_name": display_name},
            errors,
            Field("Display name", "display_name", "name", "How others see you in every room"),
        )
        ui.button("Change display name").props('type="submit" unelevated').classes("w-full")


def _password_form(errors: dict[str, str], settings: Settings) -> None:
    with _form("/auth/password"):
        form_fields(
            {},
            errors,
            Field("Current password", "current_password", "current-password", password=True),
            _new_password("New password", "new_password", settings),
        )
        ui.button("Change password").props('type="submit" unelevated').classes("w-full")
