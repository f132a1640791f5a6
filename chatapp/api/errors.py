"""The one place a domain refusal (or a malformed request) becomes an API error: JSON with a stable
code and a sentence for people, and the HTTP status that says what kind of refusal it is."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from chatapp.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidCredentials,
    LlmError,
    MissingScope,
    NotAuthenticated,
    NotFound,
    ValidationError,
)
from chatapp.domain.limits import RateLimited

# First match wins: subclasses before their bases.
_KINDS: tuple[tuple[type[DomainError], int, str], ...] = (
    (ValidationError, 422, "invalid"),
    (NotAuthenticated, 401, "not_authenticated"),
    (InvalidCredentials, 401, "not_authenticated"),
    (MissingScope, 403, "missing_scope"),
    (NotFound, 404, "not_found"),
    (Forbidden, 403, "forbidden"),
    (Conflict, 409, "conflict"),
    (RateLimited, 429, "rate_limited"),
    (LlmError, 503, "ai_unavailable"),
)
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The JSON of every API error: {"error": {"code", "message", ...details}}."""
    return {"error": {"code": code, "message": message, **details}}


def status_and_body(error: DomainError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body that tell a client about a domain refusal (also used by the room
    socket, whose replies carry the same codes)."""
    for kind, status, code in _KINDS:
        if isinstance(error, kind):
            details: dict[str, Any] = {}
            if isinstance(error, ValidationError):
                details["fields"] = error.fields
            if isinstance(error, RateLimited):
                details["retry_after"] = math.ceil(error.retry_after)
            if isinstance(error, MissingScope):
                details["scope"] = error.scope
            return status, error_body(code, error.message, **details)
    return 400, error_body("refused", error.message)


def _domain_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    status, body = status_and_body(error)
    headers = {"Retry-After": str(body["error"]["retry_after"])} if status == 429 else None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="chatapp"'}
    return JSONResponse(body, status_code=status, headers=headers)


def _bad_request(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = {
        ".".join(str(part) for part in problem.get("loc", ()) if part != "body") or "body": str(problem.get("msg"))
        for problem in error.errors()
    }
    return JSONResponse(error_body("invalid", "The request is not valid.", fields=fields), status_code=422)


def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, "error")
    return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code, headers=error.headers)


def _unexpected(_request: Request, _error: Exception) -> JSONResponse:
    # The server logs the exception itself (Starlette raises it on after this answer); the client learns
    # nothing of the internals.
    return JSONResponse(error_body("internal", "Something went wrong on the server."), status_code=500)


def install_error_handlers(api: FastAPI) -> None:
    """Every refusal of the API answers in the one JSON shape (and so does a failure of ours)."""
    api.add_exception_handler(Exception, _unexpected)
    api.add_exception_handler(DomainError, _domain_error)
    api.add_exception_handler(RequestValidationError, _bad_request)
    api.add_exception_handler(HTTPException, _http_error)
