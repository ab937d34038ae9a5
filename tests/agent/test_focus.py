"""A question that asks for one part of an order is answered with that part (agent.focus, OrderDetails.PARTS and
OrderList.PARTS): "And what's its tracking number?" is not answered with the whole order again, in either language,
while the model still reads the whole result.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import ToolMessage

from agent.focus import asked_parts
from agent.session import open_session
from agent.testing import ScriptedChatModel, call
from tools.context import ShopContext
from tools.orders import get_order_details, list_my_orders

JAMES, PROCESSED = "james_li_5688", "#W2611340"  # a processed order of james's, shipped (tau2)
YARA, PENDING = "yara_patel_8545", "#W1068289"  # a pending order of yara's: no shipment yet


@pytest.mark.parametrize("text,parts", [
    ("And what's its tracking number?", {"tracking"}),
    ("Where is my order #W2611340?", {"tracking"}),
    ("这个订单的快递单号是多少？", {"tracking"}),
    ("What items are in my order?", {"items"}),
    ("我的订单 #S0000275 里有什么？", {"items"}),
    ("order W1052399 - what did I buy in that one and how much did it cost?", {"items", "payment"}),
    ("Which address is it going to?", {"address"}),
    ("订单寄到哪个地址？", {"address"}),
    ("How did I pay for it?", {"payment"}),
    ("What's the status of my latest order?", {"latest"}),
    ("我最近的订单是什么状态？", {"latest"}),
    ("Tell me about order #W2611340", set()),
    ("Did my order #W1068289 get cancelled?", set()),
    ("Show me my orders", set()),
    ("I'll pay the difference with my card", {"payment"}),
    ("Please refund the difference", set()),
])
def test_the_parts_a_question_names(text, parts):
    assert asked_parts(text) == parts


def _details(store, customer, order_id):
    return get_order_details(ShopContext(store=store, settings=None, role="customer", customer_id=customer), order_id)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_tracking_alone_is_the_first_line_and_the_shipments(tau2_store, lang):
    order = _details(tau2_store, JAMES, PROCESSED)
    assert order.shipments, "the fixture order has shipped"
    whole, part = order.render(lang), order.render(lang, parts=frozenset({"tracking"}))
    first = whole.splitlines()[0]
    assert part.splitlines()[0] == first
    for t in order.shipments[0].tracking_ids:
        assert t in part
    assert order.shipping_address not in part and order.shipping_address in whole
    assert not any(item.name in part for item in order.items)
    assert len(part) < len(whole) / 2
    # every line of the part is a line of the whole rendering: nothing is said differently
    assert set(part.splitlines()) <= set(whole.splitlines())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_items_alone_leave_out_tracking_address_and_payment(tau2_store, lang):
    order = _details(tau2_store, JAMES, PROCESSED)
    part = order.render(lang, parts=frozenset({"items"}))
    assert all(item.item_id in part for item in order.items)
    assert not any(t in part for sh in order.shipments for t in sh.tracking_ids)
    assert order.shipping_address not in part


@pytest.mark.parametrize("lang,words", [("en", "no shipment yet"), ("zh", "还没有发货记录")])
def test_tracking_of_an_order_without_a_shipment_says_there_is_none(tau2_store, lang, words):
    order = _details(tau2_store, YARA, PENDING)
    assert not order.shipments
    part = order.render(lang, parts=frozenset({"tracking"}))
    assert words in part and PENDING in part
    assert words not in order.render(lang)  # the whole order says nothing about it: its status says enough


def test_parts_an_order_does_not_have_render_the_whole_order(tau2_store):
    order = _details(tau2_store, JAMES, PROCESSED)
    assert order.render("en", parts=frozenset({"latest"})) == order.render("en")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_latest_order_alone(tau2_store, lang):
    orders = list_my_orders(ShopContext(store=tau2_store, settings=None, role="customer", customer_id=JAMES))
    assert len(orders.orders) > 1
    part = orders.render(lang, parts=frozenset({"latest"}))
    assert orders.orders[0].line(lang) in part and str(orders.total_orders) in part
    assert not any(o.order_id in part for o in orders.orders[1:])


def test_a_follow_up_gets_only_the_part_it_asks_for_and_the_model_still_reads_all(settings, tau2_store):
    model = ScriptedChatModel(script=[call("get_order_details", order_id=PROCESSED),
                                      call("get_order_details", order_id=PROCESSED)])
    chat = open_session(settings, "customer", JAMES, model=model, store=tau2_store)
    order = _details(tau2_store, JAMES, PROCESSED)
    first = list(chat.respond(f"Tell me about order {PROCESSED}"))[-1].text
    assert order.shipping_address in first and order.items[0].name in first
    events = list(chat.respond("And what's its tracking number?"))
    final = events[-1].text
    assert order.shipments[0].tracking_ids[0] in final
    assert order.shipping_address not in final and order.items[0].name not in final
    # the model's copy of the result is whole: a later question can use the address
    tool_messages = [m for m in chat.history if isinstance(m, ToolMessage)]
    assert order.shipping_address in tool_messages[-1].content
    # and it remembers the whole reply (what it decides next is not steered by what this question asked for),
    # while the log keeps what the person read
    assert chat.turns[-1][1].content == first
    assert chat.history[-1].content == final
