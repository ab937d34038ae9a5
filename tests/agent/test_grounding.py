"""Replies are rendered from results; the model's own words survive only when they state no fact."""

from __future__ import annotations

import pytest

from agent.grounding import ASK_FIRST, ErrorResult, compose, render, states_fact
from tools.errors import NotFoundError
from tools.results import Fact


class Status:
    def __init__(self, order_id: str, status: str):
        self.order_id, self.status = order_id, status

    def render(self, lang="en") -> str:
        if lang == "zh":
            return f"订单 {self.order_id} 状态:{self.status}"
        return f"Order {self.order_id} is {self.status}."

    def facts(self) -> list[Fact]:
        return [Fact(kind="status", value=self.status, about=f"order:{self.order_id}")]


@pytest.mark.parametrize("text", [
    "Your order #W1 was placed on 2025-04-06.",
    "Tracking number: 7720 Cedar Street",
    "It costs $42.",
    "It has been delivered.",
    "您的订单已送达。",
    "It is rated 4.5 out of 5.",
    "The Tea Kettle is in stock.",
    "价格是五十元",
])
def test_a_sentence_with_a_fact_is_flagged(text):
    assert states_fact(text, names=["Tea Kettle"]) is not None


@pytest.mark.parametrize("text", [
    "Hello! How can I help you today?",
    "I'm sorry to hear that.",
    "Is there anything else I can help with?",
    "您好!有什么可以帮您?",
])
def test_a_sentence_without_facts_passes(text):
    assert states_fact(text, names=["Tea Kettle"]) is None


def test_reply_is_the_rendering_whatever_the_model_says():
    result = Status("#W1", "processed")
    text, why = compose([result], "Your order #W2 was delivered on 2025-01-01.", "en")
    assert text == "Order #W1 is processed." and why
    text, why = compose([result], "Here is what I found:", "en")
    assert text == "Here is what I found:\n\nOrder #W1 is processed." and why is None


def test_reply_is_in_the_conversation_language_and_says_a_repeated_result_once():
    result = Status("#W1", "processed")
    text, _ = compose([result, result], "", "zh")
    assert text == "订单 #W1 状态:processed"


def test_no_results_and_facts_in_the_model_text_gives_no_reply():
    assert compose([], "Your order is delivered.", "en") == ("", "states a status (delivered)")
    assert compose([], "Hello! How can I help?", "en") == ("Hello! How can I help?", None)


def test_error_results_read_as_sentences_for_people():
    err = ErrorResult("get_order_details", NotFoundError("no order #W9 for customer c1 (model-facing)",
                                                         user="There is no order #W9 on your account."))
    assert err.render("en") == "There is no order #W9 on your account."
    generic = ErrorResult("get_order_details", NotFoundError("no order #W9 for customer c1")).render("en")
    assert "customer c1" not in generic and "error" not in generic.lower()
    assert ErrorResult("x", PermissionError("this tool needs a signed-in customer")).render("en") == \
        "That is not available in this chat."
    assert ASK_FIRST["zh"] != ASK_FIRST["en"]


def test_render_falls_back_for_single_language_results_and_plain_values():
    class Old:
        def render(self):
            return "old style"

    assert render(Old(), "zh") == "old style"
    assert render({"a": 1, "b": None}) == "a: 1"
    assert render("x" * 20, limit=10) == "x" * 9 + "…"
