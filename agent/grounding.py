"""Replies true by construction: what a person reads is rendered by code from tool results; the model's own words
are kept only when they state no fact (a greeting, empathy, "anything else?").

    reply = compose(results, model_text, lang, names)   # renderings of the turn's results, in the person's language
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shopdesk.output import to_jsonable
from store.models import ORDER_STATUSES
from tools.results import Fact, Lang, lang_of

MAX_CHAT_WORDS = 40  # a fact-free sentence is short; anything longer is an answer the model should not write

# Words that state an order's status, in both languages: a sentence using one states a fact.
_STATUS_WORDS = sorted({*ORDER_STATUSES, "canceled", "shipped", "refunded", "待处理", "已处理", "处理中", "已送达",
                        "已签收", "已交付", "已取消", "已发货", "退货", "换货", "已退款"}, key=len, reverse=True)
_STATUS_RE = re.compile("|".join(rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w) for w in _STATUS_WORDS),
                        re.I)
# Words that claim an action on an order or money ("I won't cancel it", "your refund is on its way"): only a tool's
# result may say what was or will be done.
_ACTION_RE = re.compile(
    r"\b(cancel\w*|return\w*|refund\w*|exchang\w*|chang\w*|modif\w*|updat\w*|address\w*|ship\w*|deliver\w*|"
    r"track\w*|transfer\w*|charg\w*|paid|pay(?:ment)?s?)\b|取消|退货|退款|换货|地址|修改|发货|物流|快递|付款|转接",
    re.I,
)
_FACT_CHARS = re.compile(r"[0-9#$¥€£@%]|[０-９]|[一二三四五六七八九十百千万]+(?:元|美元|块|件|个|天|星)")


def states_fact(text: str, names: Iterable[str] = ()) -> str | None:
    """Why `text` states a fact (a number, id, amount, date, status or catalog name), or None if it states none."""
    m = _FACT_CHARS.search(text)
    if m:
        return f"contains {m.group(0)!r}"
    m = _STATUS_RE.search(text)
    if m:
        return f"states a status ({m.group(0)})"
    m = _ACTION_RE.search(text)
    if m:
        return f"speaks of an order or an action ({m.group(0)})"
    lowered = text.lower()
    for name in names:
        if name and len(name) >= 4 and name.lower() in lowered:
            return f"names {name!r}"
    if len(text.split()) > MAX_CHAT_WORDS or len(text) > 4 * MAX_CHAT_WORDS:
        return "too long for a sentence without facts"
    return None


@dataclass
class ErrorResult:
    """A tool's refusal or not-found, as a person reads it (never the model-facing text)."""

    tool: str
    error: Exception

    def render(self, lang: Lang = "en") -> str:
        user_message = getattr(self.error, "user_message", None)
        if callable(user_message):
            return user_message(lang)
        if isinstance(self.error, PermissionError):
            return "这项操作在此对话中不可用。" if lang == "zh" else "That is not available in this chat."
        return GENERIC_FAILURE[lang]

    def facts(self) -> list[Fact]:
        return []


GENERIC_FAILURE: dict[str, str] = {
    "en": "Sorry, I could not do that. Could you say it another way, or ask for a human agent?",
    "zh": "抱歉,我没能处理这个请求。请换个说法,或要求转人工客服。",
}
ASK_FIRST: dict[str, str] = {
    "en": "I can only share details after looking them up. Which order or product do you mean?",
    "zh": "我需要先查询后才能告诉您具体信息。请问是哪个订单或商品?",
}


def render(result: Any, lang: Lang = "en", limit: int | None = None, parts: frozenset[str] = frozenset()) -> str:
    """How a result reads for a person (and for the model, which sees the same text). `parts` (agent.focus) narrow a
    result that has such parts (its PARTS) to those the question asked for.
    """
    method = getattr(result, "render", None)
    if callable(method) and parts & getattr(result, "PARTS", frozenset()):
        text = method(lang, parts=parts)
    elif callable(method):
        try:
            text = method(lang)
        except TypeError:  # a result type that renders in one language only
            text = method()
    elif isinstance(result, str):
        text = result
    else:
        text = _compact(to_jsonable(result))
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def facts_of(result: Any) -> list[Fact]:
    """The facts a tool result lists (none for a result without `facts()`)."""
    method = getattr(result, "facts", None)
    return list(method()) if callable(method) else []


def compose(results: list[Any], model_text: str, lang: Lang, names: Iterable[str] = (),
            parts: frozenset[str] = frozenset()) -> tuple[str, str | None]:
    """The reply of a turn and, when the model's words were dropped, why.

    With results: their renderings (a result the model fetched twice is said once), narrowed to the `parts` the
    question asked for, after the model's words if those state no fact. Without results: the model's words if they
    state no fact, else None as the text (the caller asks the model to look the facts up instead).
    """
    model_words = model_text.strip()
    why = states_fact(model_words, names) if model_words else None
    keep = model_words if model_words and why is None else ""
    if not results:
        return keep, why
    said = [keep] if keep else []
    said += dict.fromkeys(render(r, lang, parts=parts) for r in results)
    return "\n\n".join(said), why


def _compact(data: Any) -> str:
    if isinstance(data, dict):
        return "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False, default=str)}" for k, v in data.items()
                         if v not in (None, [], {}))
    return json.dumps(data, ensure_ascii=False, default=str)


__all__ = ["ASK_FIRST", "ErrorResult", "GENERIC_FAILURE", "compose", "facts_of", "lang_of", "render", "states_fact"]
