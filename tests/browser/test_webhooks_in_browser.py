"""An incoming webhook in a real browser: the owner makes one in Settings, a script posts to its URL, and
the message shows live, marked as a webhook's, under the name the script gave."""

from __future__ import annotations

import httpx

from tests.browser.test_chat_in_browser import create_room, sign_up


def test_a_webhook_made_in_settings_posts_live_into_the_room(browser, live_app, artifacts):
    context = browser.new_context()
    page = sign_up(context, live_app.base_url, "wes", "Wes")
    create_room(page, "Deploys")
    page.get_by_role("button", name="Settings").click()
    page.get_by_role("heading", name="Incoming webhooks").wait_for()
    page.get_by_label("Webhook name").fill("CI")
    page.get_by_role("button", name="Create webhook").click()
    url_field = page.get_by_label("Webhook URL")
    url_field.wait_for()
    url = url_field.input_value()
    assert url.startswith(f"{live_app.base_url}/api/v1/hooks/whk_")
    page.screenshot(path=str(artifacts / "webhook-created.png"), full_page=True)
    page.get_by_role("button", name="Close").click()
    posted = httpx.post(url, json={"text": "Build **42** passed <script>alert(1)</script>", "username": "Jenkins"})
    assert posted.status_code == 201, posted.text
    log = page.get_by_role("log", name="Messages")
    message = log.locator("article").filter(has_text="Build 42 passed")
    message.wait_for()
    assert message.locator(".chat-author").inner_text() == "Jenkins"
    assert message.locator(".chat-badge").inner_text() == "webhook"
    assert message.locator("strong").inner_text() == "42"  # Markdown, like everyone's...
    assert message.locator("script").count() == 0  # ...and sanitised like everyone's
    page.get_by_role("button", name="People", exact=True).click()
    page.get_by_text("Webhook", exact=True).first.wait_for()
    page.screenshot(path=str(artifacts / "webhook-message.png"))
    context.close()
