"""The fact auditor: crafted wrong answers are caught, and replies built from the store (the tools' own renderings,
and sentences written here from the rows) pass. Every value below is read from the real tau2 and sample shops.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import combinations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from agent.audit import Auditor, audit
from shopdesk.settings import Settings
from store.models import Order, Product
from tools.context import ShopContext


def _orders(store, *, where=()) -> list[Order]:
    with store.read() as s:
        q = select(Order).options(selectinload(Order.items), selectinload(Order.fulfillments),
                                  selectinload(Order.payments)).order_by(Order.id)
        for w in where:
            q = q.where(w)
        return list(s.scalars(q).unique())


def _dates(o: Order) -> set[str]:
    out = {o.created_at.date().isoformat(), o.updated_at.date().isoformat()}
    out |= {f.shipped_at.date().isoformat() for f in o.fulfillments if f.shipped_at}
    return out | {p.created_at.date().isoformat() for p in o.payments if p.created_at}


def _amounts(o: Order) -> set[Decimal]:
    """Amounts a reply may say about `o` (a superset is fine here: the wrong value is picked outside it)."""
    prices = [Decimal(str(li.unit_price)) for li in o.items]
    out = {Decimal(str(o.total))} | {Decimal(str(p.amount)) for p in o.payments}
    for k in range(1, len(prices) + 1):
        out |= {sum(c, Decimal("0")) for c in combinations(prices, k)}
    return out


def _pair(store, same_customer: bool, differ) -> tuple[Order, Order]:
    """Two orders (of one customer, or of two) for which `differ(a, b)` holds."""
    orders = _orders(store)
    by_customer: dict[str, list[Order]] = {}
    for o in orders:
        by_customer.setdefault(o.customer_id, []).append(o)
    for mine in by_customer.values():
        others = mine if same_customer else [o for o in orders if o.customer_id != mine[0].customer_id][:50]
        for a in mine:
            for b in others:
                if a.id != b.id and differ(a, b):
                    return a, b
    raise LookupError("no such pair of orders")


def _kinds(wrong) -> set[tuple[str, str | None]]:
    return {(w.kind, w.about) for w in wrong}


@pytest.fixture(params=["tau2", "sample"])
def audited_shop(request):
    """(store, auditor) of each real shop."""
    store = request.getfixturevalue(f"{request.param}_store")
    return store, Auditor(store)


# ------------------------------------------------------------------ crafted wrong answers


def test_a_date_moved_to_another_order_is_caught(audited_shop):
    store, auditor = audited_shop
    a, b = _pair(store, True, lambda a, b: b.created_at.date().isoformat() not in _dates(a))
    line = "- {id}: {status}, {n} item(s), ${total:.2f}, placed {date}"
    right = [line.format(id=o.id, status=o.status, n=len(o.items), total=o.total, date=o.created_at.date())
             for o in (a, b)]
    assert auditor.audit("Your orders:\n" + "\n".join(right), customer_id=a.customer_id) == []
    swapped = right[0].rsplit(" ", 1)[0] + f" {b.created_at.date()}"
    wrong = auditor.audit("Your orders:\n" + "\n".join([swapped, right[1]]), customer_id=a.customer_id)
    assert _kinds(wrong) == {("date", f"order:{a.id}")}, wrong


def test_an_address_given_as_the_tracking_number_is_caught(audited_shop):
    store, auditor = audited_shop
    o = next(o for o in _orders(store, where=[Order.status == "processed"]) if o.fulfillments and o.address)
    tracking = o.fulfillments[0].tracking_id.split(",")[0]
    head = f"Order {o.id} is processed (placed {o.created_at.date()}).\nItems:\n- {o.items[0].name}, " \
           f"${o.items[0].unit_price:.2f}\n"
    assert auditor.audit(head + f"Tracking number: {tracking}", customer_id=o.customer_id) == []
    wrong = auditor.audit(head + f"Tracking number: {o.address['address1']}", customer_id=o.customer_id)
    assert ("tracking_id", f"order:{o.id}") in _kinds(wrong), wrong


def test_the_tracking_number_of_another_order_is_caught(audited_shop):
    store, auditor = audited_shop
    a, b = _pair(store, True, lambda a, b: bool(a.fulfillments and b.fulfillments) and {
        f.tracking_id for f in a.fulfillments}.isdisjoint(f.tracking_id for f in b.fulfillments))
    other = b.fulfillments[0].tracking_id.split(",")[0]
    for text in (f"Order {a.id} ships with tracking number {other}.",
                 f"Order {a.id}:\nTracking {other} via UPS.",
                 f"订单 {a.id} 的快递单号:{other}"):
        assert ("tracking_id", f"order:{a.id}") in _kinds(auditor.audit(text, customer_id=a.customer_id)), text


def test_a_total_from_another_order_is_caught(audited_shop):
    store, auditor = audited_shop
    a, b = _pair(store, True, lambda a, b: Decimal(str(b.total)) not in _amounts(a))
    assert auditor.audit(f"Order {a.id} totals ${a.total:.2f}.", customer_id=a.customer_id) == []
    for text in (f"Order {a.id} totals ${b.total:.2f}.", f"订单 {a.id} 合计 {b.total:.2f}美元。",
                 f"{a.id}: total USD {b.total:.2f}", f"- {b.id}: ${b.total:.2f}\n- {a.id}: ${b.total:.2f}"):
        assert _kinds(auditor.audit(text, customer_id=a.customer_id)) == {("amount", f"order:{a.id}")}, text


def test_amounts_in_other_currencies_are_audited(audited_shop):
    """A shop selling in pounds, euros or yen: the amount is read whatever its sign or code."""
    store, auditor = audited_shop
    a, b = _pair(store, True, lambda a, b: Decimal(str(b.total)) not in _amounts(a))
    for sign in ("£", "€", "¥", "₹"):
        assert auditor.audit(f"Order {a.id} totals {sign}{a.total:.2f}.", customer_id=a.customer_id) == []
    for text in (f"Order {a.id} totals £{b.total:.2f}.", f"Order {a.id} totals €{b.total:.2f}.",
                 f"{a.id}: total GBP {b.total:.2f}", f"Order {a.id} came to {b.total:.2f} pounds.",
                 f"订单 {a.id} 合计 {b.total:.2f}英镑。"):
        assert _kinds(auditor.audit(text, customer_id=a.customer_id)) == {("amount", f"order:{a.id}")}, text


def test_a_wrong_status_is_caught_in_both_languages(audited_shop):
    store, auditor = audited_shop
    o = _orders(store, where=[Order.status == "processed"])[0]
    cid = o.customer_id
    assert auditor.audit(f"Order {o.id} is processed.", customer_id=cid) == []
    assert auditor.audit(f"订单 {o.id} 的状态:已处理。", customer_id=cid) == []
    # rules and futures name a status without saying the order has it
    assert auditor.audit(f"Order {o.id} is processed; only pending orders can be cancelled.", customer_id=cid) == []
    for text in (f"Order {o.id} is delivered.", f"Your order {o.id} has been cancelled.",
                 f"订单 {o.id} 已送达。", f"订单 {o.id} 的状态是已取消。"):
        assert _kinds(auditor.audit(text, customer_id=cid)) == {("status", f"order:{o.id}")}, text


def test_a_product_rating_off_by_a_tenth_is_caught(sample_store):
    """The issue's case: 4.5 shown where the catalog says 4.4 (a product rated 4.4 if there is one)."""
    from store.models import Review

    auditor = Auditor(sample_store)
    with sample_store.read() as s:
        rated = list(s.scalars(select(Product).where(Product.rating.is_not(None))
                               .options(selectinload(Product.variants)).order_by(Product.id)))
        means = {pid: sum(r) / len(r) for pid, r in _group(s.execute(select(Review.product_id, Review.rating)))}
    rated.sort(key=lambda p: abs(p.rating - 4.4))
    tenth = Decimal("0.1")
    p = next(p for p in rated if p.id not in means or abs(means[p.id] - p.rating) > 0.2)
    shown = Decimal(str(p.rating)).quantize(tenth)
    off = shown + tenth if shown < 5 else shown - tenth
    price = min(v.price for v in p.variants)
    line = f"1. [{p.id}] {p.name} - ${price:.2f}, {{}}/5, in stock"
    for who in ("c000001", None):  # a customer's product search, and a marketer's
        assert auditor.audit(line.format(shown), customer_id=who) == []
        assert _kinds(auditor.audit(line.format(off), customer_id=who)) == {("rating", f"product:{p.id}")}
        assert _kinds(auditor.audit(f"{p.name}: rated {off} out of 5.", customer_id=who)) == {
            ("rating", f"product:{p.id}")}
        assert _kinds(auditor.audit(line.format(shown).replace(f"${price:.2f}", f"${price + 1:.2f}"),
                                    customer_id=who)) == {("price", f"product:{p.id}")}
        # a rating histogram's star buckets are counts, not the product's rating; a rating beside them still counts
        buckets = f"Review insights for product {p.id}: Ratings: 1 star: 0, 2 stars: 2, 3 stars: 0."
        # (a marketer's numbers are also checked against the turn's tool results, which this test has none of)
        assert not [f for f in auditor.audit(buckets, customer_id=who) if f.kind == "rating"]
        assert not [f for f in auditor.audit(f"商品 {p.id} 的评分分布:1 星:0,2 星:2,3 星:0。", customer_id=who)
                    if f.kind == "rating"]
        assert {k for k in _kinds(auditor.audit(f"{buckets} It is rated {off} stars.", customer_id=who))
                if k[0] == "rating"} == {("rating", f"product:{p.id}")}


def _group(rows) -> dict:
    out: dict = {}
    for key, value in rows:
        out.setdefault(key, []).append(value)
    return out.items()


def test_a_foreign_customers_order_is_a_wrong_fact(audited_shop):
    store, auditor = audited_shop
    mine, theirs = _pair(store, False, lambda a, b: True)
    me = mine.customer_id
    wrong = auditor.audit(f"Your order {theirs.id} is {theirs.status}.", customer_id=me)
    assert ("order_id", f"order:{theirs.id}") in _kinds(wrong)
    # the person typed the id: saying it back is no leak, any fact about it still is
    typed = [f"Where is {theirs.id}?"]
    assert auditor.audit(f"There is no order {theirs.id} on your account.", customer_id=me, typed=typed) == []
    assert _kinds(auditor.audit(f"Order {theirs.id} is {theirs.status}.", customer_id=me, typed=typed)) == {
        ("status", f"order:{theirs.id}")}


def test_an_order_id_of_another_shop_is_caught(sample_store):
    wrong = audit("Please give me your order number, for example #W1234567.", sample_store, customer_id="c000001")
    assert {w.kind for w in wrong} == {"order_id"}


def test_chinese_dates_and_amount_formats(audited_shop):
    store, auditor = audited_shop
    a, b = _pair(store, True, lambda a, b: b.created_at.date().isoformat() not in _dates(a)
                 and Decimal(str(b.total)) not in _amounts(a))
    d, wrong_d = a.created_at.date(), b.created_at.date()
    cid = a.customer_id
    right = f"订单 {a.id} 于 {d.year}年{d.month}月{d.day}日下单,合计 {a.total:.2f}美元。"
    assert auditor.audit(right, customer_id=cid) == []
    wrong_text = f"订单 {a.id} 于 {wrong_d.year}年{wrong_d.month}月{wrong_d.day}日下单,合计 USD {b.total:.2f}。"
    wrong = auditor.audit(wrong_text, customer_id=cid)
    assert _kinds(wrong) == {("date", f"order:{a.id}"), ("amount", f"order:{a.id}")}, wrong


# ------------------------------------------------------------------ marketer analytics


@pytest.fixture(scope="module")
def analytics(sample_db_template, tmp_path_factory):
    """One marketer context on the sample shop, and its segment summary and churn table."""
    import shutil

    from store.db import Store
    from tools.analytics import score_churn, summarize_segments

    dst = tmp_path_factory.mktemp("audit-marketer") / "shop.db"
    shutil.copy(sample_db_template, dst)
    store = Store(f"sqlite:///{dst}")
    ctx = ShopContext(store=store, settings=Settings(), role="marketer")
    yield store, ctx, summarize_segments(ctx), score_churn(ctx, top_n=10)
    store.dispose()


def test_marketer_tables_bind_each_number_to_its_row(analytics):
    store, _, summary, churn = analytics
    auditor = Auditor(store)
    results = [("summarize_segments", summary), ("score_churn", churn)]
    for result in (summary, churn):
        for lang in ("en", "zh"):
            assert auditor.audit(result.render(lang), results=results) == [], lang
    rows = [r for r in summary.rows if r.customers]
    def pct(r) -> set[int]:
        return {round(100 * v) for v in (r.share_of_customers, r.revenue_share, r.avg_churn_probability or 0)}

    a, b = next((a, b) for a in rows for b in rows if round(a.revenue_usd) != round(b.revenue_usd)
                and round(100 * b.revenue_share) not in pct(a))
    right = f"| {a.segment} | {a.customers} | ${a.revenue_usd:.2f} | {100 * a.revenue_share:.0f}% |"
    assert auditor.audit(right, results=results) == []
    wrong = auditor.audit(f"| {a.segment} | {a.customers} | ${b.revenue_usd:.2f} | {100 * b.revenue_share:.0f}% |",
                          results=results)
    assert {w.kind for w in wrong} == {"amount", "percent"} and {w.about for w in wrong} == {
        f"segment:{a.segment.lower()}"}
    # the Chinese table shows the segment as its translation with the name beside it: still that segment's row
    from tools.analytics.rfm import SEGMENT_ZH

    zh_cell = f"| {SEGMENT_ZH[a.segment]}({a.segment}) | {a.customers} |"
    assert auditor.audit(f"{zh_cell} ${a.revenue_usd:.2f} | {100 * a.revenue_share:.0f}% |", results=results) == []
    wrong = auditor.audit(f"{zh_cell} ${b.revenue_usd:.2f} | {100 * b.revenue_share:.0f}% |", results=results)
    assert {w.about for w in wrong} == {f"segment:{a.segment.lower()}"}
    x, y = next((x, y) for x in churn.rows for y in churn.rows
                if round(100 * x.churn_probability) != round(100 * y.churn_probability))
    wrong = auditor.audit(f"| {x.rank} | {x.customer_id} | {100 * y.churn_probability:.0f}% |", results=results)
    assert _kinds(wrong) == {("percent", f"customer:{x.customer_id}")}


def test_marketer_renderings_of_every_analytics_tool_pass(analytics):
    from tools.analytics import draft_retention_offer, get_customer_profile, lookup_segment, score_churn

    store, ctx, _, churn = analytics
    auditor = Auditor(store)
    ids = [r.customer_id for r in churn.rows[:3]]
    results = [lookup_segment(ctx, segment="At risk", limit=5), lookup_segment(ctx, customer=ids[0]),
               score_churn(ctx, tier="high", top_n=5), get_customer_profile(ctx, ids[1]),
               draft_retention_offer(ctx, customers=ids[:2]), draft_retention_offer(ctx, segment="Champions")]
    for result in results:
        for lang in ("en", "zh"):
            wrong = auditor.audit(result.render(lang), results=[("tool", result)])
            assert wrong == [], (type(result).__name__, lang, [str(w) for w in wrong])


# ------------------------------------------------------------------ the tools' own renderings pass


def _customers(store, n: int) -> list[str]:
    with store.read() as s:
        return list(s.scalars(select(Order.customer_id).distinct().order_by(Order.customer_id).limit(n)))


def test_order_renderings_of_the_tools_pass(audited_shop):
    from tools.orders import get_order_details, list_my_orders

    store, auditor = audited_shop
    for cid in _customers(store, 12):
        ctx = ShopContext(store=store, settings=Settings(), role="customer", customer_id=cid)
        listed = list_my_orders(ctx)
        for result in [listed, *(get_order_details(ctx, o.order_id) for o in listed.orders[:6])]:
            for lang in ("en", "zh"):
                wrong = auditor.audit(result.render(lang), customer_id=cid)
                assert wrong == [], (cid, lang, [str(w) for w in wrong])


def test_proposals_and_done_writes_pass_against_the_store_after_them(audited_shop):
    """Cancel, return and exchange: the proposal before the write and the result after it state only true facts."""
    from tools.orders import (
        cancel_pending_order,
        exchange_delivered_order_items,
        execute_pending_action,
        return_delivered_order_items,
    )

    store, auditor = audited_shop
    pending = _orders(store, where=[Order.status == "pending"])[0]
    delivered = _orders(store, where=[Order.status == "delivered"])[:2]
    with store.read() as s:
        from store.models import Variant

        def other_variant(o: Order):
            for li in o.items:
                v = s.scalars(select(Variant).where(Variant.product_id == li.product_id, Variant.id != li.variant_id,
                                                    Variant.available.is_(True)).order_by(Variant.id)).first()
                if v is not None:
                    return li.variant_id, v.id
            return None

        swap = next(((o, other_variant(o)) for o in _orders(store, where=[Order.status == "delivered"])[2:80]
                     if other_variant(o)), None)
    pm = lambda o: next(p.payment_method_id for p in o.payments if p.kind == "payment")  # noqa: E731
    plans = [(pending, cancel_pending_order, {"order_id": pending.id, "reason": "no longer needed"}),
             (delivered[0], return_delivered_order_items,
              {"order_id": delivered[0].id, "item_ids": [delivered[0].items[0].variant_id],
               "payment_method_id": pm(delivered[0])})]
    if swap is not None:
        o, (old, new) = swap
        plans.append((o, exchange_delivered_order_items,
                      {"order_id": o.id, "item_ids": [old], "new_item_ids": [new], "payment_method_id": pm(o)}))
    for order, tool, args in plans:
        ctx = ShopContext(store=store, settings=Settings(), role="customer", customer_id=order.customer_id)
        proposal = tool(ctx, **args)
        for lang in ("en", "zh"):
            assert auditor.audit(proposal.render(lang), customer_id=order.customer_id) == [], tool.__name__
        done = execute_pending_action(ctx)
        for lang in ("en", "zh"):
            wrong = auditor.audit(done.render(lang), customer_id=order.customer_id)
            assert wrong == [], (tool.__name__, lang, [str(w) for w in wrong])


def test_product_renderings_of_the_tools_pass(audited_shop):
    from tools.catalog import get_product_details

    store, auditor = audited_shop
    with store.read() as s:
        pids = list(s.scalars(select(Product.id).order_by(Product.id).limit(40)))
    ctx = ShopContext(store=store, settings=Settings(), role="customer", customer_id=_customers(store, 1)[0])
    for pid in pids:
        result = get_product_details(ctx, pid)
        for lang in ("en", "zh"):
            wrong = auditor.audit(result.render(lang), customer_id=ctx.customer_id)
            assert wrong == [], (pid, lang, [str(w) for w in wrong])
