"""Two chatapp processes on one PostgreSQL behind nginx (Debian's, running deploy/nginx.conf with only
its upstream addresses and port changed), driven by real Chromium: two people whose tabs are served by
different processes chat, the AI's reply streams to both and the other one stops it; a process is
killed and its tab lands on the other process, which renders it again with its history."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.nginx import find_nginx, route_to, running_nginx
from tests.browser.conftest import RunningApp, start_app, stop_app
from tests.browser.test_ai_in_browser import streaming
from tests.browser.test_chat_in_browser import create_room, join_room, log, say, sign_up
from tests.fake_llm import FakeLLM, Script
from tests.timing import LIVENESS_S

pytestmark = [pytest.mark.browser, pytest.mark.postgres]
SECRET = "behind-nginx-secret-0123456789abcdefghijklmnopq"
REQUIRE_NGINX = os.environ.get("CHATAPP_REQUIRE_NGINX") == "1"


@dataclass
class Cluster:
    url: str  # nginx
    apps: list[RunningApp]
    fake: FakeLLM

    def upstream(self, app: RunningApp) -> str:
        return app.base_url.removeprefix("http://")

    def route_to(self, app: RunningApp) -> str:
        """A route cookie value that nginx sends to this process."""
        return route_to(self.url, self.upstream(app))


@pytest.fixture
def cluster(tmp_path: Path, postgres_database: str) -> Iterator[Cluster]:
    nginx = find_nginx()
    if nginx is None:
        reason = "Debian's nginx is not installed (apt-get install nginx)"
        if REQUIRE_NGINX:
            pytest.fail(f"{reason} (CHATAPP_REQUIRE_NGINX=1)")
        pytest.skip(reason)
    with FakeLLM() as fake:
        env = {
            "CHATAPP_DATABASE_URL": postgres_database,
            "CHATAPP_SECRET_KEY": SECRET,
            "CHATAPP_FORWARDED_ALLOW_IPS": "127.0.0.1",
            "CHATAPP_AI_MODEL": "openai/fake-model",
            "CHATAPP_AI_API_BASE": fake.base_url,
            "CHATAPP_AI_API_KEY": "k",
            "CHATAPP_AI_RETRIES": "0",
        }
        apps = []
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            apps.append(start_app(tmp_path / name / "data", env))
        try:
            upstreams = [a.base_url.removeprefix("http://") for a in apps]
            with running_nginx(upstreams, tmp_path / "nginx", nginx) as url:
                yield Cluster(url, apps, fake)
        finally:
            for app in apps:
                if app.process.poll() is None:
                    stop_app(app)


def person_on(browser, cluster: Cluster, app: RunningApp, username: str, name: str):
    """A browser of its own whose tabs nginx sends to `app`, signed up."""
    context = browser.new_context()
    context.add_cookies([{"name": "chatapp_route", "value": cluster.route_to(app), "url": cluster.url}])
    return context, sign_up(context, cluster.url, username, name)


def test_two_people_on_two_processes_chat_and_share_the_ai_which_the_other_stops(browser, cluster, artifacts):
    one, two = cluster.apps
    _, alice = person_on(browser, cluster, one, "alice", "Alice")
    _, bob = person_on(browser, cluster, two, "bob", "Bob")
    join_room(bob, create_room(alice, "Across"))
    say(alice, "hello from process one")
    log(bob).get_by_text("hello from process one").wait_for()
    say(bob, "and hello from process two")
    log(alice).get_by_text("and hello from process two").wait_for()

    cluster.fake.push(Script(tokens=500, tokens_per_second=20, delay_first=0.2))
    say(alice, "@ai tell us everything")
    streaming(bob).get_by_text("tok5", exact=False).wait_for()  # process one writes, two shows it
    streaming(alice).get_by_text("tok5", exact=False).wait_for()
    bob.screenshot(path=str(artifacts / "nginx-ai-on-the-other-process.png"))
    bob.get_by_role("button", name="Stop").click()  # on process two; the reply runs on process one
    request = cluster.fake.last_request
    cluster.fake.wait_until(lambda: request.done)
    assert request.disconnected_early and request.tokens_sent < 500
    for page in (alice, bob):
        stopped = log(page).locator("article.chat-kind-ai").last
        stopped.locator(".chat-status").get_by_text("stopped", exact=False).wait_for()


def test_a_killed_process_s_tab_lands_on_the_other_and_has_its_history(browser, cluster, artifacts):
    one, two = cluster.apps
    _, alice = person_on(browser, cluster, one, "alice", "Alice")
    _, bob = person_on(browser, cluster, two, "bob", "Bob")
    join_room(bob, create_room(alice, "Failover"))
    for n in range(3):
        say(alice, f"before the crash {n}")
    log(bob).get_by_text("before the crash 2").wait_for()

    one.process.send_signal(signal.SIGKILL)
    one.process.wait(timeout=LIVENESS_S)
    say(bob, "while process one is gone")
    # Alice's tab reconnects through nginx to process two, which renders her room again from the database.
    log(alice).get_by_text("while process one is gone").wait_for(timeout=LIVENESS_S * 1000 * 2)
    log(alice).get_by_text("before the crash 0").wait_for()
    alice.screenshot(path=str(artifacts / "nginx-after-failover.png"))
    say(alice, "back, on process two")
    log(bob).get_by_text("back, on process two").wait_for()
