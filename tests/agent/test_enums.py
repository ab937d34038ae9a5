"""The per-turn values the grammar allows: the customer's own orders, ids they typed, what results showed."""

from __future__ import annotations

from sqlalchemy import select

from agent.enums import session_enums
from agent.session import open_session
from agent.testing import ScriptedChatModel, call
from store.models import Order, PaymentMethod

JAMES = "james_li_5688"
OTHERS = "#W1023987"  # sophia_garcia_1101's order


def _session(settings, store, role="customer", customer=JAMES, script=()):
    return open_session(settings, role, customer, model=ScriptedChatModel(script=list(script)), store=store,
                        log_turns=False)


def test_customer_enums_are_their_own_orders_and_payment_methods(settings, tau2_store):
    enums = session_enums(_session(settings, tau2_store))
    with tau2_store.read() as s:
        own = set(s.scalars(select(Order.id).where(Order.customer_id == JAMES)))
        methods = set(s.scalars(select(PaymentMethod.id).where(PaymentMethod.customer_id == JAMES)))
    assert set(enums["order_id"]) == own and OTHERS not in enums["order_id"]
    assert set(enums["payment_method_id"]) == methods
    assert enums["item_ids"] == [] and enums["product_id"] == []  # nothing shown yet: not constrained


def test_typed_ids_stay_possible_in_the_stores_form_or_as_typed(settings, tau2_store):
    session = _session(settings, tau2_store, script=["Hello!"] * 3)
    own = session_enums(session)["order_id"][0]
    list(session.respond(f"what about {own.lstrip('#').lower()} and {OTHERS} and #T-Shirt?"))
    enums = session_enums(session)["order_id"]
    assert own in enums and OTHERS in enums  # someone else's order still reaches the tool, which says not found
    assert not any("SHIRT" in e.upper() for e in enums)
    digits = own.lstrip("#W")
    list(session.respond(f"order {digits} please"))
    assert session_enums(session)["order_id"].count(own) == 1


def test_items_and_products_of_looked_up_orders_become_values(settings, tau2_store):
    with tau2_store.read() as s:
        order = s.scalars(select(Order).where(Order.customer_id == JAMES)).first()
        items = [li.variant_id for li in order.items]
    session = _session(settings, tau2_store, script=[call("get_order_details", order_id=order.id), ""])
    list(session.respond(f"What is in {order.id}?"))
    enums = session_enums(session)
    assert set(items) <= set(enums["item_ids"]) and enums["new_item_ids"] == enums["item_ids"]
    assert enums["product_id"]


def test_marketer_enums_are_segments_categories_and_typed_customers(settings, sample_store):
    from tools.analytics.rfm import SEGMENTS

    session = _session(settings, sample_store, role="marketer", customer=None, script=["OK."])
    list(session.respond("Draft a retention offer for customer c000150"))
    enums = session_enums(session)
    assert enums["segment"] == list(SEGMENTS)
    assert "c000150" in enums["customers"] and "Champions" not in enums["customers"]
    assert enums["category"] and all(isinstance(c, str) for c in enums["category"])


def test_item_and_product_ids_the_person_typed_stay_possible(settings, tau2_store):
    session = _session(settings, tau2_store, script=["Hello!"])
    list(session.respond("Can I exchange it for item 1234567890 instead?"))
    enums = session_enums(session)
    assert "1234567890" in enums["new_item_ids"] and "1234567890" in enums["product_id"]
    assert "1234567890" not in enums["order_id"]
