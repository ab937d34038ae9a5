"""The app in a real browser (Debian's headless Chromium through Playwright): both roles end to end.

Screenshots go to test-artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import pytest
from chromium import ARTIFACTS, launch, needs_chromium

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # the first churn scoring fits a model (seconds on 2 shared cores)

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)  # generous: CI machines are shared
    yield page
    ARTIFACTS.mkdir(exist_ok=True)  # the last state of every test, to see what happened when one fails
    page.screenshot(path=str(ARTIFACTS / f"last-{request.node.name}.png"), full_page=True)
    context.close()


WORKING = re.compile(r"(Working on it|Looking up order \S+|Writing the answer)…")  # the working bubble


def sign_in(page, url: str, cid: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("#customer-status")).to_contain_text("Pick a customer")
    page.locator("#customer-pick input").click()
    page.get_by_role("option", name=re.compile(re.escape(f"· {cid} ·"))).first.click()
    page.locator("#customer-sign-in").click()
    expect(page.locator("#customer-status")).to_contain_text(f"Signed in as {cid}")
    expect(page.locator("#customer-msg textarea")).to_be_editable()


def send(page, text: str) -> None:
    from playwright.sync_api import expect

    box = page.locator("#customer-msg textarea")
    expect(box).to_be_editable()  # the previous reply has finished
    asked = page.locator("#customer-chat [data-testid='user']")
    before = asked.count()
    box.fill(text)
    expect(box).to_have_value(text)
    box.press("Enter")
    expect(asked).to_have_count(before + 1)  # the turn has started (the box stays locked until it ends)


def last_reply(page):
    """The latest assistant bubble of the customer chat, once the working bubble is gone."""
    from playwright.sync_api import expect

    chat = page.locator("#customer-chat")
    expect(page.locator("#customer-msg textarea")).to_be_editable()  # unlocked after the reply's last update
    expect(chat).not_to_contain_text(WORKING)
    return chat.locator("[data-testid='bot']").last


def test_customer_asks_about_an_order(page, served, helpers):
    from playwright.sync_api import expect

    from store.models import Order

    (cid, oid), = helpers.customers_with_orders(served.store, 1, status="pending")
    with served.store.read() as s:
        status = s.get(Order, oid).status
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(page, served.url, cid)
    expect(page.locator("#customer-status")).to_contain_text(cid)
    # model, adapter and server paths are for staff: a customer's header names none of them
    assert "scripted" not in page.locator("#backend-line").inner_text()
    chat = page.locator("#customer-chat")

    # While the bot works: a working bubble at once, and "Talk to a human" stays usable.
    box = page.locator("#customer-msg textarea")
    box.fill(f"Slowly please: where is my order {oid}?")
    sent = time.perf_counter()
    box.press("Enter")
    expect(chat).to_contain_text(WORKING, timeout=5_000)
    shown_after = time.perf_counter() - sent
    expect(box).to_be_disabled()  # the reply is not there yet (the model thinks for 2 s)
    expect(page.locator("#talk-to-human")).to_be_enabled()
    print(f"working bubble shown {shown_after:.2f} s after sending")
    page.screenshot(path=str(ARTIFACTS / "ui-customer-working.png"), full_page=True)
    expect(chat).to_contain_text(f"Looked up order {oid}")  # a plain line, not the call's JSON
    expect(chat).to_contain_text(re.compile(rf"{re.escape(oid)}.*{status}", re.DOTALL))
    last_reply(page)
    assert '"order_id"' not in chat.inner_text() and "get_order_details" not in chat.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-customer-order.png"), full_page=True)

    # A cancellation waits for the customer: Confirm / Cancel appear; Cancel keeps the order as it is.
    send(page, f"Please cancel order {oid}")
    expect(page.locator("#confirm-btn")).to_be_visible()
    expect(chat).to_contain_text("Please confirm")
    page.screenshot(path=str(ARTIFACTS / "ui-customer-confirm.png"), full_page=True)
    expect(page.locator("#customer-msg textarea")).to_be_editable()
    page.locator("#cancel-btn").click()
    expect(page.locator("#confirm-btn")).to_be_hidden()
    expect(page.locator("#customer-msg textarea")).to_be_editable()
    with served.store.read() as s:
        assert s.get(Order, oid).status == "pending"
    # After Cancel the next question is answered as a question (the dropped write does not come back).
    send(page, f"Where is my order {oid}?")
    expect(chat.locator("[data-testid='bot']").last).to_contain_text(status)
    expect(page.locator("#confirm-btn")).to_be_hidden()

    page.locator("#talk-to-human").click()
    expect(chat).to_contain_text("transferred to a human")
    expect(page.locator("#customer-note")).to_contain_text("A person from our team will reply here")
    send(page, "Hello, is anyone there?")
    expect(chat).to_contain_text("Hello, is anyone there?")
    expect(page.locator("#customer-note")).to_contain_text("A person from our team will reply here")
    page.screenshot(path=str(ARTIFACTS / "ui-customer-handoff.png"), full_page=True)

    # Clear starts a new conversation on the server: the old one does not come back with the next message.
    old = served.sessions[-1]
    page.locator("#customer-chat button[aria-label='Clear'], #customer-chat button[title='Clear']").first.click()
    expect(chat).to_contain_text("New conversation")
    expect(chat).not_to_contain_text("Hello, is anyone there?")
    expect(page.locator("#customer-note")).not_to_contain_text("A person from our team")
    send(page, "hello again")
    last_reply(page)
    new = served.sessions[-1]
    assert new is not old and new.customer_id == cid and not new.handed_off
    assert new.history[0].content == "hello again"  # the new session starts from this message
    assert "Where is my order" not in chat.inner_text()


def test_talk_to_human_during_a_reply_queues_behind_it(page, served, helpers):
    from playwright.sync_api import expect

    (cid, oid), = helpers.customers_with_orders(served.store, 1)
    sign_in(page, served.url, cid)
    chat = page.locator("#customer-chat")
    send(page, f"Slowly please: where is my order {oid}?")
    expect(chat).to_contain_text(WORKING)
    page.locator("#talk-to-human").click()  # usable while the bot works
    expect(page.locator("#customer-note")).to_contain_text("as soon as this answer is done")
    expect(chat).to_contain_text("transferred to a human")
    expect(page.locator("#customer-note")).to_contain_text("A person from our team will reply here")
    text = chat.inner_text()
    assert text.index(f"Looked up order {oid}") < text.index("transferred to a human")  # the answer came first
    assert "still answering" not in text
    expect(page.locator("#customer-msg textarea")).to_be_editable()
    assert served.sessions[-1].handed_off
    page.screenshot(path=str(ARTIFACTS / "ui-customer-handoff-queued.png"), full_page=True)


def test_a_persons_markup_is_shown_as_text(page, served, helpers):
    from playwright.sync_api import expect

    (cid, _), = helpers.customers_with_orders(served.store, 1)
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if "127.0.0.1:1/" in r.url else None)
    sign_in(page, served.url, cid)
    message = "<b>x</b> ![](http://127.0.0.1:1/x.png) <img src=http://127.0.0.1:1/y.png>"
    send(page, message)
    chat = page.locator("#customer-chat")
    last_reply(page)  # answered
    expect(chat).to_contain_text(message)  # every character as typed
    assert chat.locator("b", has_text="x").count() == 0
    assert chat.locator("img[src*='127.0.0.1:1']").count() == 0
    assert fetched == []
    page.screenshot(path=str(ARTIFACTS / "ui-customer-markup-as-text.png"), full_page=True)


def _customer_with_both(store):
    """A customer with a delivered order that has a tracking number and a pending order, and those orders."""
    from sqlalchemy import select

    from store.models import Fulfillment, Order

    with store.read() as s:
        tracked = {f.order_id: f for f in s.scalars(select(Fulfillment))}
        by: dict[str, dict[str, Order]] = {}
        for o in s.scalars(select(Order).order_by(Order.customer_id, Order.id)):
            if o.status == "delivered" and o.id in tracked:
                by.setdefault(o.customer_id, {}).setdefault("delivered", o)
            elif o.status == "pending":
                by.setdefault(o.customer_id, {}).setdefault("pending", o)
        cid, orders = next((c, o) for c, o in by.items() if len(o) == 2)
        done, pending = orders["delivered"], orders["pending"]
        item = done.items[0]
        return (cid, done.id, done.status, done.total, tracked[done.id].tracking_id, item.product_id,
                pending.id, pending.total)


def test_multi_task_conversation_shows_the_stores_facts(page, served):
    """A status question, a product question, then a cancellation confirmed with the button: the page shows the
    order's status, total and tracking number, the product's name and price, as the store has them.
    """
    from playwright.sync_api import expect

    from store.models import Order, Product

    cid, done, status, total, tracking, product_id, pending, pending_total = _customer_with_both(served.store)
    with served.store.read() as s:
        product = s.get(Product, product_id)
        name, prices = product.name, {f"${v.price:.2f}" for v in product.variants}
    sign_in(page, served.url, cid)
    chat = page.locator("#customer-chat")

    send(page, f"What is the status of my order {done}?")
    expect(chat).to_contain_text(f"Looked up order {done}")
    reply = last_reply(page)
    expect(reply).to_contain_text(done)
    expect(reply).to_contain_text(status)
    expect(reply).to_contain_text(f"${total:.2f}")
    expect(reply).to_contain_text(tracking)

    send(page, f"Tell me about product {product_id}")
    expect(chat).to_contain_text(f"Looked up product {product_id}")
    reply = last_reply(page)
    expect(reply).to_contain_text(name)
    assert any(p in reply.inner_text() for p in prices), (prices, reply.inner_text())

    send(page, f"Please cancel order {pending}")
    expect(page.locator("#confirm-btn")).to_be_visible()
    expect(chat).to_contain_text("Please confirm")
    expect(chat).to_contain_text(f"${pending_total:.2f}")
    with served.store.read() as s:
        assert s.get(Order, pending).status == "pending"
    page.locator("#confirm-btn").click()
    expect(chat).to_contain_text(f"Cancelled order {pending}")
    expect(page.locator("#confirm-btn")).to_be_hidden()
    last_reply(page)
    with served.store.read() as s:
        assert s.get(Order, pending).status == "cancelled"
        assert s.get(Order, done).status == status  # the other order is untouched
    text = chat.inner_text()
    assert text.count(tracking) >= 1 and "Looked up order" in text
    page.screenshot(path=str(ARTIFACTS / "ui-customer-multi-task.png"), full_page=True)


def download_csv(page, expect_rows: int, tries: int = 10) -> list[dict[str, str]]:
    """The churn CSV's rows. The button's new file comes with the same update as the note, but a click in the
    moment after can still fetch the previous file: a few tries, until the row count matches the note.
    """
    for _ in range(tries):
        with page.expect_download() as download:
            page.locator("#churn-csv").click()
        with Path(download.value.path()).open() as f:
            rows = list(csv.DictReader(f))
        if len(rows) == expect_rows:
            break
        page.wait_for_timeout(300)
    return rows


def test_marketer_sees_churn_table_and_chart(page, served):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(served.url)
    page.get_by_role("tab", name="Marketer console").click()
    page.locator("#marketer-password input").fill("wrong")
    page.locator("#marketer-sign-in").click()
    expect(page.locator("#marketer-login-msg")).to_contain_text("Wrong password")
    expect(page.locator("#marketer-console")).to_be_hidden()
    page.locator("#marketer-password input").fill("s3cret-test")
    page.locator("#marketer-sign-in").click()
    expect(page.locator("#marketer-console")).to_be_visible()
    expect(page.locator("#backend-line")).to_contain_text("scripted")  # staff see which model answers
    # Opening the console fills the panels with the default filters; wait for that before asking the chat.
    note = page.locator("#churn-note")
    expect(note).to_contain_text("As of")
    expect(page.locator("#segments-plot canvas, #segments-plot svg").first).to_be_visible()
    table = page.locator("#churn-table")
    expect(table).to_contain_text("churn_probability")
    before = (note.inner_text(), table.inner_text())

    page.locator("#marketer-msg textarea").fill("Who is likely to churn?")
    page.locator("#marketer-msg textarea").press("Enter")
    m_chat = page.locator("#marketer-chat")
    expect(m_chat).to_contain_text("score_churn")
    expect(page.locator("#marketer-msg textarea")).to_be_editable()  # the reply has finished
    session = served.sessions[-1]
    name, result = session.all_results[-1]
    assert name == "score_churn"
    m_chat.get_by_text("Tool: score_churn").first.click()  # open the panel: the tool's complete table
    for row in result.rows:
        expect(m_chat).to_contain_text(row.customer_id)
    # The chat's answer does not redraw the panels: they keep their own filters and rows.
    assert (note.inner_text(), table.inner_text()) == before
    page.screenshot(path=str(ARTIFACTS / "ui-marketer-churn.png"), full_page=True)

    # Only the panels' own controls refresh them: the high tier, as the tool lists it when called directly.
    from tools.context import ShopContext
    from ui import service

    ctx = ShopContext(store=served.store, settings=served.settings, role="marketer")
    high = service.call_tool(service.CHURN_TOOL, ctx, tier="high", horizon_days=90, top_n=service.PANEL_TOP_N)
    ids = [r["customer_id"] for r in high["rows"]]
    assert ids and f"{len(ids)} customers" not in before[0]
    page.locator("#f-tier input").click()
    page.get_by_role("option", name="high").click()
    page.locator("#marketer-refresh").click()
    expect(note).to_contain_text(f"{len(ids)} customers")
    expect(page.locator("#risk-plot canvas, #risk-plot svg").first).to_be_visible()
    rows = download_csv(page, expect_rows=len(ids))
    assert list(rows[0])[:2] == ["rank", "customer_id"]
    assert [r["customer_id"] for r in rows] == ids and {r["tier"] for r in rows} == {"high"}


# Counts the message box's unlocks (disabled -> enabled) the instant the DOM changes, so the test can type at once.
WATCH_UNLOCKS = """(sel) => {
  const box = document.querySelector(sel);
  window.__unlocks = 0;
  let was = box.disabled;
  new MutationObserver(() => {
    if (was && !box.disabled) window.__unlocks += 1;
    was = box.disabled;
  }).observe(box, {attributes: true, attributeFilter: ["disabled"]});
}"""


def test_follow_ups_typed_the_instant_the_box_unlocks(page, served, helpers):
    """The reply never writes the message box: text typed as soon as it unlocks is what gets sent, every time."""
    from playwright.sync_api import expect

    (cid, oid), = helpers.customers_with_orders(served.store, 1)
    page.goto(served.url)
    expect(page.locator("#customer-status")).to_contain_text("Pick a customer")
    page.locator("#customer-pick input").click()
    page.get_by_role("option", name=re.compile(re.escape(f"· {cid} ·"))).first.click()
    page.locator("#customer-sign-in").click()
    expect(page.locator("#customer-status")).to_contain_text(f"Signed in as {cid}")
    box = page.locator("#customer-msg textarea")
    chat = page.locator("#customer-chat")
    expect(box).to_be_editable()

    # Blank messages are not sent: no turn, and the box stays usable.
    box.fill("   ")
    box.press("Enter")
    page.locator("#customer-send").click()
    expect(box).to_be_editable()

    page.evaluate(WATCH_UNLOCKS, "#customer-msg textarea")
    asks = [f"Where is my order {oid}? (ask {k})" for k in range(6)]
    box.fill(asks[0])
    box.press("Enter")
    for k, ask in enumerate(asks[1:], start=1):
        page.wait_for_function(f"window.__unlocks >= {k}", polling=5)
        box.fill(ask)  # at once, no pause like a person's
        box.press("Enter")
    page.wait_for_function(f"window.__unlocks >= {len(asks)}", polling=5)
    expect(chat).to_contain_text(asks[-1])
    # the last answer may be drawn a moment after the box unlocks: wait for it, then count
    page.wait_for_function("([sel, needle, n]) => document.querySelector(sel).innerText.split(needle).length - 1 >= n",
                           arg=["#customer-chat", f"Looked up order {oid}", len(asks)], polling=50, timeout=15_000)
    text = chat.inner_text()
    assert [text.count(ask) for ask in asks] == [1] * len(asks)  # each sent once, none lost
    assert text.count(f"Looked up order {oid}") == len(asks)  # one answer each, no extra turns
    assert text.count("still answering") == 0
    assert chat.locator("[data-testid='user']").count() == len(asks)  # a blank message is no turn
    assert box.input_value() == ""
    page.screenshot(path=str(ARTIFACTS / "ui-customer-follow-ups.png"), full_page=True)
