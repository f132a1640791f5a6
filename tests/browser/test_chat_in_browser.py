"""Real Chromium: two people chat live, hostile markup stays inert, a restart rebuilds the history."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.browser.conftest import start_app, stop_app
from tests.domain.helpers import PASSWORD
from tests.timing import eventually_blocking

pytestmark = pytest.mark.browser


def sign_up(context, base_url: str, username: str, display_name: str):
    page = context.new_page()
    page.goto(f"{base_url}/sign-up")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Display name").fill(display_name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base_url}/")
    return page


def create_room(page, name: str, topic: str = "") -> str:
    page.get_by_label("Room name").fill(name)
    if topic:
        page.get_by_label("Topic (optional)").fill(topic)
    page.get_by_role("button", name="Create room").click()
    page.wait_for_url("**/rooms/*")
    page.get_by_role("log", name="Messages").wait_for()
    return page.url


def join_room(page, room_url: str) -> None:
    """Open a public room and join it, until the composer is there."""
    page.goto(room_url)
    page.get_by_role("button", name="Join room").click()
    page.get_by_label("Message", exact=True).wait_for()


def say(page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def log(page):
    return page.get_by_role("log", name="Messages")


def test_two_browsers_chat_live(browser, live_app, artifacts):
    base = live_app.base_url
    alice_ctx, bob_ctx = browser.new_context(), browser.new_context()
    alice = sign_up(alice_ctx, base, "alice", "Alice")
    bob = sign_up(bob_ctx, base, "bob", "Bob")
    room_url = create_room(alice, "General", "Team talk")

    bob.goto(f"{base}/")
    bob.get_by_role("button", name="Join").click()
    bob.wait_for_url(room_url)
    log(bob).wait_for()
    alice.get_by_text("People (3)").wait_for()
    people = alice.get_by_role("list", name="Participants")
    alice_sees, alice_may = people.get_by_role("listitem").all_inner_texts(), people.get_by_role("button")
    assert [text.split("\n")[:3] for text in alice_sees] == [
        ["person", "Alice (you)", "Owner"],
        ["smart_toy", "Assistant", "AI"],
        ["person", "Bob", "Member"],
    ]
    assert alice_may.all_inner_texts() == ["Remove"]  # the owner may remove Bob; nobody removes the AI

    say(alice, "Hello Bob, **welcome**!")  # how fast it arrives is measured by bench/fanout.py
    log(bob).get_by_text("Hello Bob,").wait_for()
    assert log(bob).locator("strong").inner_text() == "welcome"

    say(bob, "Thanks Alice\n```python\nprint('hi')\n```")
    log(alice).get_by_text("Thanks Alice").wait_for()
    assert log(alice).locator("pre.codehilite span").count() > 0  # highlighted code block
    assert alice.get_by_label("Message", exact=True).input_value() == ""

    alice.screenshot(path=str(artifacts / "alice-room.png"))
    bob.set_viewport_size({"width": 390, "height": 800})
    bob.screenshot(path=str(artifacts / "bob-room-phone.png"))
    alice_ctx.close()
    bob_ctx.close()


HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    "[click me](javascript:window.__pwned=3)",
    '<a href="javascript:window.__pwned=4">raw link</a>',
    "<svg onload=window.__pwned=5>",
]


def test_hostile_markup_renders_inert(browser, live_app, artifacts):
    context = browser.new_context()
    page = sign_up(context, live_app.base_url, "eve", "Eve <b>bold</b>")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    create_room(page, "Sandbox")
    for text in HOSTILE:
        say(page, text)
    log(page).get_by_text("<svg onload").wait_for()
    page.get_by_text("click me").click()
    time.sleep(0.3)

    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    body = log(page)
    assert body.locator("img, script, svg, iframe").count() == 0
    hrefs = body.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert all(not (h or "").lower().startswith("javascript") for h in hrefs)
    assert body.get_by_text('<img src=x onerror="window.__pwned=1">').count() == 1  # shown as text
    assert body.get_by_text("Eve <b>bold</b>").count() == 5  # display name is text, not markup
    assert page.get_by_role("list", name="Participants").get_by_text("Eve <b>bold</b>").count() == 1
    page.screenshot(path=str(artifacts / "hostile-markup.png"))
    context.close()


def test_quick_type_enter_type_enter_loses_nothing(browser, live_app, artifacts):
    context = browser.new_context()
    page = sign_up(context, live_app.base_url, "quinn", "Quinn")
    create_room(page, "Rapid")
    for i in range(10):  # no waiting between messages: the server's "cleared" update races the typing
        say(page, f"rapid {i}")
    log(page).get_by_text("rapid 9").wait_for()
    time.sleep(0.5)
    assert log(page).locator(".chat-body").all_inner_texts() == [f"rapid {i}" for i in range(10)]
    box = page.get_by_label("Message", exact=True)
    assert box.input_value() == ""
    box.fill("first line")
    box.press("Shift+Enter")
    box.type("second line")
    box.press("Enter")
    log(page).get_by_text("second line").wait_for()
    assert log(page).locator(".chat-body").last.inner_html() == "<p>first line<br>\nsecond line</p>"
    say(page, "   ")
    page.get_by_text("Message is empty.").wait_for()
    assert box.input_value() == "   "  # an invalid draft stays in the box
    context.close()


def test_history_is_rebuilt_after_server_restart(browser, tmp_path, artifacts):
    app = start_app(tmp_path / "data")
    port = int(app.base_url.rsplit(":", 1)[1])
    context = browser.new_context()
    try:
        page = sign_up(context, app.base_url, "rita", "Rita")
        create_room(page, "Durable")
        for i in range(3):
            say(page, f"note {i}")
        log(page).get_by_text("note 2").wait_for()
        page.evaluate("window.__old_page = true")
        stop_app(app)
        app = start_app(tmp_path / "data", port=port)
        # The page reconnects, finds its old client gone and reloads: history comes from the database.
        page.wait_for_function("window.__old_page === undefined")
        log(page).get_by_text("note 2").wait_for()
        page.wait_for_function("document.querySelectorAll('article.chat-msg').length === 3")
        say(page, "after restart")
        log(page).get_by_text("after restart").wait_for()
        texts = log(page).locator("article .chat-body").all_inner_texts()
        assert texts == ["note 0", "note 1", "note 2", "after restart"]
        page.screenshot(path=str(artifacts / "after-restart.png"))
    finally:
        context.close()
        stop_app(app)


def test_room_opens_on_newest_page_and_loads_older_on_demand(browser, live_app, artifacts):
    context = browser.new_context()
    page = sign_up(context, live_app.base_url, "olga", "Olga")
    room_url = create_room(page, "Archive")
    room_id = int(room_url.rsplit("/", 1)[1])
    seed_messages(live_app.data_dir, "olga", room_id, 65)
    page.reload()
    log(page).get_by_text("message 64").wait_for()
    articles = log(page).locator("article")
    assert articles.count() == 50
    assert articles.first.locator(".chat-body").inner_text() == "message 15"
    log(page).get_by_role("button", name="Load older messages").click()
    log(page).get_by_text("start of the conversation").wait_for()
    assert articles.count() == 65
    assert articles.first.locator(".chat-body").inner_text() == "message 0"
    page.screenshot(path=str(artifacts / "older-loaded.png"))
    context.close()


GAP_BELOW = "el => el.scrollHeight - el.scrollTop - el.clientHeight"


def test_a_room_of_long_messages_opens_at_the_bottom_and_your_own_message_is_always_shown(browser, live_app, artifacts):
    context = browser.new_context()
    page = sign_up(context, live_app.base_url, "lena", "Lena")
    room_url = create_room(page, "Essays")
    long_text = " ".join(["A long line of prose that wraps across the width of the room several times."] * 12)
    seed_messages(live_app.data_dir, "lena", int(room_url.rsplit("/", 1)[1]), 30, text=long_text)
    page.reload()
    log(page).locator("article").last.wait_for()
    eventually_blocking(lambda: log(page).evaluate(GAP_BELOW) < 48)  # fonts and layout settle: the list follows them
    log(page).evaluate("el => el.scrollBy(0, -150)")  # a layout-like scroll, not the reader's
    say(page, "my own reply")
    log(page).get_by_text("my own reply").wait_for()
    eventually_blocking(lambda: log(page).evaluate(GAP_BELOW) < 48)
    assert page.get_by_text("New messages below").count() == 0
    page.screenshot(path=str(artifacts / "long-messages-bottom.png"))
    context.close()


def seed_messages(data_dir, username: str, room_id: int, count: int, text: str = "message") -> None:
    """Write messages into the app's own database through the domain (another process, same file)."""
    from chatapp.app import build_runtime
    from chatapp.config import Settings

    runtime = build_runtime(Settings(_env_file=None, data_dir=data_dir, message_burst=0))  # seeding: no rate limit

    async def post_all() -> None:
        session = await runtime.services.accounts.sign_in(username=username, password=PASSWORD)
        actor = await runtime.services.accounts.authenticate(session.token)
        for i in range(count):
            await runtime.services.chat.post_message(actor, room_id, f"{text} {i}")

    # Playwright's sync API owns this thread's event loop; the domain runs on a loop of its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, post_all()).result()
    runtime.engine.dispose()


def delete_newest(data_dir, username: str, room_id: int, count: int) -> None:
    """A moderator in another process deletes the room's newest messages (no live news reaches tabs)."""
    from chatapp.app import build_runtime
    from chatapp.config import Settings

    runtime = build_runtime(Settings(_env_file=None, data_dir=data_dir))

    async def delete_all() -> None:
        session = await runtime.services.accounts.sign_in(username=username, password=PASSWORD)
        actor = await runtime.services.accounts.authenticate(session.token)
        for _ in range(count):
            newest = (await runtime.services.chat.list_messages(actor, room_id)).messages[-1]
            await runtime.services.chat.delete_message(actor, room_id, newest.id)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, delete_all()).result()
    runtime.engine.dispose()


def test_a_tab_back_after_a_big_cleanup_shows_none_of_the_deleted_messages(browser, live_app, artifacts):
    base = live_app.base_url
    alice_ctx = browser.new_context()
    alice = sign_up(alice_ctx, base, "alice", "Alice")
    room_url = create_room(alice, "Spam attack")
    room_id = int(room_url.rsplit("/", 1)[1])
    seed_messages(live_app.data_dir, "alice", room_id, 60, text="spam")
    alice.reload()
    log(alice).get_by_text("spam 59").wait_for()
    alice_ctx.set_offline(True)
    delete_newest(live_app.data_dir, "alice", room_id, 55)  # more than a catch-up carries: the list starts over
    time.sleep(1)
    alice_ctx.set_offline(False)
    log(alice).get_by_text("spam 59").wait_for(state="detached")
    texts = log(alice).locator("article .chat-body").all_inner_texts()
    assert texts == [f"spam {i}" for i in range(5)]
    alice.screenshot(path=str(artifacts / "after-cleanup.png"))
    alice_ctx.close()


def test_messages_sent_while_offline_arrive_after_reconnect(browser, live_app, artifacts):
    base = live_app.base_url
    alice_ctx, bob_ctx = browser.new_context(), browser.new_context()
    alice = sign_up(alice_ctx, base, "alice", "Alice")
    bob = sign_up(bob_ctx, base, "bob", "Bob")
    room_url = create_room(alice, "Flaky network")
    join_room(bob, room_url)
    alice_ctx.set_offline(True)
    say(bob, "while you were away 1")
    say(bob, "while you were away 2")
    time.sleep(2)
    alice_ctx.set_offline(False)
    log(alice).get_by_text("while you were away 2").wait_for()
    texts = log(alice).locator("article .chat-body").all_inner_texts()
    assert texts == ["while you were away 1", "while you were away 2"]
    alice.screenshot(path=str(artifacts / "after-reconnect.png"))

    # Away for longer: more was missed than one catch-up carries. The list starts over from the newest
    # page in place: no reload, and the draft being typed stays in the box.
    alice.evaluate("window.__same_page = true")
    alice.get_by_label("Message", exact=True).fill("my unsent draft")
    alice_ctx.set_offline(True)
    seed_messages(live_app.data_dir, "bob", int(room_url.rsplit("/", 1)[1]), 80)
    time.sleep(1)
    alice_ctx.set_offline(False)
    log(alice).get_by_text("message 79").wait_for()
    assert alice.evaluate("window.__same_page") is True
    assert alice.get_by_label("Message", exact=True).input_value() == "my unsent draft"
    texts = log(alice).locator("article .chat-body").all_inner_texts()
    assert texts == [f"message {i}" for i in range(30, 80)]
    alice_ctx.close()
    bob_ctx.close()


@pytest.mark.postgres
def test_two_browsers_chat_live_on_postgresql(browser, postgres_database, tmp_path, artifacts):
    app = start_app(tmp_path / "data", {"CHATAPP_DATABASE_URL": postgres_database})
    try:
        alice_ctx, bob_ctx = browser.new_context(), browser.new_context()
        alice = sign_up(alice_ctx, app.base_url, "alice", "Alice")
        bob = sign_up(bob_ctx, app.base_url, "bob", "Bob")
        room_url = create_room(alice, "On Postgres")
        join_room(bob, room_url)
        say(alice, "stored in PostgreSQL")
        log(bob).get_by_text("stored in PostgreSQL").wait_for()
        say(bob, "and back")
        log(alice).get_by_text("and back").wait_for()
        bob.reload()
        log(bob).get_by_text("and back").wait_for()
        assert log(bob).locator("article .chat-body").all_inner_texts() == ["stored in PostgreSQL", "and back"]
        alice_ctx.close()
        bob_ctx.close()
    finally:
        stop_app(app)


def test_signing_out_in_one_tab_sends_the_other_tabs_to_sign_in(browser, live_app, artifacts):
    context = browser.new_context()
    lobby = sign_up(context, live_app.base_url, "tess", "Tess")
    room = context.new_page()
    room.goto(create_room(lobby, "Two tabs"))
    log(room).wait_for()
    lobby.goto(f"{live_app.base_url}/")
    lobby.get_by_role("button", name="Tess").click()
    lobby.get_by_role("button", name="Sign out").click()
    lobby.wait_for_url("**/sign-in")
    room.wait_for_url(lambda url: "/sign-in" in url)  # pushed to the tab: it leaves without doing anything
    room.get_by_role("button", name="Sign in").wait_for()
    room.screenshot(path=str(artifacts / "room-tab-after-sign-out.png"))
    context.close()


def test_password_change_shows_its_notice_and_signs_out_other_browsers(browser, live_app, artifacts):
    mine, elsewhere = browser.new_context(), browser.new_context()
    page = sign_up(mine, live_app.base_url, "uma", "Uma")
    other = elsewhere.new_page()
    other.goto(f"{live_app.base_url}/sign-in")
    other.get_by_label("Username").fill("uma")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    other.wait_for_url(f"{live_app.base_url}/")
    page.goto(f"{live_app.base_url}/account")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill("a brand new password")
    page.get_by_role("button", name="Change password").click()
    page.get_by_role("status").filter(has_text="Password changed").wait_for()
    assert "/account" in page.url
    other.wait_for_url(lambda url: "/sign-in" in url)
    page.screenshot(path=str(artifacts / "password-changed.png"))
    mine.close()
    elsewhere.close()


def test_sign_out_everywhere_signs_out_this_browser_and_every_other(browser, live_app, artifacts):
    mine, elsewhere = browser.new_context(), browser.new_context()
    page = sign_up(mine, live_app.base_url, "vera", "Vera")
    other = elsewhere.new_page()
    other.goto(f"{live_app.base_url}/sign-in")
    other.get_by_label("Username").fill("vera")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    other.wait_for_url(f"{live_app.base_url}/")
    page.goto(f"{live_app.base_url}/account")
    page.get_by_role("heading", name="Sessions").wait_for()
    page.screenshot(path=str(artifacts / "account-sessions.png"), full_page=True)
    page.get_by_role("button", name="Sign out everywhere").click()
    page.wait_for_url(lambda url: "/sign-in" in url)
    other.wait_for_url(lambda url: "/sign-in" in url)  # pushed to the other browser's open page
    page.goto(f"{live_app.base_url}/account")
    page.wait_for_url(lambda url: "/sign-in" in url)
    mine.close()
    elsewhere.close()


def test_a_phone_with_a_long_name_and_room_name_in_dark_mode_keeps_everything_on_screen_and_readable(
    browser, live_app, artifacts
):
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = sign_up(context, live_app.base_url, "alexandra", "Alexandra Konstantinopoulou-Whitfield X")
    create_room(page, "Q" * 80)
    header = page.locator(".q-header").bounding_box()
    assert header["height"] <= 60  # the name is shortened, not wrapped onto a second line
    composer = page.get_by_label("Message", exact=True).bounding_box()
    assert composer["y"] + composer["height"] <= 844
    title = page.get_by_role("heading", name="Q" * 80).bounding_box()
    people = page.get_by_role("button", name="People").bounding_box()
    assert title["x"] + title["width"] <= people["x"]  # the long name stays clear of the buttons
    page.get_by_role("button", name="People").click()
    leave = page.get_by_role("button", name="Leave room")
    assert leave.evaluate("e => getComputedStyle(e).color") == "rgb(252, 165, 165)"  # light red on dark
    page.screenshot(path=str(artifacts / "phone-dark-long-names.png"))
    context.close()
