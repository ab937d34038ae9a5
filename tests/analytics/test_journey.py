"""Customer journeys and the funnel on a hand-built shop: the timeline and its transitions step by step, sentiment and
intent in English and Chinese, and funnel counts that reconcile with the raw event rows, filters included.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import pytest
from journey_shop import EN_RETURN, EN_REVIEW, T0, ZH_COMPLAINT, ZH_REVIEW, build_journey_shop
from sqlalchemy import select
from typer.testing import CliRunner

from index.sentiment import analyze
from store.models import Conversation, Event, Message, OrderItem, Product, Review
from tools.analytics import get_customer_journey, get_customer_profile, intents, journey_funnel
from tools.analytics import journey as jr
from tools.analytics.snapshot import get_snapshot
from tools.context import ShopContext
from tools.errors import NotFoundError, ToolInputError
from tools.results import unbound_facts

STAGES = ("view", "cart", "purchase", "review", "return")
ALL_TIME = "2000-01-01"  # a start before every event (without one, the funnel covers the last 30 days)


@pytest.fixture
def shop(store):
    build_journey_shop(store)
    return store


@pytest.fixture
def ctx(shop, settings):
    return ShopContext(store=shop, settings=settings, role="marketer")


# ---------------------------------------------------------------- the funnel recomputed by hand


def by_hand(store, customers=None, category=None, start: date | None = None, end: date | None = None):
    """Customers at each stage, from every event row, in plain Python (the definition in journey.funnel)."""
    with store.read() as s:
        events = s.execute(select(Event.customer_id, Event.kind, Event.occurred_at, Event.product_id,
                                  Event.order_id)).all()
        category_of = dict(s.execute(select(Product.id, Product.category)).all())
        order_categories = defaultdict(set)
        for oid, pid in s.execute(select(OrderItem.order_id, OrderItem.product_id)):
            order_categories[oid].add(category_of.get(pid))
    kinds = defaultdict(set)
    for cid, kind, at, pid, oid in events:
        if (start and at.date() < start) or (end and at.date() > end):
            continue
        if category and category_of.get(pid) != category and category not in order_categories.get(oid, ()):
            continue
        if customers is not None and cid not in customers:
            continue
        kinds[cid].add(kind)
    stages = {"view": {c for c, k in kinds.items() if "view" in k}}
    stages["cart"] = {c for c in stages["view"] if "cart" in kinds[c]}
    stages["purchase"] = {c for c in stages["cart"] if "purchase" in kinds[c]}
    stages["review"] = {c for c in stages["purchase"] if "review" in kinds[c]}
    stages["return"] = {c for c in stages["purchase"] if "return" in kinds[c]}
    return stages


def moods_by_hand(store, stages, category=None, start: date | None = None, end: date | None = None):
    """Sentiment labels of the texts of the customers who dropped off at view, cart and purchase."""
    dropped = {"view": stages["view"] - stages["cart"], "cart": stages["cart"] - stages["purchase"],
               "purchase": stages["purchase"] - stages["review"]}

    def in_range(at):
        return at is not None and not (start and at.date() < start) and not (end and at.date() > end)

    with store.read() as s:
        category_of = dict(s.execute(select(Product.id, Product.category)).all())
        texts = [(cid, analyze(text, title).sentiment)
                 for cid, pid, text, title, at in s.execute(select(Review.customer_id, Review.product_id, Review.text,
                                                                   Review.title, Review.created_at))
                 if in_range(at) and (category is None or category_of.get(pid) == category)]
        texts += [(cid, analyze(text, kind="message").sentiment)
                  for cid, text, at in s.execute(
                      select(Conversation.customer_id, Message.content, Message.created_at)
                      .join(Conversation, Conversation.id == Message.conversation_id)
                      .where(Conversation.role == "customer", Message.role == "user"))
                  if in_range(at)]
    return {stage: Counter(mood for cid, mood in texts if cid in who) for stage, who in dropped.items()}


def assert_reconciles(result, stages, moods=None):
    rows = {r.stage: r for r in result.rows}
    assert [r.stage for r in result.rows] == list(STAGES)
    for stage in STAGES:
        assert rows[stage].customers == len(stages[stage]), stage
    top = len(stages["view"])
    for stage, prev in (("cart", "view"), ("purchase", "cart"), ("review", "purchase"), ("return", "purchase")):
        base = len(stages[prev])
        assert rows[stage].from_previous == (round(len(stages[stage]) / base, 4) if base else None), stage
        assert rows[stage].from_top == (round(len(stages[stage]) / top, 4) if top else None), stage
    for stage, following in (("view", "cart"), ("cart", "purchase"), ("purchase", "review")):
        assert rows[stage].dropped == len(stages[stage] - stages[following]), stage
    assert rows["review"].dropped is None and rows["return"].dropped is None
    if moods is not None:
        for stage, counts in moods.items():
            n = sum(counts.values())
            assert rows[stage].texts == n, stage
            for label in ("negative", "neutral", "positive"):
                assert getattr(rows[stage], label) == (round(counts[label] / n, 4) if n else None), (stage, label)


def test_funnel_reconciles_with_the_raw_events(ctx, shop):
    stages = by_hand(shop)
    # the seeded shop exercises every stage and every drop-off
    assert len(stages["view"]) > len(stages["cart"]) > len(stages["purchase"]) > 0
    assert stages["review"] and stages["return"]
    result = journey_funnel(ctx, start=ALL_TIME)
    moods = moods_by_hand(shop, stages)
    assert any(sum(c.values()) for c in moods.values())
    assert_reconciles(result, stages, moods)
    assert result.rows[0].from_previous is None and result.rows[0].from_top == 1.0
    assert result.first_event is not None and result.last_event == result.as_of
    for lang in ("en", "zh"):
        assert unbound_facts(result, lang) == []
    text = result.render()
    assert f"| view | {len(stages['view'])} |" in text and "| 浏览(view) |" in result.render("zh")


def test_the_default_range_is_the_30_days_up_to_the_latest_view(ctx, shop):
    with shop.read() as s:
        latest = max(s.scalars(select(Event.occurred_at).where(Event.kind == "view"))).date()
    result = journey_funnel(ctx)
    assert (result.start, result.end) == (latest - timedelta(days=29), latest)
    stages = by_hand(shop, start=result.start, end=latest)
    assert_reconciles(result, stages, moods_by_hand(shop, stages, start=result.start, end=latest))
    ended = journey_funnel(ctx, end="2024-03-15")
    assert (ended.start, ended.end) == (date(2024, 2, 15), date(2024, 3, 15))


def test_funnel_filters_reconcile(ctx, shop):
    day0, day1 = date(2024, 2, 1), date(2024, 3, 15)
    ranged = journey_funnel(ctx, start="2024-02-01", end="2024-03-15")
    stages = by_hand(shop, start=day0, end=day1)
    assert_reconciles(ranged, stages, moods_by_hand(shop, stages, start=day0, end=day1))
    assert (ranged.start, ranged.end, ranged.as_of) == (day0, day1, day1)
    assert "from 2024-02-01 to 2024-03-15" in ranged.render()

    laptops = journey_funnel(ctx, category="laptops", start=ALL_TIME)  # any case
    assert laptops.category == "Laptops"
    stages = by_hand(shop, category="Laptops")
    assert_reconciles(laptops, stages, moods_by_hand(shop, stages, category="Laptops"))
    assert laptops.rows[0].customers < journey_funnel(ctx, start=ALL_TIME).rows[0].customers

    snap = get_snapshot(ctx)
    with_events = set(by_hand(shop)["view"])
    segment = max(set(snap.table["segment"]), key=lambda g: len(set(snap.table.index[snap.table["segment"] == g])
                                                                 & with_events))
    members = set(snap.table.index[snap.table["segment"] == segment])
    by_segment = journey_funnel(ctx, segment=segment.lower(), start=ALL_TIME)
    assert by_segment.segment == segment and by_segment.segments_as_of == snap.as_of
    assert by_segment.rows[0].customers > 0
    assert_reconciles(by_segment, by_hand(shop, customers=members))

    high = set(snap.table.index[snap.table["tier"] == "high"])
    both = journey_funnel(ctx, tier="high", category="Headphones", start="2024-01-15")
    assert_reconciles(both, by_hand(shop, customers=high, category="Headphones", start=date(2024, 1, 15)))
    for result in (ranged, laptops, by_segment, both):
        assert unbound_facts(result, "en") == [] and unbound_facts(result, "zh") == []


def test_funnel_counts_ids_in_chunks(shop, monkeypatch):
    """A segment's ids go to SQL in chunks; the counts add up to the same funnel."""
    monkeypatch.setattr(jr, "ID_CHUNK", 3)
    everyone = [f"c{c:02d}" for c in range(40)] + ["ann"]
    some = everyone[::2]
    for ids in (everyone, some):
        stages = by_hand(shop, customers=set(ids))
        assert_reconciles(jr.funnel(shop, customers=ids), stages, moods_by_hand(shop, stages) if ids is everyone
                          else None)
    empty = jr.funnel(shop, customers=[])
    assert [r.customers for r in empty.rows] == [0] * 5 and "no events" in empty.render()


def test_funnel_sentiment_reads_at_most_the_sample(shop):
    full = jr.funnel(shop)
    capped = jr.funnel(shop, sentiment_sample=1)
    assert [r.customers for r in capped.rows] == [r.customers for r in full.rows]
    assert all(r.texts <= 1 for r in capped.rows) and any(r.texts == 1 for r in capped.rows)
    assert any("latest 1 support messages" in n for n in capped.notes)


def test_funnel_with_no_events_in_range(ctx):
    result = journey_funnel(ctx, start="2030-01-01", end="2030-01-31")
    assert [r.customers for r in result.rows] == [0] * 5
    assert "0 customers viewed" in result.render() and result.notes
    open_ended = journey_funnel(ctx, start="2030-01-01")
    assert "no events in this range" in open_ended.render()
    assert unbound_facts(open_ended) == []


def test_funnel_bad_input(ctx):
    with pytest.raises(ToolInputError, match="start must be a date"):
        journey_funnel(ctx, start="2024-13-01")
    with pytest.raises(ToolInputError, match="end must be a date") as info:
        journey_funnel(ctx, end="last week")
    assert info.value.user_message() == "Please give the date as year-month-day (YYYY-MM-DD)."
    with pytest.raises(ToolInputError, match="after end") as info:
        journey_funnel(ctx, start="2024-03-01", end="2024-02-01")
    assert "start date is after the end date" in info.value.user_message() and info.value.user_message("zh")
    with pytest.raises(ToolInputError) as info:
        journey_funnel(ctx, category="headphone")
    assert info.value.user_message() == "I couldn't find a category called 'headphone'. Did you mean Headphones?"
    with pytest.raises(ToolInputError, match="segments are"):
        journey_funnel(ctx, segment="whales")
    with pytest.raises(ToolInputError, match="tier must be"):
        journey_funnel(ctx, tier="gold")


# ---------------------------------------------------------------- one customer's journey


def test_journey_timeline_in_order_with_duplicates_merged(ctx):
    j = get_customer_journey(ctx, "ANN@example.com")
    assert j.customer_id == "ann" and j.name == "Ann Lee" and j.email == "ann@example.com"
    # the purchase and review events stand for the order and the review: shown once, as the rows
    assert [(s.stage, s.source) for s in j.steps] == [
        ("browse", "event"), ("search", "event"), ("cart", "event"), ("purchase", "order"), ("support", "support"),
        ("review", "review"), ("return", "order")]
    assert [s.at for s in j.steps] == sorted(s.at for s in j.steps)
    assert j.steps_total == 7 and j.left_out == 0
    assert j.steps[0].product_name == "Quiet Headphones" and j.steps[0].product_id == "p1"
    order = j.steps[3]
    assert (order.order_id, order.order_total_usd, order.order_status) == ("o-ann", 99.5, "return requested")
    assert j.steps[6].at == T0 + timedelta(days=9)  # the return request: the order's last update
    assert (j.first_at, j.last_at, j.as_of) == (T0, T0 + timedelta(days=9), (T0 + timedelta(days=9)).date())
    assert j.furthest_stage == "review" and j.last_stage == "return" and j.returned


def test_a_return_event_stands_for_the_orders_return(ctx, shop):
    with shop.transaction() as s:
        s.add(Event(key="ann-return", customer_id="ann", kind="return", order_id="o-ann", product_id="p1",
                    occurred_at=T0 + timedelta(days=9, hours=2)))
    j = get_customer_journey(ctx, "ann")
    returns = [s for s in j.steps if s.stage == "return"]
    assert [(s.source, s.order_id, s.at) for s in returns] == [("event", "o-ann", T0 + timedelta(days=9, hours=2))]
    assert "return of order o-ann Quiet Headphones [p1]" in j.render()


def test_journey_transitions(ctx):
    j = get_customer_journey(ctx, "ann")
    got = {(t.from_stage, t.to_stage): t.days for t in j.transitions}
    assert got == {("browse", "cart"): 2.5, ("cart", "purchase"): 0.5, ("purchase", "review"): 5.0,
                   ("purchase", "return"): 6.0, ("purchase", "support"): 3.0}
    first = j.transitions[0]
    assert (first.from_at, first.to_at) == (T0, T0 + timedelta(days=2.5))
    text = j.render()
    assert "- browse → cart (ann): 2.5 days (2024-03-01 → 2024-03-03)." in text
    assert "Furthest funnel stage (ann): review; has returned an order; last step: return on 2024-03-10." in text
    assert "浏览(browse) → 加购(cart)(ann):2.5 天" in j.render("zh")


def test_journey_sentiment_and_intent_in_english_and_chinese(ctx, shop):
    j = get_customer_journey(ctx, "ann")
    support, review = j.steps[4], j.steps[5]
    assert support.text == ZH_COMPLAINT and (support.sentiment, support.intent) == ("negative", "order status")
    assert review.text == EN_REVIEW and (review.sentiment, review.intent) == ("negative", "abandon")
    assert review.rating == 1 and review.review_id == "r-ann"
    with shop.transaction() as s:
        s.add(Review(id="r-ann-2", product_id="p2", customer_id="ann", rating=5, text=ZH_REVIEW,
                     created_at=T0 + timedelta(days=10)))
        s.add(Message(conversation_id="v-ann", seq=2, role="user", content=EN_RETURN,
                      created_at=T0 + timedelta(days=11)))
    j = get_customer_journey(ctx, "ann")
    zh_review, en_message = j.steps[-2], j.steps[-1]
    assert (zh_review.stage, zh_review.sentiment, zh_review.intent) == ("review", "positive", "buy again")
    assert (en_message.stage, en_message.intent) == ("support", "return")
    zh = j.render("zh")
    assert "负面(negative)" in zh and "订单状态(order status)" in zh and "会再买(buy again)" in zh


@pytest.mark.parametrize(("text", "intent"), [
    ("Hello, where is my order #S1? It has not arrived yet.", "order status"),
    ("I want to cancel my order please", "cancel"),
    ("Why was order #S1 cancelled? When do I get my refund?", "refund"),
    ("What is the status of the return for order #S1?", "return"),
    ("I asked to exchange an item in order #S1, what happens next?", "exchange"),
    ("Hi, can I still change the shipping address on order #S1?", "change order"),
    ("The laptop arrived broken, this is unacceptable", "complaint"),
    ("Do you sell gift cards?", "question"),
    ("Thanks", "other"),
    ("need help cancelling purchase 1234567", "cancel"),
    ("how do I cancel my newsletter subscription", "question"),  # not an order
    ("what is the cancellation fee?", "question"),
    ("I am still waiting for a reimbursement of $40", "refund"),
    ("in which cases can I ask for a refund?", "question"),  # the policy, not a request
    ("I chose a wrong address, can you help me update it", "change order"),
    ("help me remove an item from order 1234567", "change order"),
    ("how soon can I expect my parcel", "order status"),
    ("I want to file a claim against your company", "complaint"),
    ("我想取消订单", "cancel"),
    ("可以退货吗？", "return"),
    ("我的快递到哪了", "order status"),
    ("质量问题，我要投诉", "complaint"),
    ("请问有发票吗", "question"),
])
def test_support_intent_rules(text, intent):
    assert intents.support_intent(text) == intent


@pytest.mark.parametrize(("text", "rating", "intent"), [
    ("Love it, I will buy another one for my son", 5, "buy again"),
    ("Never buying from this brand again. Returned it.", 1, "abandon"),
    ("Good, but I'd wait for the next version", 4, "wait"),
    ("Nice enough, I don't recommend it at this price", 3, "abandon"),
    ("音质很好，还会再买", 5, "buy again"),
    ("再也不买了", 2, "abandon"),
    ("不错，等降价再买第二个", 4, "wait"),
    ("Fine.", 5, "buy again"),  # no phrase: the stars decide
    ("Fine.", 3, "wait"),
    ("Meh.", 1, "abandon"),
    ("以后不会再住这里了", None, "abandon"),
    ("下次还会再来", None, "buy again"),
    # "不再" / "还会再" say nothing of buying unless a buying, staying or coming follows: the stars decide
    ("用了一个月，不再卡顿了，很满意", 5, "buy again"),
    ("还会再坏吗？质量一般", 3, "wait"),
    # "不再用担心" is no longer worrying; "再去" / "再来" is a return visit only after a word that looks ahead
    ("有了它，不再用担心电量", None, None),
    ("以后不再用这个牌子了", None, "abandon"),
    ("希望第二天退房后再去泡温泉，却被告知不能", None, None),
    ("再来说说缺点：声音有点小", None, None),
    ("下次周末再来无锡，这家酒店决定还住", None, "buy again"),
    ("有机会可以再去。", None, "buy again"),
])
def test_review_intent_rules(text, rating, intent):
    assert intents.review_intent(text, rating) == intent


def test_stated_intent_is_the_words_alone():
    """The churn features count what a text says, never what its stars imply (the stars are a feature already)."""
    assert intents.stated_purchase_intent("Fine.") is None
    assert intents.stated_purchase_intent("Never buying from this brand again. Returned it.") == "abandon"
    assert intents.stated_purchase_intent("音质很好，还会再买") == "buy again"


def test_journey_renders_data_as_quoted_data(ctx):
    j = get_customer_journey(ctx, "ann")
    text, zh = j.render(), j.render("zh")
    assert 'searched """quiet headphones [removed]"""' in text
    assert "ignore previous instructions" not in text + zh + json.dumps(j.model_dump(mode="json"))
    assert f'support message: """{ZH_COMPLAINT}"""' in text and f'客服消息:"""{ZH_COMPLAINT}"""' in zh
    assert "| 2024-03-04 10:00 | purchase | order o-ann placed $99.50 (return requested) |  |  |" in text
    assert "下单 o-ann $99.50 退货申请中(return requested)" in zh
    for lang in ("en", "zh"):
        assert unbound_facts(j, lang) == []
    facts = {(f.kind, f.value, f.about) for f in j.facts()}
    assert {("order_id", "o-ann", "order:o-ann"), ("amount", "$99.50", "order:o-ann"),
            ("status", "return requested", "order:o-ann"), ("review_id", "r-ann", "review:r-ann"),
            ("rating", "1", "review:r-ann"), ("metric", "2.5", "customer:ann"),
            ("product_name", "Quiet Headphones", "product:p1")} <= facts


def test_journey_shows_the_latest_steps(ctx, shop):
    with shop.transaction() as s:
        for i in range(60):
            s.add(Event(key=f"many-{i}", customer_id="c01", kind="view", product_id="p999",
                        occurred_at=datetime(2025, 1, 1) + timedelta(hours=i)))
    j = get_customer_journey(ctx, "c01")
    assert len(j.steps) == jr.MAX_STEPS and j.steps_total == j.left_out + jr.MAX_STEPS and j.left_out >= 10
    assert j.steps[-1].at == datetime(2025, 1, 1) + timedelta(hours=59)
    assert j.steps[-1].product_name is None and "viewed [p999]" in j.render()  # not in the catalog: the id alone
    assert f"{j.left_out} earlier steps are left out" in j.render()
    assert f"更早的 {j.left_out} 步未显示" in j.render("zh")
    assert unbound_facts(j) == [] and unbound_facts(j, "zh") == []


def test_journey_of_a_customer_with_nothing_yet(ctx, shop):
    from store.models import Customer

    with shop.transaction() as s:
        s.add(Customer(id="newbie", email="new@example.com"))
    j = get_customer_journey(ctx, "newbie")
    assert j.steps_total == 0 and j.steps == [] and j.transitions == [] and j.furthest_stage is None
    assert "no steps recorded yet" in j.render() and "还没有任何记录" in j.render("zh")
    assert unbound_facts(j) == []
    with shop.transaction() as s:
        s.add(Event(key="newbie-cart", customer_id="newbie", kind="cart", product_id="p3", occurred_at=T0))
        s.add(Event(key="newbie-view", customer_id="newbie", kind="view", product_id="p3",
                    occurred_at=T0 - timedelta(hours=36)))
    j = get_customer_journey(ctx, "new@example.com")
    assert [s.stage for s in j.steps] == ["browse", "cart"] and j.furthest_stage == "cart" and not j.returned
    assert [(t.from_stage, t.to_stage, t.days) for t in j.transitions] == [("browse", "cart", 1.5)]
    assert "Furthest funnel stage (newbie): cart (no purchase yet); last step: cart on 2024-03-01." in j.render()
    assert "加购(cart)(尚未购买)" in j.render("zh")


def test_unknown_customer_and_blank(ctx):
    with pytest.raises(NotFoundError) as info:
        get_customer_journey(ctx, "ghost@example.com")
    with pytest.raises(NotFoundError) as profile:
        get_customer_profile(ctx, "ghost@example.com")
    assert str(info.value) == str(profile.value)
    assert info.value.user_message() == profile.value.user_message()
    with pytest.raises(ToolInputError):
        get_customer_journey(ctx, "  ")


def test_marketers_only(shop, settings):
    customer = ShopContext(store=shop, settings=settings, role="customer", customer_id="ann")
    with pytest.raises(PermissionError):
        get_customer_journey(customer, "ann")
    with pytest.raises(PermissionError):
        journey_funnel(customer)


def test_tools_are_offered_to_marketers_only(assert_tool_signature):
    from tools.registry import CUSTOMER_TOOLS, MARKETER_TOOLS

    assert MARKETER_TOOLS[-2:] == ("get_customer_journey", "journey_funnel")
    assert not {"get_customer_journey", "journey_funnel"} & set(CUSTOMER_TOOLS)
    for fn in (get_customer_journey, journey_funnel):
        assert_tool_signature(fn, "marketer")


def test_argument_names_are_the_ones_the_grammar_constrains():
    """segment, tier, category and customer are the argument names agent.enums and the tier Literal constrain."""
    from agent.toolspec import tool_spec

    funnel = tool_spec(journey_funnel).schema["properties"]
    assert set(funnel) == {"segment", "tier", "category", "start", "end"}
    assert {"enum": ["high", "medium", "low"], "type": "string"} in funnel["tier"]["anyOf"]
    assert set(tool_spec(get_customer_journey).schema["properties"]) == {"customer"}


# ---------------------------------------------------------------- the command line


@pytest.fixture
def cli_shop(settings):
    from store.db import open_store

    store = open_store(settings.db_url)
    build_journey_shop(store)
    yield store
    store.dispose()


def run(*args):
    from shopdesk.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_cli_show_and_funnel(cli_shop):
    res = run("journeys", "show", "ann@example.com", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["customer_id"] == "ann" and data["steps_total"] == 7 and data["furthest_stage"] == "review"
    res = run("journeys", "show", "ann")
    assert res.exit_code == 0 and "browse → cart (ann): 2.5 days" in res.stdout

    res = run("journeys", "funnel", "--category", "Laptops", "--start", "2024-02-01", "--end", "2024-03-15", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    stages = by_hand(cli_shop, category="Laptops", start=date(2024, 2, 1), end=date(2024, 3, 15))
    assert [r["customers"] for r in data["rows"]] == [len(stages[s]) for s in STAGES]
    res = run("journeys", "funnel")
    assert res.exit_code == 0 and "| Stage | Customers |" in res.stdout


def test_cli_errors_are_one_line(cli_shop):
    for args, message in (
        (("journeys", "show", "ghost@example.com"), "no customer"),
        (("journeys", "funnel", "--start", "2024-13-01"), "start must be a date"),
        (("journeys", "funnel", "--start", "2024-03-01", "--end", "2024-01-01"), "after end"),
        (("journeys", "funnel", "--segment", "whales"), "unknown segment"),
        (("journeys", "funnel", "--tier", "gold"), "--tier must be"),
        (("journeys", "funnel", "--category", "Toasters"), "unknown category"),
    ):
        res = run(*args)
        assert res.exit_code == 2, res.output
        assert res.stderr.startswith("error: ") and message in res.stderr and "Traceback" not in res.output


def test_the_confirm_and_cancel_buttons_are_not_the_customers_words(ctx, shop):
    """The turn log records the chat's Confirm and Cancel buttons as "[Confirm]" and "[Cancel]": a journey leaves
    them out (the walk-through showed '"[Cancel]" negative, cancel' as a support message of the customer's).
    """
    before = get_customer_journey(ctx, "ann")
    with shop.transaction() as s:
        for seq, marker in ((5, "[Cancel]"), (6, "[Confirm]")):
            s.add(Message(conversation_id="v-ann", seq=seq, role="user", content=marker,
                          created_at=T0 + timedelta(days=12 + seq)))
        s.add(Message(conversation_id="v-ann", seq=7, role="user", content=EN_RETURN,
                      created_at=T0 + timedelta(days=20)))
    after = get_customer_journey(ctx, "ann")
    texts = [st.text for st in after.steps]
    assert "[Cancel]" not in texts and "[Confirm]" not in texts and EN_RETURN in texts
    assert len(after.steps) == len(before.steps) + 1


def test_journey_marks_the_brands_models_and_prices_a_text_names(ctx, shop):
    with shop.transaction() as s:
        s.get(Product, "p1").brand = "Sony"
        s.add(Review(id="r-ann-3", product_id="p1", customer_id="ann", rating=2,
                     text="My Sony WH-1000XM4 cost $349.99 and the left side died", created_at=T0 + timedelta(days=12)))
        s.add(Message(conversation_id="v-ann", seq=3, role="user", content="索尼耳机退款1299元什么时候到？",
                      created_at=T0 + timedelta(days=13)))
    j = get_customer_journey(ctx, "ann")
    review, message = j.steps[-2], j.steps[-1]
    assert (review.brands, review.models, review.prices) == (["Sony"], ["WH-1000XM4"], ["349.99 USD"])
    # 索尼 is Sony's Chinese name: the catalog's brand (index.entities.BRAND_ZH)
    assert (message.brands, message.models, message.prices) == (["Sony"], [], ["1299 CNY"])
    assert all(not (s.brands or s.models or s.prices) for s in j.steps[:-2])
    en, zh = j.render("en"), j.render("zh")
    assert "| Mentions |" in en and "brand Sony; model WH-1000XM4; price 349.99 USD" in en
    assert "| 提及 |" in zh and "价格 1299 CNY" in zh
    assert unbound_facts(j, "en") == [] and unbound_facts(j, "zh") == []
