"""What the grounding check accepts and rejects in an answer, given the tool results of the conversation."""

from __future__ import annotations

import pytest

from agent.grounding import Facts, faithful_answer, problems

ORDERS = {"orders": [{"order_id": "#W1111111", "status": "processed", "total": 1599.97, "created_at": "2024-05-03"},
                     {"order_id": "#W2222222", "status": "delivered", "total": 42.0}],
          "tracking_ids": ["357962501027"]}


def facts(*results) -> Facts:
    f = Facts()
    for r in results:
        f.add(r)
    return f


@pytest.mark.parametrize("answer", [
    "Order #W1111111 is processed and #W2222222 was delivered.",
    "Your order W1111111 totals $1,599.97, placed on 2024-05-03.",
    "订单 #W2222222 已送达,总计 42 美元。",
    "Tracking number 357962501027.",
    "It was placed on 2024年5月3日.",
    "That is about $1,600.",
])
def test_grounded_answers_pass(answer):
    assert problems(answer, facts(ORDERS)) == []


@pytest.mark.parametrize("answer,what", [
    ("Order #W1111111 was delivered.", "delivered"),
    ("Order #W2222222 is still processed.", "processed"),
    ("Your order is pending.", "pending"),
    ("Order #W3333333 is processed.", "#W3333333"),
    ("It costs $1,599.98.", "1,599.98"),
    ("Placed on 2024-05-04.", "2024-05-04"),
    ("Tracking 999888777666.", "999888777666"),
    ("订单 #W1111111 已送达。", "says delivered"),
])
def test_invented_or_contradicted_facts_are_found(answer, what):
    found = problems(answer, facts(ORDERS))
    assert found and any(what in p for p in found), found


def test_status_words_in_review_text_are_not_order_claims():
    reviews = {"hits": [{"text": "Arrived quickly, delivered in two days. Great TV."}]}
    assert problems("A reviewer says it was delivered in two days.", facts(reviews)) == []
    # ...but once an order was looked up, a status word must be that order's
    assert problems("Your order was delivered.", facts(reviews, {"order_id": "#W1", "status": "pending"}))


def test_no_tool_results_means_no_order_facts():
    assert problems("Your order #W1234567 has shipped and costs $10.00.", Facts())
    assert problems("Happy to help! What would you like to know?", Facts()) == []


def test_faithful_answer_renders_results_or_asks():
    assert faithful_answer([("t", "Order #W1 is pending.")], "hi") == "Order #W1 is pending."
    assert "order number" in faithful_answer([], "where is my order")
    assert "订单号" in faithful_answer([], "我的订单在哪里")
