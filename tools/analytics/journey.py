"""Marketer tools over behaviour events: one customer's journey as a timeline, and the view -> cart -> purchase ->
review funnel of the shop (SQL aggregation, so it stays fast at millions of events).

A journey merges the customer's events, orders, reviews and support messages (journey_steps), shows the latest
MAX_STEPS, and measures the days between stages (TRANSITIONS) over all of them. The funnel's definitions (what
reaching and dropping off at a stage mean) are in `funnel`. Sentiment comes from index.sentiment.analyze; intent from
the rule tables in tools.analytics.intents.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import and_, case, func, literal, or_, select, union_all

from index.entities import extract
from index.sentiment import analyze
from index.text import neutralize
from store.db import Store
from store.models import Conversation, Event, Message, Order, OrderItem, Product, Review
from store.shop import shop_currency
from store.supportstats import BUTTON_MESSAGES
from tools.analytics.intents import review_intent, support_intent
from tools.analytics.models import (
    CustomerJourney,
    FunnelRow,
    JourneyFunnel,
    JourneyStage,
    JourneyStep,
    StageTransition,
)
from tools.analytics.segments import as_float, check_tier, marketer_customer, segment_name
from tools.analytics.snapshot import get_snapshot, parse_date
from tools.context import ShopContext
from tools.errors import ToolInputError, unknown_choice

MAX_STEPS = 50  # steps a journey shows (the latest); transitions and counts use every step
MAX_EVENTS_READ = 20_000  # a journey reads at most this many of a customer's events (the latest)
SENTIMENT_SAMPLE = 200  # texts read per funnel drop-off stage (the latest), each through index.sentiment.analyze
ID_CHUNK = 500  # customer ids per IN (...) list: under SQLite's bound-parameter limit

EVENT_STAGE: dict[str, JourneyStage] = {"view": "browse", "search": "search", "cart": "cart", "support": "support",
                                         "purchase": "purchase", "review": "review", "return": "return"}
# Journey stages along the funnel, in order: the furthest one a customer has a step of is where they stopped.
FUNNEL_PATH: tuple[JourneyStage, ...] = ("browse", "cart", "purchase", "review")
# (from, to): the time from the first step of `from` to the first step of `to` at or after it.
TRANSITIONS: tuple[tuple[JourneyStage, JourneyStage], ...] = (
    ("browse", "cart"), ("cart", "purchase"), ("purchase", "review"), ("purchase", "return"), ("purchase", "support"),
)
FUNNEL_KINDS = ("view", "cart", "purchase", "review", "return")  # event kinds of the funnel's stages, in order
DEFAULT_DAYS = 30  # the funnel's range when no start is given: the 30 days up to the end


# ---------------------------------------------------------------- one customer's journey


def get_customer_journey(ctx: ShopContext, customer: str) -> CustomerJourney:
    """One customer's journey in time order, with sentiment, intent and the days between stages.

    Args:
        customer: Customer id or email address.
    """
    found = marketer_customer(ctx, customer)
    steps, notes = journey_steps(ctx.store, found.id)
    shown = steps[-MAX_STEPS:]
    reached = {s.stage for s in steps}
    furthest = next((st for st in reversed(FUNNEL_PATH) if st in reached), None)
    return CustomerJourney(
        as_of=steps[-1].at.date() if steps else None,
        customer_id=found.id, email=found.email, name=found.name or None,
        steps_total=len(steps), steps=shown,
        first_at=steps[0].at if steps else None, last_at=steps[-1].at if steps else None,
        transitions=transitions(steps), furthest_stage=furthest, last_stage=steps[-1].stage if steps else None,
        returned="return" in reached, currency=shop_currency(ctx.store), notes=notes,
    )


def journey_steps(store: Store, customer_id: str) -> tuple[list[JourneyStep], list[str]]:
    """Every step of one customer, oldest first, and notes on what was left out.

    Events, orders, reviews and the customer's support messages are merged. A store row and an event that stand for
    the same thing are shown once, as the row: a purchase or return event naming an order of the customer, a review
    event for the product of one of their reviews on the same day, a support event on the day of a support message.
    An order in status "return requested" gives a return step at its last update, unless a return event names it.
    """
    notes: list[str] = []
    with store.read() as s:
        events = s.execute(
            select(Event.kind, Event.occurred_at, Event.product_id, Event.query, Event.order_id)
            .where(Event.customer_id == customer_id)
            .order_by(Event.occurred_at.desc(), Event.id.desc()).limit(MAX_EVENTS_READ + 1)
        ).all()
        orders = s.execute(
            select(Order.id, Order.created_at, Order.updated_at, Order.status, Order.total)
            .where(Order.customer_id == customer_id)
        ).all()
        reviews = s.execute(
            select(Review.id, Review.product_id, Review.rating, Review.title, Review.text, Review.created_at)
            .where(Review.customer_id == customer_id)
        ).all()
        messages = s.execute(
            select(Message.created_at, Message.content)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.customer_id == customer_id, Conversation.role == "customer", Message.role == "user",
                   Message.content.notin_(BUTTON_MESSAGES))
        ).all()
        product_ids = {e.product_id for e in events if e.product_id} | {r.product_id for r in reviews}
        names = product_names(s, product_ids)
        known_brands = catalog_brands(s) if reviews or messages else []
    if len(events) > MAX_EVENTS_READ:
        events = events[:MAX_EVENTS_READ]
        notes.append(f"Only the latest {MAX_EVENTS_READ} events of this customer are read.")
    own_orders = {o.id for o in orders}
    review_days = {(r.product_id, r.created_at.date()) for r in reviews if r.created_at is not None}
    message_days = {m.created_at.date() for m in messages if (m.content or "").strip()}
    returned_by_event = {e.order_id for e in events if e.kind == "return" and e.order_id}
    steps: list[JourneyStep] = []
    for e in events:
        if e.kind not in EVENT_STAGE:
            continue
        if e.kind == "purchase" and e.order_id in own_orders:
            continue
        if e.kind == "review" and (e.product_id, e.occurred_at.date()) in review_days:
            continue
        if e.kind == "support" and e.occurred_at.date() in message_days:
            continue
        steps.append(JourneyStep(
            at=e.occurred_at, stage=EVENT_STAGE[e.kind], source="event", product_id=e.product_id,
            product_name=names.get(e.product_id), query=neutralize(e.query, 200) if e.query else None,
            order_id=e.order_id if e.kind in ("purchase", "return") else None,
        ))
    for o in orders:
        steps.append(JourneyStep(at=o.created_at, stage="purchase", source="order", order_id=o.id,
                                 order_total_usd=round(as_float(o.total), 2), order_status=o.status))
        if o.status == "return requested" and o.id not in returned_by_event:
            steps.append(JourneyStep(at=o.updated_at, stage="return", source="order", order_id=o.id))
    undated = 0
    for r in reviews:
        if r.created_at is None:
            undated += 1
            continue
        mood = analyze(r.text or "", r.title)
        whole = " ".join(x for x in (r.title, r.text) if x)
        steps.append(JourneyStep(
            at=r.created_at, stage="review", source="review", review_id=r.id, product_id=r.product_id,
            product_name=names.get(r.product_id), rating=r.rating, text=neutralize(whole, 200),
            sentiment=mood.sentiment, intent=review_intent(whole, r.rating), **mentions(whole, known_brands),
        ))
    if undated:
        notes.append(f"{undated} undated reviews of this customer are not on the timeline.")
    for m in messages:
        content = (m.content or "").strip()
        if not content:
            continue
        steps.append(JourneyStep(at=m.created_at, stage="support", source="support", text=neutralize(content, 200),
                                 sentiment=analyze(content, kind="message").sentiment, intent=support_intent(content),
                                 **mentions(content, known_brands)))
    order = {"event": 0, "order": 1, "support": 2, "review": 3}
    steps.sort(key=lambda st: (st.at, order[st.source]))
    return steps, notes


def catalog_brands(session) -> list[str]:
    """The brands of the catalog (what index.entities looks for in a review or message)."""
    return [b for (b,) in session.execute(select(Product.brand).where(Product.brand.isnot(None)).distinct())]


def mentions(text: str, known_brands: list[str]) -> dict[str, list[str]]:
    """JourneyStep's brands, models and prices for `text`: index.entities.extract, prices as '1299 USD'. Values are
    neutralised like the text they come from (catalog and customer text are data).
    """
    e = extract(text, known_brands)
    return {"brands": [neutralize(b, 60) for b in e.brands], "models": [neutralize(m, 40) for m in e.models],
            "prices": [f"{p.amount} {p.currency}" for p in e.prices]}


def product_names(session, ids: set[str]) -> dict[str, str]:
    """Catalog names of the products in `ids` that are in the catalog (neutralised: catalog text is data)."""
    out: dict[str, str] = {}
    ids_list = sorted(i for i in ids if i)
    for start in range(0, len(ids_list), ID_CHUNK):
        chunk = ids_list[start:start + ID_CHUNK]
        for pid, name in session.execute(select(Product.id, Product.name).where(Product.id.in_(chunk))):
            out[pid] = neutralize(name or "", 120).replace("|", "/")
    return out


def transitions(steps: list[JourneyStep]) -> list[StageTransition]:
    """Time from the first step of one stage to the first step of the next at or after it (TRANSITIONS)."""
    out = []
    for a, b in TRANSITIONS:
        start = next((s.at for s in steps if s.stage == a), None)
        if start is None:
            continue
        end = next((s.at for s in steps if s.stage == b and s.at >= start), None)
        if end is None:
            continue
        out.append(StageTransition(from_stage=a, to_stage=b, from_at=start, to_at=end,
                                   days=round((end - start).total_seconds() / 86400, 1)))
    return out


# ---------------------------------------------------------------- the funnel


def journey_funnel(
    ctx: ShopContext,
    segment: str | None = None,
    tier: Literal["high", "medium", "low"] | None = None,
    category: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> JourneyFunnel:
    """Funnel view -> cart -> purchase -> review (and return): customers, conversion and drop-off per stage.

    Args:
        segment: Only customers of this segment, e.g. "At risk" or "Champions".
        tier: Only customers of this value tier: "high", "medium" or "low".
        category: Only events about products of this catalog category.
        start: First day of the range, YYYY-MM-DD; default 30 days before the end.
        end: Last day of the range (included), YYYY-MM-DD; default the day of the latest event.
    """
    ctx.require_marketer()
    day0, day1 = parse_date(start, "start"), parse_date(end, "end")
    if day0 is None:  # a funnel over all time has no drop-off in a shop whose customers all bought once
        day1 = day1 or latest_event_day(ctx.store)
        day0 = day1 - timedelta(days=DEFAULT_DAYS - 1) if day1 else None
    if day0 and day1 and day0 > day1:
        raise ToolInputError(f"start {day0} is after end {day1}",
                             user="The start date is after the end date. Which range do you mean?",
                             user_zh="开始日期晚于结束日期。您想看哪个时间范围?")
    check_tier(tier)
    seg_name = segment_name(segment)
    cat_name = resolve_category(ctx.store, category) if category else None
    customers, segments_as_of, notes = None, None, []
    if seg_name or tier:
        snap = get_snapshot(ctx)
        t = snap.table
        if len(t):
            if seg_name:
                t = t[t["segment"] == seg_name]
            if tier:
                t = t[t["tier"] == tier]
        customers = [str(c) for c in t.index]
        segments_as_of = snap.as_of
        notes.append(f"Segments and tiers are as of {snap.as_of}; customers with no purchase by then have none.")
    return funnel(ctx.store, customers=customers, category=cat_name, start=day0, end=day1, segment=seg_name,
                  tier=tier, segments_as_of=segments_as_of, notes=notes)


def latest_event_day(store: Store) -> date | None:
    """The day of the latest view (the funnel's first stage), or None in a shop without events."""
    with store.read() as s:
        latest = s.scalar(select(func.max(Event.occurred_at)).where(Event.kind == "view"))
    return None if latest is None else _as_datetime(latest).date()


def resolve_category(store: Store, category: str) -> str:
    """The catalog's name of `category` (any case), or a ToolInputError suggesting the closest category."""
    with store.read() as s:
        names = sorted(c for c in s.scalars(select(Product.category).distinct()) if c)
    wanted = " ".join(str(category).split()).lower()
    for name in names:
        if name.lower() == wanted:
            return name
    raise unknown_choice(f"unknown category {category!r}; categories are: {', '.join(names)}",
                         neutralize(str(category), 60), names, "category", "categories", "类别")


def _range(start: date | None, end: date | None) -> list:
    conds = []
    if start is not None:
        conds.append(Event.occurred_at >= datetime.combine(start, time.min))
    if end is not None:
        conds.append(Event.occurred_at < datetime.combine(end + timedelta(days=1), time.min))
    return conds


def _in_range(column, start: date | None, end: date | None) -> list:
    conds = [column.isnot(None)]
    if start is not None:
        conds.append(column >= datetime.combine(start, time.min))
    if end is not None:
        conds.append(column < datetime.combine(end + timedelta(days=1), time.min))
    return conds


def _category_products(category: str):
    return select(Product.id).where(Product.category == category)


def _event_filter(category: str | None, start: date | None, end: date | None) -> list:
    # No condition on kind: the flags pick the kinds, and without one SQLite reads the events in customer order
    # through ix_events_customer_time (a chunk of ids becomes index look-ups) instead of looking up every row of
    # the funnel's kinds from ix_events_kind_time.
    conds = _range(start, end)
    if category is not None:
        in_orders = select(OrderItem.order_id).where(OrderItem.product_id.in_(_category_products(category)))
        conds.append(or_(Event.product_id.in_(_category_products(category)), Event.order_id.in_(in_orders)))
    return conds


def _flags(conds: list):
    """One row per customer: 1/0 per funnel kind (has an event of it among `conds`), first and last such event."""
    cols = [func.max(case((Event.kind == k, 1), else_=0)).label(k) for k in FUNNEL_KINDS]
    at = case((Event.kind.in_(FUNNEL_KINDS), Event.occurred_at), else_=None)
    return (select(Event.customer_id, *cols, func.min(at).label("first_at"), func.max(at).label("last_at"))
            .where(*conds).group_by(Event.customer_id))


def _dropped_stage(f):
    """The stage a customer of the flags row `f` dropped off at (SQL), or NULL when they did not drop off."""
    v, c, p, r = (f.c[k] == 1 for k in ("view", "cart", "purchase", "review"))
    return case((and_(v, ~c), literal("view")), (and_(v, c, ~p), literal("cart")),
                (and_(v, c, p, ~r), literal("purchase")), else_=None)


def funnel(
    store: Store,
    *,
    customers: list[str] | None = None,
    category: str | None = None,
    start: date | None = None,
    end: date | None = None,
    segment: str | None = None,
    tier: str | None = None,
    segments_as_of: date | None = None,
    notes: list[str] | None = None,
    sentiment_sample: int = SENTIMENT_SAMPLE,
) -> JourneyFunnel:
    """The funnel over the store's events; the function journey_funnel and the benchmark call.

    A customer *reaches* a stage when they have an event of its kind in [start, end] (about a product of `category`,
    where given: the event's product, or an item of the event's order, is in it) and reached the stage before:
    view; cart = view and cart; purchase = cart and purchase; review = purchase and review; return = purchase and
    return (a branch). The order of the events inside the range is not checked. A customer *drops off* at view,
    cart or purchase when they reached it and not the next stage (review ends the funnel, return is a branch).
    `customers` (ids) limits the count to them; None counts everyone.

    The counting is SQL: one GROUP BY customer over the events in range, then a GROUP BY of the five flags, so at
    most 32 rows come back (per chunk of ids when `customers` is given). Sentiment at a drop-off stage: the latest
    `sentiment_sample` support messages (customer conversations, the customer's own words) and reviews (of products
    in `category`, where given) of the customers who dropped off there, written in the range, through
    index.sentiment.analyze.
    """
    conds = _event_filter(category, start, end)
    combos: Counter = Counter()
    span: list[datetime] = []
    with store.engine.connect() as conn:
        chunks = [None] if customers is None else [customers[i:i + ID_CHUNK] for i in range(0, len(customers),
                                                                                          ID_CHUNK)]
        for chunk in chunks:
            where = conds if chunk is None else [*conds, Event.customer_id.in_(chunk)]
            f = _flags(where).subquery()
            q = (select(*(f.c[k] for k in FUNNEL_KINDS), func.count(), func.min(f.c.first_at), func.max(f.c.last_at))
                 .group_by(*(f.c[k] for k in FUNNEL_KINDS)))
            for *bits, n, first, last in conn.execute(q):
                combos[tuple(int(b) for b in bits)] += int(n)
                span += [x for x in (first, last) if x is not None]
        moods = {} if customers == [] else _dropoff_sentiment(conn, conds, customers, category, start, end,
                                                               sentiment_sample)
    rows = funnel_rows(combos, moods)
    notes = list(notes or [])
    if not rows[0].customers:
        notes.append("No customer viewed a product in this range with these filters.")
    if any(r.texts >= sentiment_sample for r in rows):
        notes.append(f"Sentiment at a drop-off stage is read from the latest {sentiment_sample} support messages and "
                     f"reviews of its customers.")
    span_dates = [_as_datetime(x) for x in span]
    first, last = (min(span_dates).date(), max(span_dates).date()) if span_dates else (None, None)
    return JourneyFunnel(
        as_of=end or last, start=start, end=end, first_event=first, last_event=last, segment=segment, tier=tier,
        category=category, segments_as_of=segments_as_of, rows=rows, sentiment_sample=sentiment_sample, notes=notes,
    )


def _as_datetime(x) -> datetime:
    # SQLite returns MIN/MAX over a subquery's DateTime as text
    return x if isinstance(x, datetime) else datetime.fromisoformat(str(x))


def reached(combos: Counter) -> dict[str, int]:
    """Customers at each stage, from the count of customers per (view, cart, purchase, review, return) flags."""
    out = dict.fromkeys(FUNNEL_KINDS, 0)
    for (v, c, p, r, ret), n in combos.items():
        out["view"] += n * v
        out["cart"] += n * v * c
        out["purchase"] += n * v * c * p
        out["review"] += n * v * c * p * r
        out["return"] += n * v * c * p * ret
    return out


def funnel_rows(combos: Counter, moods: dict[str, Counter]) -> list[FunnelRow]:
    """The funnel's rows from the flag counts and the sentiment labels of each drop-off stage."""
    n = reached(combos)
    top = n["view"]
    previous = {"view": None, "cart": "view", "purchase": "cart", "review": "purchase", "return": "purchase"}
    following = {"view": "cart", "cart": "purchase", "purchase": "review"}
    rows = []
    for stage in FUNNEL_KINDS:
        prev = previous[stage]
        base = n[prev] if prev else None
        mood = moods.get(stage, Counter())
        texts = sum(mood.values())
        share = {k: round(mood[k] / texts, 4) if texts else None for k in ("negative", "neutral", "positive")}
        rows.append(FunnelRow(
            stage=stage, customers=n[stage],
            from_previous=round(n[stage] / base, 4) if base else None,
            from_top=round(n[stage] / top, 4) if top else None,
            dropped=n[stage] - n[following[stage]] if stage in following else None,
            texts=texts, **share,
        ))
    return rows


def _dropoff_sentiment(conn, conds: list, customers: list[str] | None, category: str | None, start: date | None,
                       end: date | None, sample: int) -> dict[str, Counter]:
    """Sentiment labels of the latest `sample` texts per drop-off stage (see funnel)."""
    review_conds = [Review.customer_id.isnot(None), *_in_range(Review.created_at, start, end)]
    if category is not None:
        review_conds.append(Review.product_id.in_(_category_products(category)))
    texts = union_all(
        select(Review.customer_id.label("customer_id"), Review.created_at.label("at"), Review.text.label("text"),
               Review.title.label("title"), literal("review").label("kind")).where(*review_conds),
        select(Conversation.customer_id.label("customer_id"), Message.created_at.label("at"),
               Message.content.label("text"), literal(None).label("title"), literal("message").label("kind"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.role == "customer", Conversation.customer_id.isnot(None), Message.role == "user",
               Message.content.notin_(BUTTON_MESSAGES), *_in_range(Message.created_at, start, end)),
    ).subquery()
    writers = select(texts.c.customer_id)
    f = _flags([*conds, Event.customer_id.in_(writers)]).subquery()
    stage = _dropped_stage(f).label("stage")
    q = (select(stage, texts.c.customer_id, texts.c.text, texts.c.title, texts.c.kind)
         .join(f, f.c.customer_id == texts.c.customer_id)
         .where(stage.isnot(None)).order_by(texts.c.at.desc()))
    wanted = None if customers is None else set(customers)
    out: dict[str, Counter] = {k: Counter() for k in ("view", "cart", "purchase")}
    for st, cid, text, title, kind in conn.execute(q.execution_options(stream_results=True, yield_per=1000)):
        if wanted is not None and cid not in wanted:
            continue
        if sum(out[st].values()) >= sample or not (text or "").strip():
            if all(sum(c.values()) >= sample for c in out.values()):
                break
            continue
        out[st][analyze(text, title, kind=kind).sentiment] += 1
    return out

