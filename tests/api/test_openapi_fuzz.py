"""schemathesis against /api/v1/openapi.json of a real `python -m chatapp`: generated requests to every
operation (a bounded number each), with a valid token of a room's owner. No answer may be a 500, and
every answer must match its documented status, content type and schema."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chatapp.app import build_runtime, migrate_database
from chatapp.config import Settings
from tests.browser.conftest import start_app, stop_app
from tests.domain.helpers import sign_up

EXAMPLES_PER_OPERATION = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


async def _owner_with_a_room(data_dir: Path) -> str:
    runtime = build_runtime(Settings(data_dir=data_dir))
    migrate_database(runtime)
    try:
        olga, _ = await sign_up(runtime, "olga")
        room = await runtime.services.rooms.create_room(olga, name="Fuzzed")
        await runtime.services.chat.post_message(olga, room.id, "something to find")
        new = await runtime.services.tokens.create_token(olga, name="fuzz", scopes=["read", "write", "ai", "admin"])
        return new.value
    finally:
        runtime.engine.dispose()


_LOG_DIRS: dict[str, Path] = {}


def running_log_dir(base_url: str) -> Path:
    """Where the server of `base_url` writes its log (start_app's: beside its data dir)."""
    return _LOG_DIRS[base_url]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    app = start_app(data_dir, {"CHATAPP_MESSAGE_BURST": "0"})
    _LOG_DIRS[app.base_url] = data_dir.parent
    try:
        yield app.base_url, asyncio.run(_owner_with_a_room(data_dir))
    finally:
        stop_app(app)


def test_every_operation_answers_as_documented(running: tuple[str, str]) -> None:
    """Each operation of the document in turn (schemathesis's pytest plugin cannot load a schema from a
    fixture under pytest 9, so the operations are walked here)."""
    base_url, token = running
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # the whole API, not an empty document

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case) -> None:
            case.call_and_validate(base_url=f"{base_url}/api/v1", headers=headers, checks=CHECKS)

        try:
            answers_as_documented()
        except (Exception, BaseExceptionGroup) as failure:
            log = next(Path(running_log_dir(base_url)).glob("server-*.log")).read_text()[-4000:]
            raise AssertionError(
                f"{operation.method.upper()} {operation.path}: {failure}\n--- server log:\n{log}"
            ) from None
