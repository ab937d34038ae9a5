"""Who may sign in where: the demo's picker and password only in demo mode; a signed token opens the chat page; a
token never reaches the access log.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from chromium import launch, needs_chromium


@pytest.mark.parametrize(
    ("demo", "configured", "opens"),
    [(True, None, "marketer"), (True, "s3cret", "s3cret"), (False, None, None), (False, "marketer", None),
     (False, "s3cret", None)],  # outside demo mode marketers sign in with their own staff account
)
def test_marketer_password_depends_on_demo_mode(demo, configured, opens, data_dir):
    from shopdesk.settings import get_settings
    from ui.signin import check_marketer_password, marketer_password

    settings = get_settings(demo=demo, marketer_password=configured)
    assert marketer_password(settings) == opens
    assert check_marketer_password("marketer", marketer_password(settings)) == (opens == "marketer")
    assert not check_marketer_password("", marketer_password(settings))


def test_demo_mode_comes_from_the_environment_and_make_demo_sets_it(monkeypatch, data_dir):
    from shopdesk.settings import get_settings

    assert get_settings().demo is False
    monkeypatch.setenv("SHOPDESK_DEMO", "1")
    assert get_settings().demo is True
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert re.search(r"^demo:.*\n\tSHOPDESK_DEMO=1 \$\(BIN\)/shopdesk ui$", makefile, re.MULTILINE)


def test_outside_demo_mode_there_is_no_picker_and_no_default_password(api):
    from gradio_client import Client

    client = Client(api.url + "/", verbose=False)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert "/customer_sign_in" not in endpoints and "/customer_chat" in endpoints
    msg, _, _ = client.predict("marketer", api_name="/marketer_sign_in")
    assert msg == "Sign in with your staff name and password."


def test_tokens_are_redacted_from_the_access_log():
    from ui.server import RedactTokens

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/gradio_api/queue/join?x=1&token=eyJ.abc.def&y=2", "1.1", 200),
                               None)
    RedactTokens().filter(record)
    line = record.getMessage()
    assert "eyJ.abc.def" not in line and "token=<redacted>&y=2" in line


@pytest.mark.browser
@needs_chromium
def test_chat_link_with_a_token_signs_the_customer_in(api, helpers):
    from playwright.sync_api import expect, sync_playwright

    (cid, oid), = helpers.customers_with_orders(api.store, 1)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{api.url}/?token={api.token(cid)}")
            expect(page.locator("#customer-status")).to_contain_text(f"Signed in as {cid}")
            expect(page.locator("#customer-pick")).to_be_hidden()
            page.locator("#customer-msg textarea").fill(f"Where is my order {oid}?")
            page.locator("#customer-msg textarea").press("Enter")
            expect(page.locator("#customer-chat")).to_contain_text(f"Looked up order {oid}")

            forged = api.token(cid, key="a-different-secret-that-the-shop-never-used!")
            page.goto(f"{api.url}/?token={forged}")
            expect(page.locator("#customer-status")).to_contain_text("not signed by the shop")
            page.goto(f"{api.url}/")
            expect(page.locator("#customer-status")).to_contain_text("open this chat from your account")
        finally:
            browser.close()


def test_the_page_takes_the_token_from_the_link_then_the_cookie():
    from ui.signin import token_from

    assert token_from({"token": "from-link"}, {"shopdesk_token": "from-cookie"}) == "from-link"
    assert token_from({}, {"shopdesk_token": "from-cookie"}) == "from-cookie"
    assert token_from({"token": ""}, {}) is None and token_from(None, None) is None


def test_verify_token_names_the_customer_or_says_what_is_wrong():
    from shopdesk.auth import TokenError, issue_token, verify_token

    key = "k" * 32
    token = issue_token("c000001", 60, key)
    assert verify_token(token, key) == "c000001"
    with pytest.raises(TokenError, match="not signed by the shop"):
        verify_token(token, "j" * 32)
    with pytest.raises(TokenError, match="not valid"):
        verify_token("abc.def", key)
    with pytest.raises(ValueError):
        issue_token("c000001", 0, key)
