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
    ("What items are in my order?", {"items", "one"}),
    ("我的订单 #S0000275 里有什么？", {"items"}),
    ("order W1052399 - what did I buy in that one and how much did it cost?", {"items", "payment"}),
    ("Which address is it going to?", {"address"}),
    ("订单寄到哪个地址？", {"address"}),
    ("How did I pay for it?", {"payment"}),
    ("What's the status of my latest order?", {"latest"}),
    ("我最近的订单是什么状态？", {"latest"}),
    ("What is the tracking number of my latest delivered order?", {"latest", "delivered", "tracking"}),
    ("我最近一个已送达的订单的快递单号是多少？", {"latest", "delivered", "tracking"}),
    ("我最近一个订单寄到哪个地址？", {"latest", "address"}),
    ("Where is my order?", {"one", "tracking"}),
    ("我的订单到哪了？", {"one", "tracking"}),
    ("我所有的订单到哪了？", {"tracking"}),
    ("Where are my orders?", set()),
    ("What orders do I have with you and which are still pending?", set()),
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


# ---- one order singled out of the list: "my latest delivered order", "Where is my order?" (the walk of session 30)

CHEN = "chen_silva_7485"  # four delivered orders, nothing pending (tau2)
AVA, AVA_OPEN = "ava_johnson_5052", "#W2317937"  # one order on its way (processed, shipped) among delivered ones


def _orders(store, customer):
    return list_my_orders(ShopContext(store=store, settings=None, role="customer", customer_id=customer))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_latest_order_of_a_status_is_picked_from_the_list(tau2_store, lang):
    orders = _orders(tau2_store, JAMES)
    statuses = [o.status for o in orders.orders]
    assert statuses[0] == "processed" and "delivered" in statuses
    delivered = next(o for o in orders.orders if o.status == "delivered")
    assert orders.picked(frozenset({"latest", "delivered"})) == [delivered]
    assert orders.picked(frozenset({"latest"})) == [orders.orders[0]]
    part = orders.render(lang, parts=frozenset({"latest", "delivered", "tracking"}))
    assert delivered.line(lang) in part
    assert not any(o.order_id in part for o in orders.orders if o is not delivered)
    # a status none of the orders has: said so, no order picked
    assert orders.picked(frozenset({"latest", "cancelled"})) == []
    none = orders.render(lang, parts=frozenset({"latest", "cancelled"}))
    assert not any(o.order_id in none for o in orders.orders)
    assert ("None of your 4 order(s) is cancelled." if lang == "en" else "没有已取消(cancelled)的订单") in none


def test_where_is_my_order_picks_the_orders_on_their_way_else_the_latest(tau2_store):
    where = frozenset({"one", "tracking"})
    james = _orders(tau2_store, JAMES)
    on_way = [o for o in james.orders if o.status in ("pending", "processed")]
    assert len(on_way) == 2 and james.picked(where) == on_way
    assert "2 not delivered yet" in james.render("en", parts=where)
    chen = _orders(tau2_store, CHEN)
    assert {o.status for o in chen.orders} == {"delivered"}
    assert chen.picked(where) == chen.orders[:1]
    assert "None of your 4 order(s) is on its way" in chen.render("en", parts=where)
    # "one" alone (no where, no address) singles out nothing: "Cancel my order" still lists them all
    assert chen.picked(frozenset({"one"})) is None and chen.picked(frozenset()) is None


@pytest.mark.parametrize("tool,can", [("cancel_pending_order", False), ("return_delivered_order_items", True),
                                      ("modify_pending_order_address", False)])
def test_which_orders_a_change_can_be_made_to(tau2_store, tool, can):
    chen = _orders(tau2_store, CHEN)
    assert bool(chen.can(tool)) is can
    if can:  # every order can: the whole list is the answer
        assert chen.render("en", parts=frozenset({tool})) == chen.render("en")
    else:
        assert chen.none_can(tool, "en").startswith("None of your orders can be ")
        assert "only pending orders can be" in chen.none_can(tool, "en")


@pytest.mark.parametrize("lang,header", [("en", "Of your 4 order(s), 2 can be returned (delivered):"),
                                         ("zh", "您的 4 个订单中,可以退货的有 2 个(已送达(delivered)):")])
def test_a_change_asked_of_no_order_lists_the_orders_it_can_be_made_to(tau2_store, lang, header):
    james = _orders(tau2_store, JAMES)
    delivered = [o for o in james.orders if o.status == "delivered"]
    assert len(delivered) == 2 and james.can("return_delivered_order_items") == delivered
    part = james.render(lang, parts=frozenset({"return_delivered_order_items"}))
    assert part == "\n".join([header, *(o.line(lang) for o in delivered)])


def _reply(chat, message):
    events = list(chat.respond(message))
    return events, events[-1].text


def test_the_tracking_of_the_latest_delivered_order_is_looked_up_after_the_list(settings, tau2_store):
    """The model lists the orders (the id is nobody's words yet); the turn then reads the order the question singles
    out, and the reply is that order's tracking, not the list of every order.
    """
    orders = _orders(tau2_store, JAMES)
    delivered = next(o for o in orders.orders if o.status == "delivered")
    chat = open_session(settings, "customer", JAMES, model=ScriptedChatModel(script=[call("list_my_orders"), ""]),
                        store=tau2_store, log_turns=False)
    events, final = _reply(chat, "What is the tracking number of my latest delivered order?")
    assert [(e.name, e.arguments) for e in events if e.kind == "tool_call"] == [
        ("list_my_orders", {}), ("get_order_details", {"order_id": delivered.order_id})]
    details = _details(tau2_store, JAMES, delivered.order_id)
    assert details.shipments[0].tracking_ids[0] in final
    assert final.startswith("Your most recent delivered order (of 4):")
    assert not any(o.order_id in final for o in orders.orders if o is not delivered)
    assert details.shipping_address not in final  # the part asked for, not the whole order
    # the model remembers the whole list and the whole order; "it" is now that order
    assert all(o.order_id in chat.turns[-1][1].content for o in orders.orders)
    assert chat.all_results[-1][1].order_id == delivered.order_id


@pytest.mark.parametrize("lang,message,says", [
    ("en", "I want to cancel my pending order", "None of your orders can be cancelled: only pending orders can be."),
    ("zh", "帮我取消待处理的订单。", "您没有可以取消的订单:只有待处理(pending)的订单才能取消。"),
])
def test_a_change_no_order_allows_is_said_to_be_impossible_not_asked_about(settings, tau2_store, lang, message,
                                                                           says):
    chat = open_session(settings, "customer", CHEN, model=ScriptedChatModel(script=[call("list_my_orders"), ""]),
                        store=tau2_store, log_turns=False)
    events, final = _reply(chat, message)
    assert final.endswith(says)
    assert "Which order" not in final and "哪个订单" not in final
    assert not any(e.kind == "confirm" for e in events)


def test_where_is_my_order_with_one_on_its_way_is_that_order(settings, tau2_store):
    chat = open_session(settings, "customer", AVA, model=ScriptedChatModel(script=[call("list_my_orders"), ""]),
                        store=tau2_store, log_turns=False)
    events, final = _reply(chat, "Where is my order?")
    assert [e.arguments for e in events if e.kind == "tool_call"][-1] == {"order_id": AVA_OPEN}
    order = _details(tau2_store, AVA, AVA_OPEN)
    assert order.status == "processed" and order.shipments[0].tracking_ids[0] in final
    assert not any(o.order_id in final for o in _orders(tau2_store, AVA).orders if o.order_id != AVA_OPEN)


@pytest.mark.parametrize("lang,parts,first", [
    ("en", {"return_delivered_order_items"}, "Of your 20 most recent orders (of 42), 19 can be returned (delivered):"),
    ("en", {"one", "tracking"}, "Of your 20 most recent orders (of 42), 1 not delivered yet:"),
    ("zh", {"cancel_pending_order"}, "您最近的 20 个订单(共 42 个)中,可以取消的有 1 个(待处理(pending)):"),
])
def test_a_count_of_a_partial_list_is_of_the_orders_it_shows(lang, parts, first):
    """The list shows the 20 most recent of 42 orders: what it counts is of those 20 (the walk of session 31 read "Of
    your 42 order(s), 18 can be returned" when 39 could).
    """
    from datetime import datetime

    from tools.orders import OrderList, OrderSummary

    def order(i, status):
        return OrderSummary(order_id=f"#S{i:07d}", status=status, created_at=datetime(2026, 1, 1), total=1.0,
                            item_count=1)

    listed = OrderList(orders=[order(1, "pending"), *(order(i, "delivered") for i in range(2, 21))], total_orders=42)
    assert listed.render(lang, parts=frozenset(parts)).splitlines()[0] == first
