"""The app in a real browser (Debian's headless Chromium through Playwright): both roles end to end.

Screenshots go to test-artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (/usr/bin/chromium)"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # the first churn scoring fits a model (seconds on 2 shared cores)

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
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


def test_customer_asks_about_an_order(page, served, helpers):
    from playwright.sync_api import expect

    from store.models import Order

    (cid, oid), = helpers.customers_with_orders(served.store, 1, status="pending")
    with served.store.read() as s:
        status = s.get(Order, oid).status
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(served.url)
    expect(page.locator("#customer-status")).to_contain_text("Pick a customer")
    picker = page.locator("#customer-pick input")
    picker.click()
    page.get_by_role("option", name=re.compile(re.escape(f"· {cid} ·"))).first.click()
    page.locator("#customer-sign-in").click()
    expect(page.locator("#customer-status")).to_contain_text(f"Signed in as {cid}")
    expect(page.locator("#backend-line")).to_contain_text("scripted")
    page.locator("#customer-msg textarea").fill(f"Where is my order {oid}?")
    page.locator("#customer-msg textarea").press("Enter")
    chat = page.locator("#customer-chat")
    expect(chat).to_contain_text("get_order_details")  # the collapsible tool-call panel's title
    expect(chat).to_contain_text(re.compile(rf"Here is what I found.*{re.escape(oid)}.*{status}", re.DOTALL))
    expect(page.locator("#talk-to-human")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "ui-customer-order.png"), full_page=True)
    chat.get_by_text("get_order_details").first.click()  # open the panel: arguments and result
    expect(chat).to_contain_text('"order_id"')
    page.screenshot(path=str(ARTIFACTS / "ui-customer-tool-panel.png"), full_page=True)

    # A cancellation waits for the customer: Confirm / Cancel appear; Cancel keeps the order as it is.
    expect(page.locator("#customer-msg textarea")).to_be_editable()  # the previous reply has finished
    page.locator("#customer-msg textarea").fill(f"Please cancel order {oid}")
    expect(page.locator("#customer-msg textarea")).to_have_value(f"Please cancel order {oid}")
    page.locator("#customer-msg textarea").press("Enter")
    expect(page.locator("#confirm-btn")).to_be_visible()
    expect(chat).to_contain_text("Please confirm")
    page.screenshot(path=str(ARTIFACTS / "ui-customer-confirm.png"), full_page=True)
    expect(page.locator("#customer-msg textarea")).to_be_editable()
    page.locator("#cancel-btn").click()
    expect(page.locator("#confirm-btn")).to_be_hidden()
    expect(page.locator("#customer-msg textarea")).to_be_editable()
    with served.store.read() as s:
        assert s.get(Order, oid).status == "pending"
    page.locator("#talk-to-human").click()
    expect(chat).to_contain_text("transferred to a human")
    page.screenshot(path=str(ARTIFACTS / "ui-customer-handoff.png"), full_page=True)


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
    # Opening the console fills the panels with the default filters; wait for that before asking the chat.
    expect(page.locator("#churn-note")).to_contain_text("As of")
    expect(page.locator("#segments-plot canvas, #segments-plot svg").first).to_be_visible()
    page.locator("#marketer-msg textarea").fill("Who is likely to churn?")
    page.locator("#marketer-msg textarea").press("Enter")
    expect(page.locator("#marketer-chat")).to_contain_text("score_churn")
    # The chat's top-10 result replaces the panel's full list (the default panels list all scored customers).
    expect(page.locator("#churn-note")).to_contain_text(re.compile(r"\d+ customers of \d+ scored"))
    table = page.locator("#churn-table")
    expect(table).to_contain_text("churn_probability")
    session = served.sessions[-1]
    name, result = session.all_results[-1]
    assert name == "score_churn"
    expect(table).to_contain_text(result.rows[0].customer_id)
    expect(page.locator("#risk-plot canvas, #risk-plot svg").first).to_be_visible()
    expect(page.locator("#churn-note")).to_contain_text(f"As of {result.as_of}. {len(result.rows)} customers of")
    page.screenshot(path=str(ARTIFACTS / "ui-marketer-churn.png"), full_page=True)
    with page.expect_download() as download:
        page.locator("#churn-csv").click()
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.splitlines()[0].startswith("rank,customer_id")
    assert len(csv_text.strip().splitlines()) == len(result.rows) + 1



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
    text = chat.inner_text()
    assert [text.count(ask) for ask in asks] == [1] * len(asks)  # each sent once, none lost
    assert text.count("Here is what I found") == len(asks)  # one answer each, no extra turns
    assert text.count("still answering") == 0
    assert text.count("returns, exchanges and products") == 0  # the scripted answer to a blank or unknown message
    assert box.input_value() == ""
    page.screenshot(path=str(ARTIFACTS / "ui-customer-follow-ups.png"), full_page=True)
