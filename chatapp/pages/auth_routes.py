"""Plain HTTP endpoints: sign-in, sign-up, sign-out, password change, health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from nicegui import app

from chatapp.config import Settings
from chatapp.domain.accounts import SignUpForm
from chatapp.domain.errors import DomainError, InvalidCredentials, NotAuthenticated, ValidationError
from chatapp.domain.invites import InviteInvalid
from chatapp.domain.limits import RateLimited
from chatapp.domain.models import NewSession
from chatapp.domain.services import Services
from chatapp.pages.session import (
    GUEST_COOKIE,
    SESSION_COOKIE,
    Flash,
    guest_token,
    safe_next,
    session_token,
    sign_in_url,
)

SEE_OTHER = 303


def is_cross_site(request: Request) -> bool:
    """True when a browser says the POST comes from another site (login CSRF and friends).

    Sec-Fetch-Site decides when the browser sends it; otherwise the Origin must name this host
    (as the client or a reverse proxy's X-Forwarded-Host saw it). Non-browser clients send neither.
    """
    site = request.headers.get("sec-fetch-site")
    if site == "cross-site":
        return True
    if site in {"same-origin", "none"}:
        return False
    origin = request.headers.get("origin")
    if not origin:
        return False
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    return origin == "null" or urlsplit(origin).netloc not in hosts


def refuse_cross_site(request: Request) -> None:
    """A dependency of every state-changing endpoint: 403 for cross-site browser POSTs."""
    if is_cross_site(request):
        raise HTTPException(status_code=403, detail="Cross-site request refused.")


SAME_SITE_ONLY = [Depends(refuse_cross_site)]


def _secure(request: Request, settings: Settings) -> bool:
    if settings.cookie_secure == "always":
        return True
    if settings.cookie_secure == "never":
        return False
    return request.url.scheme == "https"


def _with_session(response: Response, session: NewSession, request: Request, settings: Settings) -> Response:
    return _with_cookie(response, SESSION_COOKIE, session.token, request, settings)


def _with_cookie(response: Response, name: str, token: str, request: Request, settings: Settings) -> Response:
    response.set_cookie(
        name,
        token,
        max_age=int(settings.session_days * 86400),
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
        path="/",
    )
    return response


def client_ip(request: Request) -> str | None:
    """The visitor's address (uvicorn puts the proxy's X-Forwarded-For here when FORWARDED_ALLOW_IPS
    trusts it)."""
    return request.client.host if request.client else None


def _back(path: str, flash: Flash, data: dict) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'f': flash.dump(data)})}", status_code=SEE_OTHER)


def register_auth_routes(services: Services, settings: Settings, flash: Flash) -> None:
    """Add the POST endpoints and /healthz to the app."""
    endpoints = _AuthEndpoints(services, settings, flash)
    same_site_posts: list[tuple[str, Callable[..., Awaitable[Response]]]] = [
        ("/auth/sign-in", endpoints.sign_in),
        ("/auth/sign-up", endpoints.sign_up),
        ("/auth/sign-out", endpoints.sign_out),
        ("/auth/sign-out-everywhere", endpoints.sign_out_everywhere),
        ("/join/{token}/accept", endpoints.join_by_link),
        ("/auth/password", endpoints.change_password),
        ("/auth/display-name", endpoints.change_display_name),
    ]
    for path, endpoint in same_site_posts:
        app.post(path, include_in_schema=False, dependencies=SAME_SITE_ONLY)(endpoint)
    app.get("/healthz", include_in_schema=False)(endpoints.healthz)


async def _form_fields(request: Request) -> dict[str, str]:
    data = await request.form()
    return {key: value for key, value in data.items() if isinstance(value, str)}


class _AuthEndpoints:
    """The endpoints' handlers (FastAPI reads their parameters: a bound method shows it no `self`)."""

    def __init__(self, services: Services, settings: Settings, flash: Flash) -> None:
        self.services = services
        self.accounts = services.accounts
        self.settings = settings
        self.flash = flash

    def _signed_in(self, target: str, session: NewSession, request: Request) -> Response:
        return _with_session(RedirectResponse(target, status_code=SEE_OTHER), session, request, self.settings)

    async def sign_in(self, request: Request) -> Response:
        fields = await _form_fields(request)
        target = safe_next(fields.get("next"))
        try:
            session = await self.accounts.sign_in(
                username=fields.get("username", ""),
                password=fields.get("password", ""),
                previous_token=session_token(request),
                ip=client_ip(request),
            )
        except (InvalidCredentials, RateLimited) as exc:
            data = {"error": exc.message, "username": fields.get("username", ""), "next": target}
            return _back("/sign-in", self.flash, data)
        return self._signed_in(target, session, request)

    async def sign_up(self, request: Request) -> Response:
        fields = await _form_fields(request)
        target = safe_next(fields.get("next"))
        sign_up_form = SignUpForm(
            username=fields.get("username", ""),
            display_name=fields.get("display_name", ""),
            password=fields.get("password", ""),
        )
        accounts = self.accounts
        guest = (
            None
            if await accounts.authenticate(session_token(request))
            else await accounts.authenticate_guest(guest_token(request))
        )
        ip = client_ip(request)
        try:  # a guest who signs up keeps their participants and messages
            session = await (
                accounts.sign_up_guest(guest, sign_up_form, ip=ip) if guest else accounts.sign_up(sign_up_form, ip=ip)
            )
        except (ValidationError, RateLimited) as exc:
            return self._sign_up_refused(exc, sign_up_form, target)
        await accounts.sign_out(session_token(request))
        response = self._signed_in(target, session, request)
        if guest is not None:
            response.delete_cookie(GUEST_COOKIE, path="/")
        return response

    def _sign_up_refused(self, exc: ValidationError | RateLimited, form: SignUpForm, target: str) -> Response:
        fields_or_limit = {"errors": exc.fields} if isinstance(exc, ValidationError) else {"error": exc.message}
        data = {**fields_or_limit, "username": form.username, "display_name": form.display_name, "next": target}
        return _back("/sign-up", self.flash, data)

    async def sign_out(self, request: Request) -> Response:
        await self.accounts.sign_out(session_token(request))
        await self.accounts.sign_out_guest(guest_token(request))
        response = RedirectResponse("/sign-in", status_code=SEE_OTHER)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(GUEST_COOKIE, path="/")
        return response

    async def sign_out_everywhere(self, request: Request) -> Response:
        try:
            actor = await self.accounts.require_actor(session_token(request))
            await self.accounts.sign_out_everywhere(actor)
        except NotAuthenticated:
            return RedirectResponse(sign_in_url("/account"), status_code=SEE_OTHER)
        except DomainError as exc:
            return _back("/account", self.flash, {"errors": {"sign_out_everywhere": exc.message}})
        response = RedirectResponse("/sign-in", status_code=SEE_OTHER)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def join_by_link(self, request: Request, token: str) -> Response:
        fields = await _form_fields(request)
        ip = client_ip(request)
        user = await self.accounts.authenticate(session_token(request))
        guest = None if user else await self.accounts.authenticate_guest(guest_token(request))
        invites = self.services.invites
        try:
            if user is not None:
                room_id = await invites.accept_as_user(user, token, ip=ip)
                return RedirectResponse(f"/rooms/{room_id}", status_code=SEE_OTHER)
            granted = await invites.accept_as_guest(token, fields.get("display_name", ""), guest=guest, ip=ip)
        except InviteInvalid:
            return RedirectResponse(f"/join/{quote(token, safe='')}", status_code=SEE_OTHER)
        except DomainError as exc:
            errors = exc.fields if isinstance(exc, ValidationError) else {"display_name": exc.message}
            data = {"errors": errors, "display_name": fields.get("display_name", "")}
            return _back(f"/join/{quote(token, safe='')}", self.flash, data)
        response = RedirectResponse(f"/rooms/{granted.room_id}", status_code=SEE_OTHER)
        if granted.token is not None:
            _with_cookie(response, GUEST_COOKIE, granted.token, request, self.settings)
        return response

    async def change_password(self, request: Request) -> Response:
        fields = await _form_fields(request)
        try:
            actor = await self.accounts.require_actor(session_token(request))
            session = await self.accounts.update_password(
                actor, current=fields.get("current_password", ""), new=fields.get("new_password", "")
            )
        except NotAuthenticated:
            return RedirectResponse(sign_in_url("/account"), status_code=SEE_OTHER)
        except DomainError as exc:
            errors = exc.fields if isinstance(exc, ValidationError) else {"current_password": exc.message}
            return _back("/account", self.flash, {"errors": errors})
        response = _back("/account", self.flash, {"notice": "Password changed. Your other sessions were signed out."})
        return _with_session(response, session, request, self.settings)

    async def change_display_name(self, request: Request) -> Response:
        fields = await _form_fields(request)
        try:
            actor = await self.accounts.require_actor(session_token(request))
            name = await self.accounts.update_display_name(actor, fields.get("display_name", ""))
        except NotAuthenticated:
            return RedirectResponse(sign_in_url("/account"), status_code=SEE_OTHER)
        except DomainError as exc:
            errors = exc.fields if isinstance(exc, ValidationError) else {"display_name": exc.message}
            data = {"errors": errors, "display_name": fields.get("display_name", "")}
            return _back("/account", self.flash, data)
        return _back("/account", self.flash, {"notice": f"Your display name is now {name}."})

    async def healthz(self) -> JSONResponse:
        database = await self.services.database_ok()
        bus = await self.services.bus_ok()
        body = {"database": "ok" if database else "unreachable", "bus": "ok" if bus else "not listening"}
        if database and bus:
            return JSONResponse({"status": "ok", **body})
        return JSONResponse({"status": "unavailable", **body}, status_code=503)
