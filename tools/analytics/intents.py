"""What customers' own words ask for and say they will do: the intent of a support message (cancel, return, ... ,
question) and the purchase intent of a review or message (buy again, abandon, wait), by rule tables in English and
Chinese. The journey annotates its steps with them; the churn features (tools.analytics.features.WORDS_FEATURES)
count them.
"""

from __future__ import annotations

import re

# A rule table, not a model: the first intent (in this order) one of whose patterns is found in the lower-cased text
# wins. Every pattern is a regular expression: English ones with word boundaries, Chinese ones without. Extend it
# here, in one place; tests/analytics/test_journey.py holds the phrasings it must keep labelling, and
# bench/support_intent_accuracy.py measures it on Bitext's labelled support requests (English).
#
# An order's cancellation is not an account's, a newsletter's or a subscription's, nor a question about its fee.
_NOT_AN_ORDER = r"^(?!.*\b(?:account|newsletter|subscri\w*|membership|profile)\b)"
# A question about the refund policy ("in which cases can I get a refund?") is no request for one.
_POLICY = (r"^(?!.*\b(?:polic(?:y|ies)|guarantee|in (?:which|what) (?:cases|situations)|under (?:which|what) "
           r"circumstances|how long (?:do |does |will )?(?:refunds?|reimbursements?)))")
SUPPORT_INTENT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cancel", (_NOT_AN_ORDER + r"(?!.*\b(?:fees?|penalt\w*|charges?)\b).*\bcancel(?:l?ing|lation|s)?\b",
                r"\b(?:don'?t|do not|no longer) (?:want|need) (?:the |my |this |that )?(?:order|purchase)\b",
                "取消订单", "我要取消", "想取消", "帮我取消", "能取消")),
    ("return", (r"\breturn", r"\bsend (it |them )?back\b", "退货", "退回")),
    ("exchange", (r"\bexchange", r"\bswap\b", r"\breplacement\b", "换货", "换一个", "更换")),
    ("refund", (_POLICY + r".*\b(?:refund|reimburs|restitution|rebat|compensation)", _POLICY + r".*\bmoney back\b",
                "退款", "退钱")),
    ("change order", (r"\b(?:chang|modif|updat|edit|correct|fix)\w*\b.{0,30}\b(?:shipping |delivery )?address\b",
                      r"\b(?:wrong|incorrect) (?:shipping |delivery )?address\b",
                      r"\b(?:add|remov|delet|swap|switch|chang|modif|updat|edit)\w*\b.{0,40}\b(?:order|purchase)\b",
                      r"\bchange (the |my )?(order|item|size|colou?r)\b", "改地址", "修改", "更改")),
    ("order status", (r"\bwhere is\b", r"\bwhere'?s\b", r"\bstatus\b", r"\btrack", r"\bshipped\b", r"\beta\b",
                      r"\blocate\b.{0,30}\b(?:order|purchase|parcel|package|shipment)",
                      r"\bhow (?:long|soon)\b.{0,50}\b(?:arrive|expect|take|deliver|get)",
                      r"\bexpect (?:my|the|our) (?:item|order|parcel|package|delivery|purchase|shipment|article)",
                      r"\bwhen\b.{0,40}\b(?:arrive|come|be delivered|get here|ship)",
                      r"\b(hasn'?t|has not|not yet|never) (arrived|come)\b",
                      r"\bdelivery (date|time)\b", "到哪", "物流", "快递", "发货", "什么时候到", "状态", "还没到",
                      "还没收到")),
    ("complaint", (r"\bbroken\b", r"\bdamaged\b", r"\bdefective\b", r"\bterrible\b", r"\bawful\b", r"\bworst\b",
                   r"\bangry\b", r"\bdisappointed\b", r"\bcomplain", r"\bclaim\b", r"\breclamation",
                   r"\bnot working\b", r"\bdoesn'?t work\b",
                   r"\bunacceptable\b", "坏了", "投诉", "太差", "失望", "质量问题", "破损", "故障", "生气")),
    ("question", (r"\?", "？", r"^(how|what|when|why|can|could|do|does|is|are|which)\b", "吗", "怎么", "如何", "请问")),
)
# What "不会再…" / "不再…" / "还会再…" must go on to for a purchase intent: buying, staying, coming or choosing again
# ("不再卡顿" is no longer lagging, "还会再坏吗" asks whether it will break again, "不再用担心" no longer worrying).
_ZH_AGAIN = ("买", "购买", "入住", "住", "来", "去", "光顾", "选", "用(?!担心|操心|怕)")
# "再来" / "再去" is a return visit only after a word that looks ahead ("下次周末再来无锡"), not "退房后再去泡温泉"
# ("then go for the hot springs") or "再来说说" ("next, to say").
_ZH_COME_BACK = r"(?:下次|以后|还会|有机会|可以|一定|还要|还想)[^，。,.!！？?]{0,6}再[来去]"
REVIEW_INTENT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("abandon", (r"\bnever (buy|order|again)", r"\bwon'?t (buy|order)", r"\bnot (buy|order)(ing)? (again|from)",
                 r"\b(do not|don'?t|wouldn'?t|would not|can'?t|cannot) recommend\b", r"\bwaste of money\b",
                 r"\breturn(ed|ing)? (it|this|them)\b", r"\bavoid\b", r"\bstay away\b", r"\bswitch(ed|ing)? to\b",
                 r"\bsave yourself\b",
                 *(f"{no}{act}" for no in ("不会再", "不再") for act in _ZH_AGAIN),
                 "再也不", "别买", "不要买", "退货", "浪费钱", "不推荐", "不住了")),
    ("wait", (r"\bwait(ing)? (for|until)\b", r"\bnext (version|model|generation)\b",
              r"\bprice (drop|to drop|comes down)\b", r"\bon sale\b", r"\bwhen it'?s cheaper\b", r"\bmaybe later\b",
              "等降价", "等下一代", "等打折", "再等等", "观望")),
    ("buy again", (r"\bbuy (it |this |one |another )?again\b", r"\bbuy another\b", r"\border(ed)? another\b",
                   r"\bwill (buy|order)\b", r"\brepurchase\b", r"\bre-?order\b", r"\brecommend\b",
                   r"\bno-?brainer\b",
                   "回购", "再买", "还会买", "推荐", "再次购买", "再次入住", "还住", _ZH_COME_BACK, "还会选",
                   *(f"还会再{act}" for act in _ZH_AGAIN))),
)
# A review none of whose patterns match takes the intent its stars imply.
REVIEW_INTENT_BY_RATING = {5: "buy again", 4: "buy again", 3: "wait", 2: "abandon", 1: "abandon"}


def _first_rule(text: str, rules: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    low = text.lower()
    for intent, patterns in rules:
        for p in patterns:
            if re.search(p, low):  # every pattern is a regular expression, Chinese ones too
                return intent
    return None


def support_intent(text: str) -> str:
    """What a support message asks for, by the rule table SUPPORT_INTENT_RULES (English and Chinese): cancel, return,
    exchange, refund, change order, order status, complaint, question, or other.
    """
    return _first_rule(text, SUPPORT_INTENT_RULES) or "other"


def stated_purchase_intent(text: str) -> str | None:
    """The purchase intent a text states in words, by REVIEW_INTENT_RULES: buy again, abandon, wait, or None."""
    return _first_rule(text, REVIEW_INTENT_RULES)


def review_intent(text: str, rating: int | None = None) -> str | None:
    """What a review says the customer will do next, by the rule table REVIEW_INTENT_RULES (English and Chinese):
    buy again, abandon or wait; failing a phrase, the stars decide (4-5 buy again, 3 wait, 1-2 abandon).
    """
    return stated_purchase_intent(text) or REVIEW_INTENT_BY_RATING.get(int(rating or 0))
