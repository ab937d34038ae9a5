"""The values a tool argument may take in this turn, by argument name: the grammar (agent/grammar.py) turns them into
enums, so the model can only name what this conversation has: the customer's own orders and any id the person
typed, items and products shown so far, the shop's segments and categories.

What a message names narrows its own turn: an order, item or payment method the customer names is the only one a
call may take, and a marketer's call may filter by a segment or value tier only when the message names it.

An order id the person typed stays possible even when it is someone else's: the tool then answers that there is no
such order on their account, instead of the grammar forcing a look-up of a different order.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Sequence
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from langchain_core.messages import HumanMessage
from sqlalchemy import select

from agent.grammar import CALL_FIRST, MAY_OMIT, MUST_GIVE, MUST_TAKE, NOT_ASKED, ONLY_TOOLS, EveryOne
from index.entities import brands as named_brands
from index.search import parse_query, review_stars
from index.text import has_cjk
from tools.registry import ASKED_IF_MISSING

if TYPE_CHECKING:
    from agent.turncontext import Conversation

# An enums key that is no argument's name: the changes this message asks for on an order it does not name. The turn
# may only list the customer's orders, and the reply asks which one (agent.graph.answer).
WHICH_ORDER = "which order"
_TYPED_ORDER = re.compile(r"[#＃]\s?([A-Za-z]?\d{4,})\b|\b([A-Za-z]\d{6,})\b")
_TYPED_DIGITS = re.compile(r"(?<![\w.$])(\d{5,})(?!\w|\.\d)")  # not a price's digits; "item 7292993." counts
_TYPED_CUSTOMER = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b[a-z][a-z0-9_]*\d{3,}\b")  # an email ends before a "."


def session_enums(session: Conversation, current: str = "") -> dict[str, list[str]]:
    """Per-turn enums for `session`'s role. An empty list means no value is possible yet: a tool that needs an id
    nobody typed and no result showed cannot be called (agent.grammar.constrained_tools), so the model cannot invent
    one ("10" or a segment name as a customer, a product id from thin air). `current` is this turn's message.
    """
    earlier = [m.content for m in session.history if isinstance(m, HumanMessage) and isinstance(m.content, str)]
    typed = " ".join([*earlier, current])
    seen = _seen(session)
    if session.role == "customer":
        enums = _customer(session, typed, seen, current, earlier)
    else:
        enums = _marketer(session, typed, seen, current, earlier)
    # "电视有哪些差评？" asks for the bad reviews: a review search takes the stars that means (the walk of session 18:
    # the model searched "电视" with no bound and showed five-star reviews). Only the bad ones: "good reviews" is as
    # often a product search's rating ("headphones with good reviews"), which the model chooses itself.
    stars = review_stars(current)
    if stars and "max_rating" in stars:
        enums["max_rating"] = [stars["max_rating"]]
        enums[MUST_GIVE] = [*enums.get(MUST_GIVE, []), "max_rating"]
        # bounds the message does not state are none: made to give max_rating, the model also wrote min_rating 90
        # and k 10 (the walk of session 18), and the tool then asked the marketer for a star rating
        enums["min_rating"], enums["k"] = [], []
    return enums


def _seen(session: Conversation) -> dict[str, list[str]]:
    """Values of the conversation's results by fact kind (item_id, product_id, customer_id, ...), in order; and, in
    one pass, the item ids by where they were shown: "item_id:order" (a customer's orders) and "item_id:offered"
    (what the shop offers: product details, searches, recommendations).
    """
    from agent.grounding import facts_of

    out: dict[str, dict[str, None]] = {}
    for tool, result in session.all_results:
        origin = "item_id:order" if tool in _ORDER_TOOLS else "item_id:offered"
        for fact in facts_of(result):
            value = fact.value
            if fact.kind in ("item_id", "product_id", "customer_id") and fact.about:
                kind, _, ident = fact.about.partition(":")
                if f"{kind}_id" == fact.kind:
                    value = ident  # the id itself, not a rendering of it
            out.setdefault(fact.kind, {})[value] = None
            if fact.kind == "item_id":
                out.setdefault(origin, {})[value] = None
    return {k: list(v) for k, v in out.items()}


def _customer(session: Conversation, typed: str, seen: dict[str, list[str]], current: str,
              earlier: list[str]) -> dict[str, list[str]]:
    from store.models import Order, PaymentMethod

    cache = session.ctx.cache.setdefault("enums", {})
    if "orders" not in cache:
        with session.ctx.store.read() as s:
            cache["orders"] = list(s.scalars(select(Order.id).where(Order.customer_id == session.customer_id)))
            cache["payment_methods"] = [
                (pm.id, pm.kind, pm.brand, pm.last_four) for pm in s.scalars(
                    select(PaymentMethod).where(PaymentMethod.customer_id == session.customer_id)
                    .order_by(PaymentMethod.id))]
    own: list[str] = cache["orders"]
    orders = dict.fromkeys(own)
    for found in _typed_orders(typed, own):
        orders[found] = None
    # an order this message names is the one it asks about: "return the headphones from #S0000276" may not act on
    # the order shown just before it
    named_orders = _typed_orders(current, own)
    # an item or product id the person typed stays possible too (an exchange to the variant they name)
    own_digits = {_digits(o) for o in own}
    numbers = [n for n in _TYPED_DIGITS.findall(typed) if n not in own_digits]
    items = list(dict.fromkeys([*seen.get("item_id", []), *numbers]))
    products = list(dict.fromkeys([*seen.get("product_id", []), *numbers]))
    # What the person names in this message is what they asked for: the items shown so far that they name by id
    # are the only items a call may act on, and a payment method of theirs that they name is the only one it may use
    # (the tool then applies the policy to it, instead of the model quietly picking another card).
    typed_now = list(dict.fromkeys(_TYPED_DIGITS.findall(current)))
    named_items = [n for n in typed_now if n in seen.get("item_id", [])]
    # items of their orders that they name by id are all of what they ask about: "return items 6777246137 and
    # 6501071631" acts on both, not on one of them
    named_own = [n for n in typed_now if n in seen.get("item_id:order", [])]
    methods: list[tuple] = cache["payment_methods"]
    named_methods = _named_methods(methods, current)
    # A change to an order is one the customer asked for, in this message or the two before it (what the model sees
    # of their words): a status question cannot become a return proposal, nor an injected instruction a cancellation.
    asked = _asked_writes([current, *earlier[-2:]])
    # "What's in it?" after one order, "What do reviewers say about it?" after one product: a message that names no
    # id of its own but points back at the one thing the latest answer was about asks about that thing.
    # A change acts on an order named where it was asked for: "Cancel #W1205816 (someone else's), ..." then "yes,
    # please go ahead" cannot become a cancellation of one of their own orders.
    asked_on = {} if named_orders else {
        f"{tool}.order_id": found for tool in asked
        if (found := _typed_orders(" ".join(m for m in [current, *earlier[-2:]] if _WRITE_WORDS[tool].search(m)), own))}
    # "my latest delivered order", "我最近一个订单": the order it describes, not the one the last answer showed
    latest = [] if named_orders or typed_now else _latest_described(session, current)
    back = {} if named_orders or typed_now or latest else (
        _other_order(session, current) or _one_thing_back(session, current) or _nth_product_back(session, current))
    # "My Sony headphones died, can I return them?" asks about the orders holding Sony headphones, not the order the
    # previous answer showed (the walk of session 19 proposed returning a thermostat)
    holding = [] if named_orders or typed_now or back else _orders_holding_named(session, current, own)
    # A change acts on an order the person named, pointed back at or described: "I want to return an item" names
    # none, so no write tool may pick one of their orders for them (the walk of session 26 proposed returning the
    # oldest order's $2,099.99 laptop, and showed that order for "I want to return something"). Their orders are
    # listed instead, with the question which one (agent.graph.answer). An item id typed names its order (the tool
    # checks that the item is in the order the call gives).
    unnamed = [] if named_orders or asked_on or back.get("order_id") or latest or holding or typed_now \
        else sorted(asked)
    which_order = sorted(_asked_writes([current])) if unnamed else []
    # "有没有100美元以下的无线耳机？" right after an order list, or after a declined cancellation, asks the catalog, not
    # about the order just shown (a change asked for in an earlier message does not make this message about it)
    shopping = not (named_orders or back or _asked_writes([current]) or _MINE.search(current)) \
        and _asks_for(current, _SHOPPING)
    # about one product pointed at, the words say which tool answers: "Is the second one in stock?" is its details,
    # not its reviews (the walk of session 25)
    about_product = _asks_for(current, _ABOUT_A_PRODUCT) if "product" in back else []
    # the price, rating and stock bounds a shopping question states are the search's filters, read by the index's
    # own query parser ("200 美元以下" is max_price 200 even when the model leaves it out of its query)
    bounds = parse_query(current)[1] if shopping else {}
    # the one catalog category a shopping question names is the search's filter too: "headphones under $100" listed
    # a speaker, a HomePod mini and a soundbar after the two headphones at that price (the walks of sessions 21, 30)
    named_category = _named_categories(_categories(session), current)
    one_category = shopping and len(named_category) == 1
    if bounds or one_category:
        # a filter the question does not state is no filter: "under $800" may not become "from $800 up to $800",
        # nor gain a rating, a stock filter or 200 results (seen once a bound or a category was given: the model
        # then wrote more, "backpacks" became $50-$1,511.79)
        bounds = {**dict.fromkeys(_SEARCH_FILTERS), **bounds}
    must_give = [name for name, value in bounds.items() if value is not None] + (["category"] if one_category else [])
    return {
        **({ONLY_TOOLS: shopping or about_product} if shopping or about_product else {}),
        **({ONLY_TOOLS: ["list_my_orders"], WHICH_ORDER: which_order} if which_order else {}),
        **{f"{tool}.order_id": [] for tool in unnamed},
        **{name: [] if value is None else [value] for name, value in bounds.items()},
        MUST_GIVE: must_give,
        NOT_ASKED: [tool for tool in _WRITE_WORDS if tool not in asked],
        # a reason given for a cancellation asked for ("帮我取消订单 #S0000278", asked why, then "买错了。") answers the
        # tool's question: the turn acts, it does not talk (the walk of session 22 got "抱歉,这个我做不到。")
        CALL_FIRST: [bool(named_orders) or ("cancel_pending_order" in asked and bool(_named_reasons(current)))],
        **asked_on,
        **back,
        "order_id": back.get("order_id") or named_orders or latest or holding or list(orders),
        "item_ids": EveryOne(named_own) if named_own else (named_items or items),
        # A new item is one a product result showed or the person typed, never one only an order showed: changing an
        # item to itself is no change ("check my order, then cancel it" may not become an item change).
        "new_item_ids": list(dict.fromkeys([*seen.get("item_id:offered", []), *numbers])),
        # a cancellation's reason is one the customer gave, in this message or an earlier one; when they gave none,
        # the call leaves it out and the tool asks them why ("I found it cheaper elsewhere" is neither policy reason)
        "reason": next((r for m in [current, *reversed(earlier)] if (r := _named_reasons(m))), []),
        MAY_OMIT: sorted({name for names in ASKED_IF_MISSING.values() for name in names}),
        "payment_method_id": named_methods or [m[0] for m in methods],
        # a shopping question asks the catalog about what it names: a product shown earlier (an item of an order) is
        # not what "有没有100美元以下的无线耳机？" is about (the walk of session 18: that product's details)
        "product_id": back.get("product_id") or ([n for n in typed_now if n in products] if shopping else products),
        "category": named_category or _categories(session),
        **_address_enums(current, earlier),
    }


# What a message asks for, by the words that say it: (words, words that rule it out, the tools that answer it). The
# first row whose words a message holds, and none of its exceptions, names the only tools a call may use; a message
# that holds no row's words leaves the choice to the model. Each row came from a request the model answered with
# another tool (the walk-throughs and the eval): "耳机的买家抱怨什么？" was the funnel, "客户 c000007 的消费情况如何？"
# the journey, "高价值但有流失风险的客户" the high tier's funnel, "有没有100美元以下的无线耳机？" an order's details.
_OFFER = r"offer|coupon|discount|voucher|win-?back|retention|incentive|优惠|挽留|折扣|券|赠"
_JOURNEY = r"journey|path|timeline|drop(?:ped)? off|旅程|路径|时间线|经历|轨迹"
_SEGMENT = r"segment|分群|客群|群体"
Intent = tuple[re.Pattern, re.Pattern | None, list[str]]


def asks_for_offer(message: str) -> bool:
    """A marketer's message that asks for a retention offer: a look-up in its turn (the customers to target) is a
    step towards the draft, not the answer.
    """
    return bool(re.search(_OFFER, message, re.I))


def _intent(words: str, unless: str | None, tools: list[str]) -> Intent:
    return re.compile(words, re.I), re.compile(unless, re.I) if unless else None, tools


# A marketer's question about many customers or reviews (no one customer is named or pointed back at).
_ABOUT_MANY = [
    _intent(r"complain|complaint|gripe|抱怨|投诉|吐槽|差评|不满", None, ["review_insights", "search_reviews"]),
    _intent(r"churn|流失", rf"{_OFFER}|{_JOURNEY}|funnel|漏斗|转化", ["score_churn"]),
    _intent(r"funnel|conversion|转化|漏斗", rf"{_OFFER}|churn|流失", ["journey_funnel"]),
    # "给我看看客户分群概览" was the funnel (the walk of session 25)
    _intent(_SEGMENT, rf"{_OFFER}|{_JOURNEY}|funnel|漏斗|转化|complain|review|抱怨|评价",
            ["summarize_segments", "lookup_segment"]),
]
# A marketer's question about the one customer it names or points back at.
_ABOUT_ONE = [
    # "告诉我顾客 c000029 的情况" got a sentence of the model's own (the walk of session 32)
    _intent(r"spend|spent|profile|tell me about|消费|情况|详情|资料|画像|概况",
            rf"{_OFFER}|{_JOURNEY}|{_SEGMENT}|churn|流失", ["get_customer_profile"]),
]
# A customer asking what the shop sells. Not about their own things ("my headphones", "我买的耳机"): _MINE.
_SHOPPING = [
    _intent(r"\bdo you (?:have|sell|carry|stock)\b|\blooking for\b|\b(?:recommend|suggest)\b"
            r"|\bany\b[^.?!]{0,40}\b(?:under|below|less than|cheaper than|between|over|above)\b"
            r"|有没有|有卖|推荐|想买", None,
            ["search_products", "get_product_details", "search_reviews", "review_insights", "recommend_products"]),
]
# A customer's question about one product they pointed at ("the first one", "it").
_ABOUT_A_PRODUCT = [
    _intent(r"review|rating|\bsay\b|think of|评价|评论|口碑|好评|差评", None, ["search_reviews", "review_insights"]),
    _intent(r"\bstock\b|\bavailab|\bprice|\bcost|how much|colou?r|\bsizes?\b|option|variant|come in|spec"
            r"|有货|库存|现货|价格|多少钱|颜色|尺寸|配置|规格|版本", None, ["get_product_details"]),
]
_SEARCH_FILTERS = ("min_price", "max_price", "min_rating", "in_stock", "k")
_MINE = re.compile(r"\b(?:my|mine|i (?:ordered|bought|purchased|got))\b|我的|我买的|我订的|我下的", re.I)


def _asks_for(message: str, table: list[Intent]) -> list[str]:
    """The tools of the first row of `table` whose words `message` holds and whose exceptions it does not."""
    for words, unless, tools in table:
        if words.search(message) and not (unless and unless.search(message)):
            return tools
    return []


# Words that point back at one thing: an order or a product the latest answer was about.
_THING_BACK = re.compile(r"\b(?:it|its|this one|that one|this order|that order|this product|that product)\b"
                         r"|它|里面|这个订单|该订单|这笔订单|这款|这个商品|该商品|这件", re.I)


_OTHER_ORDER = re.compile(r"\bother order\b|另一个订单|另一笔订单|另一单|另外那个订单|另外一个订单", re.I)


def _other_order(session: Conversation, current: str) -> dict[str, list[str]]:
    """"My other order" after two orders were shown is the one the latest result was not about."""
    if not session.all_results or not _OTHER_ORDER.search(current):
        return {}
    latest = set(_ids_about(session.all_results[-1][1], "order"))
    others = list(dict.fromkeys(o for _, result in session.all_results for o in _ids_about(result, "order")
                                if o not in latest))
    return {"order_id": others} if latest and len(others) == 1 else {}


_IN_IT = re.compile(r"\b(?:in|inside) (?:it|that order|this order)\b|里面|里头", re.I)


def _one_thing_back(session: Conversation, current: str) -> dict[str, list[str]]:
    """When `current` points back and the latest result was about one order (or one product): the call must take
    that order or one of its products (that product); else nothing. A list of orders or of products is no one thing.
    """
    if not session.all_results or not _THING_BACK.search(current):
        return {}
    tool, result = session.all_results[-1]
    kind = "order" if tool in _ORDER_TOOLS else "product" if tool == "get_product_details" else None
    if kind is None:
        return {}
    about = _ids_about(result, kind)
    if len(about) != 1:
        return {}
    if kind == "order" and _IN_IT.search(current):  # what is in it: the order's own items
        return {MUST_TAKE: ["order_id"], "order_id": about}
    if kind == "order":  # "it" may be one of its products too ("Which other options does it come in?")
        products = _ids_about(result, "product")
        return {MUST_TAKE: ["order_id", "product_id"], "order_id": about,
                **({"product_id": products} if products else {})}
    return {MUST_TAKE: ["product_id", "product"], "product_id": about, "product": about}


# "The first one", "the second option", "the last one", "第一个", "第二款", "最后一个": a place in the latest list.
_NTH_WORD = r"first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th|last"
_NTH_NOUN = r"(?:one|product|item|option|pick|result)s?"
_NTH = re.compile(rf"\bthe\s+(?P<en>{_NTH_WORD})(?:\s+{_NTH_NOUN})?\b(?!\s+(?:order|purchase|time)s?\b)"
                  rf"|\b(?P<en2>{_NTH_WORD})\s+{_NTH_NOUN}\b"
                  r"|第(?P<zh>[一二三四五12345])(?:个|款|件|种|项)|(?P<zh_last>最后)(?:一)?(?:个|款|件|种|项)", re.I)
_NTH_PLACE = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
              "fifth": 5, "5th": 5, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
# Tools whose results list products of the catalog, and those that answer about one product.
_PRODUCT_LISTS = frozenset({"search_products", "recommend_products"})
_ABOUT_ONE_PRODUCT = frozenset({"get_product_details", "review_insights", "search_reviews"})


def _nth_product_back(session: Conversation, current: str) -> dict[str, list[str]]:
    """When the latest list was of products and `current` points at one by its place ("What do reviewers say about
    the first one?"): the call must take that product (the walk of session 25 got the whole category's reviews).
    Answers about one product since the list keep it the latest ("Is the second one in stock?" after the first
    one's reviews); any other result ends it.
    """
    m = _NTH.search(current)
    if m is None:
        return {}
    listing = None
    for tool, result in reversed(session.all_results):
        if tool in _PRODUCT_LISTS:
            listing = result
            break
        if tool not in _ABOUT_ONE_PRODUCT:
            return {}
    if listing is None:
        return {}
    listed = _ids_about(listing, "product")
    word = (m.group("en") or m.group("en2") or m.group("zh") or "").lower()
    place = len(listed) if word == "last" or m.group("zh_last") else _NTH_PLACE[word]
    if not 1 <= place <= len(listed):
        return {}
    return {MUST_TAKE: ["product_id", "product"], "product_id": [listed[place - 1]], "product": [listed[place - 1]]}


# Tools whose results show a customer's orders (and the items in them), not what the shop offers.
_ORDER_TOOLS = frozenset({"list_my_orders", "get_order_details", "cancel_pending_order", "modify_pending_order_address",
                          "modify_pending_order_items", "return_delivered_order_items",
                          "exchange_delivered_order_items"})
# The policy's cancellation reasons, as customers give them.
_REASONS = {
    "no longer needed": re.compile(
        r"\b(?:no longer|don'?t|do not|doesn'?t|does not|won'?t|not) (?:need|want)|\b(?:need|want) (?:it|this|them|"
        r"that) (?:any ?more|no more)|changed? (?:my|our|his|her) mind|不再需要|不需要|不要了|不想要|用不上|用不到|"
        r"不用了|改主意", re.I),
    "ordered by mistake": re.compile(
        r"\bmistake|\baccident|\bordered (?:the )?wrong|\bwrong (?:order|item|one|size|thing|product)"
        r"|didn'?t mean to (?:order|buy)|下错|买错|订错|拍错|点错|误下|误购|不小心", re.I),
}


# The words that ask for each write tool's change, English and Chinese.
_CHANGE = (r"\bchang|\bswap|\bswitch|\breplac|\binstead\b|\bdifferent\b|\bother (?:one|option|colou?r|size|version)"
           r"|换|改")
_WRITE_WORDS = {
    "cancel_pending_order": re.compile(
        r"cancel|cancle|\b(?:don'?t|do not|no longer) (?:want|need)\b|\b(?:can'?t|cannot|no longer) (?:pay|afford)\b"
        r"|取消|不要了|不想要|不需要|不再需要", re.I),
    "return_delivered_order_items": re.compile(
        r"\breturn|\bsend (?:it |them |this |that |these |those )?back|\brefund|\bmoney back|退", re.I),
    "exchange_delivered_order_items": re.compile(r"\bexchang|" + _CHANGE, re.I),
    "modify_pending_order_items": re.compile(r"\bexchang|\bmodif|\bupdat|\bedit\b|" + _CHANGE, re.I),
    "modify_pending_order_address": re.compile(
        r"\baddress|\b(?:ship|deliver|send)\b[^.?!]{0,30}?\bto\b|\bmov(?:ed|ing)\b|地址|寄到|送到|收货", re.I),
}
_WORDS = re.compile(r"[a-z]+")
# "cacnelling", "acnceling", "cancfel" are near these; "calling", "cancer" and "channel" are not (below 0.85)
_CANCEL_FORMS = ("cancel", "canceling", "cancelling")


# The price difference of an exchange, paid or refunded: part of the exchange, not a return ("差价用 PayPal 支付或退回",
# "refund the difference to my card").
_DIFFERENCE = re.compile(r"\b(?:refund(?:ed)?|pay|paid|return(?:ed)?|send|give)\b[^.?!,;]{0,20}?\b(?:price )?difference"
                         r"|\b(?:price )?difference\b[^.?!,;]{0,20}?\b(?:refund(?:ed)?|back|returned)\b"
                         r"|差价[^。，,；;？?！!]*", re.I)


# A question where an order goes or went ("我最近一个订单寄到哪个地址？", "What address is it going to?") asks for no
# address change unless it also says change (the walk of session 30 asked which order's address should change).
_ADDRESS_QUESTION = re.compile(
    r"\b(?:what|which)(?:'s| is| was)?\s+(?:the\s+)?(?:shipping\s+|delivery\s+)?address\b"
    r"|\bwhere\b[^.?!]{0,40}\b(?:ship|sent|send|deliver|go)"
    r"|哪个地址|什么地址|地址是(?:什么|哪)|寄到哪|送到哪|寄往哪|发到哪", re.I)
_ADDRESS_CHANGE = re.compile(r"\b(?:change|update|correct|wrong|new|moved?|moving|edit|fix)\b|改|换|更新|更正|错", re.I)


def _asks_address_change(message: str) -> bool:
    return bool(_WRITE_WORDS["modify_pending_order_address"].search(message)) and not (
        _ADDRESS_QUESTION.search(message) and not _ADDRESS_CHANGE.search(message))


def _asked_writes(messages: list[str]) -> set[str]:
    """The write tools whose change one of `messages` asks for; "cancel" also as people mistype it ("cacnelling").
    What a message says of an exchange's price difference asks for no return, nor a question where an order goes
    for an address change.
    """
    asked = {tool for tool, words in _WRITE_WORDS.items()
             if any(_asks_address_change(m) if tool == "modify_pending_order_address"
                    else words.search(_DIFFERENCE.sub(" ", m) if tool == "return_delivered_order_items" else m)
                    for m in messages)}
    words = {w for m in messages for w in _WORDS.findall(m.lower()) if 5 <= len(w) <= 12}
    if any(SequenceMatcher(None, w, typo_of).ratio() >= 0.85 for w in words for typo_of in _CANCEL_FORMS):
        asked.add("cancel_pending_order")
    return asked


def _named_reasons(message: str) -> list[str]:
    """The cancellation reasons `message` gives; empty when it gives none."""
    return [reason for reason, words in _REASONS.items() if words.search(message)]


# A postal code as people type one: US (12345, 12345-6789), Chinese (6 digits), 4-digit codes, Canadian and British.
_POSTAL = re.compile(r"(?<![A-Za-z0-9_#＃-])"
                     r"(\d{5}-\d{4}|\d{4,6}|[A-Z]\d[A-Z] ?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})"
                     r"(?![A-Za-z0-9_-])", re.I)
_ADDRESS_PART = re.compile(r"[,，;；:：\n]+")
_EDGE = ".?!。？！\"'()（）「」 "
MAX_ADDRESS_WORDS = 5  # the most words one address field takes ("1200 North Lake Shore Drive")
MAX_ADDRESS_VALUES = 600


def _address_enums(current: str, earlier: list[str]) -> dict[str, list[str]]:
    """An address a call writes is one the customer typed: each field is a run of at most five words of one
    comma-separated part of their messages (this message's first), the postal code a code they typed, and address2
    may be empty. No code typed, no address change: the model cannot fill one from a card or order number. Text
    with Chinese characters (an address written without spaces) leaves the fields other than the code free.
    """
    messages = [current, *reversed(earlier)]
    zips = list(dict.fromkeys(m.group(1) for text in messages for m in _POSTAL.finditer(text)))
    if any(has_cjk(text) for text in messages):
        return {"zip": zips}
    spans: dict[str, None] = {}
    for text in messages:
        for part in _ADDRESS_PART.split(text):
            words = part.split()
            for n in range(1, MAX_ADDRESS_WORDS + 1):
                for i in range(len(words) - n + 1):
                    span = " ".join(words[i:i + n]).strip(_EDGE)
                    if span and len(spans) < MAX_ADDRESS_VALUES:
                        spans[span] = None
    values = list(spans)
    return {"zip": zips, "address1": values, "address2": ["", *values], "city": values, "state": values,
            "country": values}


_KIND_WORDS = {
    "paypal": re.compile(r"pay\s?pal|贝宝", re.I),
    "gift_card": re.compile(r"gift\s?card|礼品卡|购物卡", re.I),
    "credit_card": re.compile(r"credit\s?card|debit\s?card|信用卡|银行卡", re.I),
}
_FOUR_DIGITS = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def _named_methods(methods: list[tuple], message: str) -> list[str]:
    """The customer's payment methods (id, kind, brand, last four) this message names: by id, else by the card's
    last four digits ("the card ending 4920", "尾号 4920"), else by brand ("my Visa"), else by kind ("my PayPal",
    "gift card", "信用卡"). A customer sees methods by these names only, never by id.
    """
    by_id = [m[0] for m in methods if re.search(rf"(?<![\w]){re.escape(m[0])}(?![\w])", message)]
    if by_id:
        return by_id
    digits = set(_FOUR_DIGITS.findall(message))
    by_card = [m[0] for m in methods if m[3] and m[3] in digits]
    if by_card:
        return by_card
    by_brand = [m[0] for m in methods
                if m[2] and re.search(rf"(?<![A-Za-z]){re.escape(m[2])}(?![A-Za-z])", message, re.I)]
    if by_brand:
        return by_brand
    return [m[0] for m in methods if m[1] in _KIND_WORDS and _KIND_WORDS[m[1]].search(message)]


def _latest_described(session: Conversation, current: str) -> list[str]:
    """The customer's most recent order (of the status named with it) when `current` describes their order so ("my
    latest delivered order", "我最近一个订单": agent.focus "latest"), in the order their list shows; empty when it
    does not, or when no order of theirs has that status. Read afresh: a change earlier in the conversation may have
    moved an order out of that status.
    """
    from agent.focus import asked_parts
    from store.models import Order
    from tools.orders import OrderList

    parts = asked_parts(current)
    if "latest" not in parts:
        return []
    query = select(Order.id).where(Order.customer_id == session.customer_id)
    if statuses := parts & OrderList.STATUSES:
        query = query.where(Order.status.in_(sorted(statuses)))
    with session.ctx.store.read() as s:
        found = s.scalar(query.order_by(Order.created_at.desc(), Order.id).limit(1))
    return [found] if found else []


def _orders_holding_named(session: Conversation, current: str, own: list[str]) -> list[str]:
    """The customer's orders holding a product of the brand and kind `current` names ("my Sony headphones", "索尼耳机"
    by its kind): of a brand (the catalog's, index.entities) and of a category (_named_categories), each where named.
    Empty when it names neither, or when no order of theirs holds such a product (then every order stays possible).
    """
    from store.models import OrderItem, Product

    cache = session.ctx.cache.setdefault("enums", {})
    if "order_products" not in cache:
        with session.ctx.store.read() as s:
            cache["order_products"] = s.execute(
                select(OrderItem.order_id, Product.brand, Product.category)
                .join(Product, Product.id == OrderItem.product_id)
                .where(OrderItem.order_id.in_(own))).all() if own else []
    rows = cache["order_products"]
    brands = set(named_brands(current, {b for _, b, _ in rows if b}))
    categories = set(_named_categories(sorted({c for _, _, c in rows if c}), current))
    if not (brands or categories):
        return []
    return [o for o in own if any(order == o and (not brands or b in brands) and (not categories or c in categories)
                                  for order, b, c in rows)]


def _categories(session: Conversation) -> list[str]:
    """The shop's catalog categories (read once per session)."""
    from store.models import Product

    cache = session.ctx.cache.setdefault("enums", {})
    if "categories" not in cache:
        with session.ctx.store.read() as s:
            cache["categories"] = sorted({c for c in s.scalars(select(Product.category)) if c})
    return cache["categories"]


_WORD = re.compile(r"[a-z0-9]+")
_NOT_A_NAME = {"and", "or", "the", "for", "with"}


def _stem(word: str) -> str:
    return word[:-1] if len(word) >= 3 and word.endswith("s") else word


# Chinese words for kinds of product, as English phrases of a catalog's category names: a category is named when
# it has every word of one phrase ("耳机" names "Headphones & Earbuds" as "headphones" does; "游戏本" only the gaming
# laptops). Longer words are matched first, so "笔记本电脑" is not also read as "电脑".
_ZH_CATEGORY_WORDS = {
    "蓝牙耳机": ["headphones", "earbuds"], "耳机": ["headphones", "earbuds"], "耳麦": ["headphones"],
    "电视机": ["tvs", "televisions"], "电视": ["tvs", "televisions"],
    "游戏本": ["gaming laptops"], "游戏笔记本": ["gaming laptops"], "笔记本电脑": ["laptops", "notebooks"],
    "笔记本": ["laptops", "notebooks"], "台式电脑": ["desktops"], "台式机": ["desktops"], "电脑": ["computers"],
    "显示器": ["monitors"], "回音壁": ["soundbars"], "家庭影院": ["home theater"], "音箱": ["speakers"],
    "音响": ["speakers"], "智能音箱": ["speakers"], "智能手表": ["smart watches"], "手表": ["watches"],
    "平板电脑": ["tablets", "ipad"], "平板": ["tablets", "ipad"], "相机": ["cameras"], "摄像机": ["camcorders"],
    "安防摄像头": ["security cameras"], "监控摄像头": ["security cameras"], "硬盘": ["hard drives", "ssd"],
    "固态硬盘": ["ssd"], "乐器": ["musical instruments"], "手机": ["phones"], "对讲机": ["radios"],
    "投影仪": ["projectors"], "路由器": ["routers", "modems"], "智能家居": ["smart home"],
    "流媒体播放器": ["streaming"], "游戏机": ["consoles"], "电子游戏": ["video games"], "电池": ["batteries"],
}
_ZH_CATEGORY_RE = re.compile("|".join(sorted(map(re.escape, _ZH_CATEGORY_WORDS), key=len, reverse=True)))


def _named_categories(categories: list[str], message: str) -> list[str]:
    """The catalog categories `message` names by one of their words ("headphones" names "Headphones & Earbuds",
    "laptops" both laptop categories), singular or plural, or by a Chinese word for them ("耳机"). Empty when it
    names none (a product, a word the lexicon lacks): then every category stays possible.
    """
    said = {_stem(w) for w in _WORD.findall(message.lower())}
    phrases = [{_stem(w) for w in _WORD.findall(p)}
               for zh in _ZH_CATEGORY_RE.findall(message) for p in _ZH_CATEGORY_WORDS[zh]]
    named = []
    for c in categories:
        words = {_stem(w) for w in _WORD.findall(c.lower()) if w not in _NOT_A_NAME}
        if words & said or any(p <= words for p in phrases):
            named.append(c)
    return named


def _digits(order_id: str) -> str:
    """The digits of an order id ("#W2611340" -> "2611340")."""
    return order_id.lstrip("#").lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _typed_orders(text: str, own: list[str]) -> list[str]:
    """Order ids the person typed, in the store's form where they name one of their own orders ("W2611340",
    "#w2611340" and "2611340" are #W2611340), else as typed with a leading '#'.
    """
    by_core = {o.lstrip("#").upper(): o for o in own}
    by_digits: dict[str, list[str]] = {}
    for o in own:
        by_digits.setdefault(_digits(o), []).append(o)
    found: list[str] = []
    for m in _TYPED_ORDER.finditer(text):
        core = (m.group(1) or m.group(2)).upper()
        match = by_core.get(core) or (by_digits.get(core, [None])[0] if core.isdigit() else None)
        found.append(match or "#" + core)
    for m in _TYPED_DIGITS.finditer(text):
        mine = by_digits.get(m.group(1), [])
        if len(mine) == 1:
            found.append(mine[0])
    return list(dict.fromkeys(found))


def _marketer(session: Conversation, typed: str, seen: dict[str, list[str]], current: str,
              earlier: list[str]) -> dict[str, list[str]]:
    from tools.analytics.rfm import SEGMENTS

    customers = list(dict.fromkeys([*_TYPED_CUSTOMER.findall(typed), *seen.get("customer_id", [])]))
    # the customers this message names are the ones it asks about ("Tell me about c000011" after a churn table must
    # not become the table's first row)
    named = list(dict.fromkeys(_TYPED_CUSTOMER.findall(current)))
    customers = named or customers
    # A customer of the shop that this message names, or the one customer the latest answer was about when the
    # message points back at them ("Where in the journey did they drop off?" after c000050's profile), is the one
    # the call is about: a tool that takes no customer (the shop's funnel, the churn table) cannot answer it.
    known = _known_customers(session, named)
    about = known or ([] if named else _one_customer_back(session, current))
    # a message that names a customer of the shop asks about them: the turn looks them up, it does not talk ("告诉我
    # 顾客 c000029 的情况" got "抱歉,我只能回答与本店相关的问题。" in the walk of session 32)
    rules: dict[str, list[str]] = {CALL_FIRST: [bool(known)]}
    if about:
        customers = about
        rules[MUST_TAKE] = ["customer", "customers"]
    elif _named_segments(SEGMENTS, current):
        # a segment this message names, and no customer: the call is about the segment, not a customer shown
        # earlier ("At risk 分群里最有价值的客户是谁？" after c000029's profile looked up c000029: the walk of
        # session 32), and a tool that takes no segment cannot answer it ("the most valuable customers in the At
        # risk segment" got the overview of every segment)
        customers = []
        rules[MUST_TAKE] = ["segment"]
    if same := _same_question(session, current):
        rules[ONLY_TOOLS] = [same]
    elif asks := _asks_for(current, _ABOUT_ONE if about else _ABOUT_MANY):
        rules[ONLY_TOOLS] = asks
    # A filter nobody named is no filter: a segment, value tier, category or date is one this message names, else,
    # in a follow-up that points back, the one the latest earlier message named ("How likely are they to churn?"
    # after "the most valuable Champions"), else none, and the call covers every customer or review ("Which 10
    # customers will churn?" is not the high tier's, not even right after a question about the high tier; "What
    # does c000040's journey look like?" is no camera funnel, and no funnel starts on a date a profile showed).
    catalog = _categories(session)
    return {
        **rules,
        "segment": _latest_named(current, earlier, lambda m: _named_segments(SEGMENTS, m)),
        "tier": _latest_named(current, earlier, _named_tiers),
        "category": _latest_named(current, earlier, lambda m: _named_categories(catalog, m)),
        "customer": customers,
        "customers": customers,
        # how many rows, and a churn horizon, are ones the person wrote: "哪些客户可能流失？" is not the top 2 (the
        # walk of session 25), "Which 10 customers ..." is the top 10
        **dict.fromkeys(("top_n", "limit"), _latest_named(current, earlier, _named_counts)),
        "horizon_days": _latest_named(current, earlier, _named_days),
        "min_value": _latest_named(current, earlier, _named_amounts),
        # a date is one the person wrote (as of, a funnel's first or last day), never a date a result showed
        **dict.fromkeys(("as_of", "start", "end"), _latest_named(current, earlier, _named_dates)),
    }


def _known_customers(session: Conversation, named: list[str]) -> list[str]:
    """The values of `named` that are a customer of the shop, by id or email (not a word like "top100")."""
    from store.models import Customer

    if not named:
        return []
    with session.ctx.store.read() as s:
        found = set(s.scalars(select(Customer.id).where(Customer.id.in_(named))))
        found |= set(s.scalars(select(Customer.email).where(Customer.email.in_(named))))
    return [n for n in named if n in found]


# Words that point back at one person: "they" may be one customer too ("Where did they drop off?" after a profile).
_PERSON_BACK = re.compile(r"\b(?:they|them|their|he|she|him|his|her|this (?:customer|person|buyer|shopper)|"
                          r"that (?:customer|person|buyer|shopper)|the same customer)\b"
                          r"|(?<!其)他|她|该客户|该顾客|这位|此客户|此顾客|这个客户|这个顾客|那位", re.I)


def _one_customer_back(session: Conversation, current: str) -> list[str]:
    """The one customer the latest result was about, when `current` points back at a person; else nothing (a table
    of many customers is no one customer: "how likely are they to churn?" after a segment's members asks about all).
    """
    if not session.all_results or not _PERSON_BACK.search(current):
        return []
    customers = _ids_about(session.all_results[-1][1], "customer")
    return customers if len(customers) == 1 else []


def _ids_about(result, kind: str) -> list[str]:
    """The ids of the `kind` entities (order, product, customer) whose own id `result` states, in order."""
    from agent.grounding import facts_of

    return list(dict.fromkeys(f.about.partition(":")[2] for f in facts_of(result)
                              if f.kind == f"{kind}_id" and f.about.startswith(f"{kind}:")))


# "What about TVs?", "And the Champions?", "电视呢？": the latest question again, with what this message names in
# place of what it named.
_ELLIPSIS = re.compile(r"^\s*(?:(?:and\s+)?(?:what|how)\s+about|and(?:\s+(?:for|in))?|same\s+for|now\s+(?:for|in))\s+"
                       r"(?P<en>[^?？.!。]{1,60}?)\s*[?？.!。]*\s*$|^\s*(?:那|那么)?(?P<zh>[^，,。？?]{1,16}?)呢\s*[?？]?\s*$",
                       re.I)


def _same_question(session: Conversation, current: str) -> str | None:
    """The latest call's tool when `current` only asks it again for a segment, value tier, category or customer it
    names ("What about TVs?", not "What about the reviews of TVs?") and that tool takes such a filter; else None.
    """
    m = _ELLIPSIS.match(current)
    if not m or not session.all_results:
        return None
    kinds = _only_filters(session, m.group("en") or m.group("zh") or "")
    tool = session.all_results[-1][0]
    takes = _tool_arguments(session.role).get(tool, set())
    return tool if any(kind in takes or f"{kind}s" in takes for kind in kinds) else None


# Words that name no filter but may come with one ("the Champions segment", "高价值的客户").
_FILLER = re.compile(r"\b(?:the|for|in|of|ones?|customers?|buyers?|segments?|groups?|tiers?|category|categories|"
                     r"instead|then|too|also|please)\b|的|客户|顾客|分群|类别|类|那么|那|还有|也|呢|这个|那个|方面|里",
                     re.I)


def _only_filters(session: Conversation, text: str) -> set[str]:
    """The kinds of filter (segment, tier, category, customer) `text` names, when it says nothing else."""
    from tools.analytics.rfm import SEGMENTS

    kinds: set[str] = set()
    rest = text
    for kind, spans in (
            ("segment", [*SEGMENTS, *_ZH_SEGMENTS]), ("customer", _TYPED_CUSTOMER.findall(text)),
            ("tier", [m.group(0) for words in _TIERS.values() for m in words.finditer(text)]),
            ("category", [*_ZH_CATEGORY_RE.findall(text), *(
                w for c in _named_categories(_categories(session), text) for w in _WORD.findall(text.lower())
                if _stem(w) in {_stem(x) for x in _WORD.findall(c.lower())})])):
        for span in sorted(set(spans), key=len, reverse=True):
            pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(span)}(?![A-Za-z0-9])", re.I)
            if pattern.search(rest):
                rest = pattern.sub(" ", rest)
                kinds.add(kind)
    left = _FILLER.sub(" ", rest).strip(_EDGE + "-")
    return kinds if kinds and not left else set()


@functools.cache
def _tool_arguments(role: str) -> dict[str, set[str]]:
    """Each of `role`'s tools' argument names (read once)."""
    import inspect

    from tools.registry import tool_functions

    return {fn.__name__: set(inspect.signature(fn).parameters) - {"ctx"} for fn in tool_functions(role)}


# A message that points back at what was said before ("how likely are they to churn?", "他们", "电视呢？") asks about
# the same customers or reviews; one that does not is a new question.
_REFERS_BACK = re.compile(r"\b(?:they|them|their|theirs|those|these|that segment|that group|same|among)\b"
                          r"|他们|她们|它们|这些|那些|其中|这个分群|这群|呢", re.I)


def _latest_named(current: str, earlier: list[str], named: Callable[[str], list[str]]) -> list[str]:
    """What `current` names; else, when `current` points back, what the latest earlier message that names any named."""
    if found := named(current):
        return found
    if not _REFERS_BACK.search(current):
        return []
    for message in reversed(earlier):
        if found := named(message):
            return found
    return []



# A segment is named by its name as the shop writes it ("Champions", "the At risk segment", "At risk 分群"), or in
# any case when the word "segment" or "分群" follows it ("the loyal segment"): in lower case inside a sentence the
# names are ordinary words ("customers at risk of churning", "new complaints", "lost orders").
_SEGMENT_AFTER = re.compile(r"\s*(?:segments?\b|group\b|分群|群体|客群)", re.I)
# The Chinese names the shop's reports print (tools.analytics.rfm.SEGMENT_ZH), as they are typed: a name's core
# ("潜在忠诚" for 潜在忠诚客户). New, Promising, At risk and Lost are left out: 新客户, 有潜力客户,
# 风险客户 and 已流失客户 are what marketers call such customers in any case, not only the segment (a test
# checks each core against SEGMENT_ZH).
_ZH_SEGMENTS = {"冠军客户": "Champions", "忠诚客户": "Loyal", "潜在忠诚": "Potential loyalists",
                "需要关注": "Need attention", "沉睡客户": "Hibernating", "不能失去": "Can't lose them"}


def _named_segments(segments: Sequence[str], message: str) -> list[str]:
    """The segments `message` names (see above); empty when it names none."""
    message = message.replace("\u2019", "'")
    named = []
    for seg in segments:
        pattern = r"\s+".join(re.escape(w).replace("'", "'?") for w in seg.split())
        for m in re.finditer(rf"(?<![A-Za-z]){pattern}(?![A-Za-z])", message, re.I):
            if m.group(0)[0] == seg[0] or _SEGMENT_AFTER.match(message, m.end()):
                named.append(seg)
                break
    named += [seg for zh, seg in _ZH_SEGMENTS.items() if zh in message and seg in segments]
    return list(dict.fromkeys(named))


# A value tier is named as "high-value", "high value", "high tier", "高价值" (and medium, low).
_TIERS = {
    "high": re.compile(r"\bhigh[\s-]*(?:value|tier|spend)|\b(?:top|high)\s+tier|高价值|高消费|高等级", re.I),
    "medium": re.compile(r"\b(?:medium|mid|middle)[\s-]*(?:value|tier|spend)|中等价值|中价值|中等消费", re.I),
    "low": re.compile(r"\blow[\s-]*(?:value|tier|spend)|低价值|低消费", re.I),
}


def _named_tiers(message: str) -> list[str]:
    """The value tiers `message` names; empty when it names none."""
    return [tier for tier, words in _TIERS.items() if words.search(message)]


# A count the person wrote: "Which 10 customers", "top 5", "前5名", "20 位". Not a day count, an amount, a share, a
# date or a digit of an id (c000011, #S0000278, 2026-06-30): _DAYS, and the look-arounds (ASCII: \w would take
# the Chinese character before "5" in "前5名" for part of a word).
_COUNT = re.compile(r"(?<![A-Za-z0-9_$¥.#/:-])(\d{1,4})(?![A-Za-z0-9_.%/:-])"
                    r"(?!\s*(?:days?\b|天|日|weeks?\b|周|months?\b|个?月|years?\b|年|%|percent|美元|元|dollars?\b|usd\b))",
                    re.I)
_DAYS = re.compile(r"(?<![A-Za-z0-9_$.#/:-])(\d{1,3})\s*(?:days?\b|天)", re.I)


def _named_counts(message: str) -> list[int]:
    """The counts `message` writes, within what the churn ranking lists (see _COUNT)."""
    from tools.analytics.scores import MAX_TOP_N

    return list(dict.fromkeys(n for m in _COUNT.findall(message) if 1 <= (n := int(m)) <= MAX_TOP_N))


def _named_days(message: str) -> list[int]:
    """The day counts `message` writes ("in the next 60 days", "90天内") within the tools' churn horizons."""
    from tools.analytics.snapshot import MAX_HORIZON, MIN_HORIZON

    return list(dict.fromkeys(n for m in _DAYS.findall(message) if MIN_HORIZON <= (n := int(m)) <= MAX_HORIZON))


_AMOUNT = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s*(?:美元|美金|dollars?\b|usd\b)", re.I)


def _named_amounts(message: str) -> list[float]:
    """The amounts of money `message` writes ("over $500", "500美元以上", "1,000 dollars")."""
    return list(dict.fromkeys(float((a or b).replace(",", "")) for a, b in _AMOUNT.findall(message)))


_DATE = re.compile(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)")


def _named_dates(message: str) -> list[str]:
    """The calendar dates `message` writes ("2026-06-30", "2026/6/30", "2026年6月30日"), as YYYY-MM-DD."""
    found = []
    for y, m, d in _DATE.findall(message):
        try:
            found.append(dt.date(int(y), int(m), int(d)).isoformat())
        except ValueError:
            continue  # not a day of the calendar: the tool cannot be given it
    return list(dict.fromkeys(found))
