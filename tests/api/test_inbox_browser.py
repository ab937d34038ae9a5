"""The handoff inbox in a real browser: a customer asks for a person, a support agent signs in, sees the ticket and
replies, the customer sees the reply in their chat, the agent resolves the ticket and it exports redacted.
"""

from __future__ import annotations

import re

import pytest
from chromium import ARTIFACTS, launch, needs_chromium

from store.staff import add_staff

PASSWORD = "inbox-browser-password"


@pytest.mark.browser
@needs_chromium
def test_inbox_round_trip_in_the_browser(api, helpers):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # 2 shared cores: a sign-in or a poll can take seconds

    from finetune.redact import redact_all
    from finetune.transcripts import export_from_store
    from store.tickets import list_tickets, resolved_conversation_ids, ticket_for

    add_staff(api.store, "sam", "support", PASSWORD)
    (cid, _), = helpers.customers_with_orders(api.store, 1)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            customer = browser.new_page()
            customer.set_default_timeout(60_000)
            customer.goto(f"{api.url}/?token={api.token(cid)}")
            expect(customer.locator("#customer-status")).to_contain_text(f"Signed in as {cid}")
            customer.locator("#talk-to-human").click()
            chat = customer.locator("#customer-chat")
            expect(chat).to_contain_text("Your ticket number is T-")
            label = re.search(r"T-\d{5}", chat.inner_text()).group()
            expect(customer.locator("#customer-note")).to_contain_text(label)
            customer.locator("#customer-msg textarea").fill("My email is kim.lee@example.com, the box was empty")
            customer.locator("#customer-msg textarea").press("Enter")
            expect(chat).to_contain_text("the box was empty")

            agent = browser.new_page()
            agent.set_default_timeout(60_000)
            agent.goto(f"{api.url}/")
            agent.get_by_role("tab", name="Staff").click()
            agent.locator("#staff-name textarea").fill("sam")
            agent.locator("#staff-password input").fill(PASSWORD)
            agent.locator("#staff-sign-in").click()
            expect(agent.locator("#staff-login-msg")).to_contain_text("Signed in as")
            expect(agent.locator("#inbox")).to_be_visible()
            agent.locator("#inbox-tickets input").click()
            agent.get_by_role("option", name=re.compile(re.escape(label))).first.click()
            expect(agent.locator("#inbox-ticket")).to_contain_text("the box was empty")
            expect(agent.locator("#inbox-ticket")).to_contain_text("asked for a human agent")  # the bot's summary
            agent.locator("#inbox-reply textarea").fill("Sorry about that, a new one ships today.")
            agent.locator("#inbox-send").click()
            expect(agent.locator("#inbox-status")).to_contain_text("Reply sent")
            agent.screenshot(path=str(ARTIFACTS / "ui-inbox-ticket.png"), full_page=True)

            expect(chat).to_contain_text("Support team: Sorry about that, a new one ships today.")  # polled
            customer.screenshot(path=str(ARTIFACTS / "ui-customer-staff-reply.png"), full_page=True)

            # a reload keeps the conversation: what was said, the ticket, and the replies still to come
            customer.reload()
            expect(customer.locator("#customer-status")).to_contain_text(label)
            expect(chat).to_contain_text("the box was empty")
            expect(chat).to_contain_text("Support team: Sorry about that, a new one ships today.")
            expect(chat).to_contain_text(f"This is your conversation with our support team (ticket {label})")
            expect(customer.locator("#customer-note")).to_contain_text(label)
            customer.locator("#customer-msg textarea").fill("Thanks, and the tracking number?")
            customer.locator("#customer-msg textarea").press("Enter")
            expect(chat).to_contain_text("Sent to our support team")
            agent.locator("#inbox-reply textarea").fill("It is on its way; you'll get it by email.")
            agent.locator("#inbox-send").click()
            expect(agent.locator("#inbox-ticket")).to_contain_text("and the tracking number?")
            expect(chat).to_contain_text("Support team: It is on its way")  # polled after the reload too
            customer.screenshot(path=str(ARTIFACTS / "ui-customer-reloaded.png"), full_page=True)

            agent.locator("#inbox-note textarea").fill("Reshipped")
            agent.locator("#inbox-resolve").click()
            expect(agent.locator("#inbox-status")).to_contain_text(f"Ticket {label} resolved")
            # the support figures follow the resolution without pressing Update (this store's count, this one included)
            resolved = len(list_tickets(api.store, "resolved"))
            expect(agent.locator("#support-figures")).to_contain_text(f"resolved {resolved} ")
            expect(agent.locator("#support-figures")).to_be_visible()
        finally:
            browser.close()

    number = int(label[2:])
    conversation = next(t.conversation_id for t in [ticket_for(api.store, s.conversation_id)
                                                    for s in api.sessions] if t and t.number == number)
    assert conversation in resolved_conversation_ids(api.store)
    found, _ = redact_all([t for t in export_from_store(api.store) if t.conversation_id == conversation])
    text = "\n".join(m["content"] for m in found[0].messages)
    assert "kim.lee@example.com" not in text and "<EMAIL_1>" in text
    assert "Sorry about that, a new one ships today." in text
