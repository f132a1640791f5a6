"""Real Chromium: the AI's reply grows live on two screens, and Stop stops the provider."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import start_app, stop_app
from tests.browser.test_chat_in_browser import create_room, join_room, log, say, sign_up
from tests.fake_llm import FakeLLM, Script
from tests.timing import eventually_blocking

pytestmark = pytest.mark.browser


@pytest.fixture
def ai_app(tmp_path):
    with FakeLLM() as fake:
        app = start_app(
            tmp_path / "data",
            {
                "CHATAPP_AI_MODEL": "openai/fake-model",
                "CHATAPP_AI_API_BASE": fake.base_url,
                "CHATAPP_AI_API_KEY": "test-key",
                "CHATAPP_AI_RETRIES": "0",
            },
        )
        try:
            yield app, fake
        finally:
            stop_app(app)


def alice_and_bob_in_a_room(browser, base_url: str, room_name: str):
    """Two people, each in a browser of their own, in a new public room of Alice's."""
    alice_ctx, bob_ctx = browser.new_context(), browser.new_context()
    alice = sign_up(alice_ctx, base_url, "alice", "Alice")
    bob = sign_up(bob_ctx, base_url, "bob", "Bob")
    join_room(bob, create_room(alice, room_name))
    return alice_ctx, bob_ctx, alice, bob


def streaming(page):
    return log(page).locator(".chat-streaming .chat-stream")


def test_the_reply_grows_on_both_screens_and_stop_stops_the_provider(browser, ai_app, artifacts):
    app, fake = ai_app
    alice_ctx, bob_ctx, alice, bob = alice_and_bob_in_a_room(browser, app.base_url, "Launch")

    fake.push(Script(reply=" ".join(f"word{i}" for i in range(40)), tokens_per_second=20, delay_first=0.3))
    say(alice, "@ai what is left before the launch?")
    bob.get_by_text("Assistant is typing…").wait_for()
    streaming(bob).get_by_text("word3", exact=False).wait_for()
    early = len(streaming(alice).inner_text())
    eventually_blocking(lambda: len(streaming(alice).inner_text()) > early)  # it grows on screen
    bob.screenshot(path=str(artifacts / "reply-growing.png"))
    log(alice).get_by_text("word39").wait_for()
    log(bob).locator("article.chat-kind-ai .chat-body").get_by_text("word39").wait_for()
    log(bob).locator(".chat-streaming").wait_for(state="detached")  # the saved reply takes its place
    assert "word39" in log(bob).locator("article.chat-kind-ai").last.locator(".chat-body").inner_text()
    # The AI's words are marked as such (a person cannot take its name, but the mark says it outright).
    assert log(bob).locator("article.chat-kind-ai").last.locator(".chat-badge").inner_text() == "AI"
    assert log(bob).locator("article.chat-kind-user .chat-badge").count() == 0
    assert fake.last_request.messages[-1]["content"] == "Alice: @ai what is left before the launch?"
    alice.get_by_text("People (3)").wait_for()
    assert "Assistant" in alice.get_by_role("list", name="Participants").inner_text()

    fake.push(Script(tokens=500, tokens_per_second=20))
    say(bob, "@ai tell me everything")
    streaming(alice).get_by_text("tok5", exact=False).wait_for()
    alice.get_by_role("button", name="Stop").click()
    request = fake.last_request
    fake.wait_until(lambda: request.done)
    assert request.disconnected_early and request.tokens_sent < 500
    stopped = log(bob).locator("article.chat-kind-ai").last
    stopped.locator(".chat-body").get_by_text("tok5", exact=False).wait_for()
    assert stopped.locator(".chat-status").inner_text().lower() == "stopped"
    log(bob).locator(".chat-streaming").wait_for(state="detached")  # the saved reply takes its place
    alice.screenshot(path=str(artifacts / "reply-stopped.png"))

    # Regenerate: the new reply grows in place of the old one on both screens, then replaces it.
    replies_before = log(alice).locator("article.chat-kind-ai").count()
    fake.push(Script(reply="A fresh and complete answer.", tokens_per_second=10))
    bob.get_by_role("button", name="Regenerate").click()
    log(alice).locator("article.chat-kind-ai .chat-streaming").wait_for()
    for page in (alice, bob):
        page.get_by_text("A fresh and complete answer.").wait_for()
        assert log(page).locator("article.chat-kind-ai").count() == replies_before  # replaced, not added
        badge = log(page).locator("article.chat-kind-ai").last.locator(".chat-status")
        assert badge.inner_text().lower() == "regenerated"
    assert "tell me everything" in fake.last_request.messages[-1]["content"]
    bob.screenshot(path=str(artifacts / "reply-regenerated.png"))
    alice_ctx.close()
    bob_ctx.close()


def test_a_tab_that_was_offline_catches_up_on_a_regenerated_reply_a_deletion_and_the_ended_stream(
    browser, ai_app, artifacts
):
    app, fake = ai_app
    alice_ctx, bob_ctx, alice, bob = alice_and_bob_in_a_room(browser, app.base_url, "Spotty network")
    fake.push(Script(reply="The old answer."))
    say(alice, "@ai first question")
    log(alice).locator("article.chat-kind-ai .chat-body").get_by_text("The old answer.").wait_for()
    say(bob, "take this back")
    log(alice).get_by_text("take this back").wait_for()

    # Alice's connection drops while the AI regenerates its reply; meanwhile Bob deletes his message.
    fake.push(Script(reply=" ".join(f"new{i}" for i in range(20)), tokens_per_second=10))
    bob.get_by_role("button", name="Regenerate").click()
    in_place = log(alice).locator("article.chat-kind-ai .chat-streaming")  # a regenerated reply grows in place
    in_place.get_by_text("new1", exact=False).wait_for()
    alice_ctx.set_offline(True)
    request = fake.last_request
    fake.wait_until(lambda: request.done)
    log(bob).locator(".chat-streaming").wait_for(state="detached")
    mine = log(bob).locator("article", has_text="take this back")
    mine.get_by_role("button", name="Delete message").click()
    mine.get_by_role("button", name="Confirm: delete this message").click()
    mine.wait_for(state="detached")
    time.sleep(1)
    assert in_place.count() == 1 and "take this back" in log(alice).inner_text()  # still the old state

    alice_ctx.set_offline(False)
    log(alice).get_by_text("take this back").wait_for(state="detached")
    log(alice).locator(".chat-streaming").wait_for(state="detached")  # the stream's end was missed
    replies = log(alice).locator("article.chat-kind-ai")
    assert replies.count() == 1
    assert "new19" in replies.locator(".chat-body").inner_text()
    assert replies.locator(".chat-status").inner_text().lower() == "regenerated"
    assert log(alice).locator("article .chat-body").all_inner_texts() == [
        "@ai first question",
        " ".join(f"new{i}" for i in range(20)),
    ]
    alice.screenshot(path=str(artifacts / "caught-up-after-offline.png"))
    alice_ctx.close()
    bob_ctx.close()
