"""The one failure vocabulary of tools, with two messages per error: one for the model and one for a person.

- ToolInputError: the model passed something wrong; `str(exc)` tells it what to fix.
- PolicyError: the request is understood but the shop's policy forbids it; its sentence is the policy.
- NotFoundError: the thing does not exist *for this user* (also used for other customers' data, so nothing leaks).
Anything else is a bug and raises.

`str(exc)` is the model-facing and log text. `exc.user_message(lang)` is the only text a person ever reads: a plain
sentence with the next step, in English or Chinese. A raising site passes it as `user=`/`user_zh=`; without them
each kind falls back to a generic sentence (never to the model-facing text, which can name parameters).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from tools.results import Lang


class ToolError(Exception):
    """Base of errors a tool reports back to the agent instead of crashing."""

    generic = "I couldn't do that with the details I had. Could you say which order (or product) you mean?"
    generic_zh = "我没能用现有的信息完成这个操作。能告诉我您指的是哪个订单(或哪件商品)吗?"

    def __init__(self, message: str, *, user: str | None = None, user_zh: str | None = None) -> None:
        super().__init__(message)
        self.user = user
        self.user_zh = user_zh

    def user_message(self, lang: Lang = "en") -> str:
        """What a person reads: a plain sentence with the next step, in `lang`."""
        if lang == "zh":
            return self.user_zh or self.generic_zh
        return self.user or self.generic


class ToolInputError(ToolError):
    pass


class PolicyError(ToolError):
    generic = "Our policy doesn't allow that change. I can connect you with a person if you need more help."
    generic_zh = "根据本店政策,无法办理这项更改。如需进一步帮助,我可以为您转接人工客服。"

    def user_message(self, lang: Lang = "en") -> str:
        # A policy sentence is written for the customer, so the English one is the message itself.
        if lang == "en" and not self.user:
            return str(self)
        return super().user_message(lang)


class NotFoundError(ToolError):
    generic = "I couldn't find that. Could you check the order number or the product name?"
    generic_zh = "我没有找到相关内容。能再确认一下订单号或商品名称吗?"


def did_you_mean(value: str, choices: Iterable[str]) -> str | None:
    """The known choice closest to what was written ("In headphones" -> "Headphones & Earbuds"), or None."""
    choices = list(dict.fromkeys(c for c in choices if c))
    if not value or not choices:
        return None
    want = " ".join(value.lower().split())
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(want, list(lowered), n=1, cutoff=0.5)
    if close:
        return lowered[close[0]]
    # A word of the request that names a choice ("headphones" in "complaints about headphones").
    words = [w.strip(".,;:!?'\"()") for w in want.split()]
    for w in sorted((w for w in words if len(w) >= 4), key=len, reverse=True):
        stem = w.rstrip("s")
        hit = next((c for low, c in lowered.items() if stem in low), None)
        if hit:
            return hit
    return None


def unknown_choice(message: str, value: str, choices: Iterable[str], what: str, plural: str,
                   what_zh: str) -> ToolInputError:
    """A ToolInputError for a name that is none of `choices` (a category, a segment), suggesting the closest."""
    choices = list(choices)
    guess = did_you_mean(value, choices)
    shown = " ".join(str(value).split())[:60]
    if guess:
        return ToolInputError(
            message,
            user=f"I couldn't find a {what} called '{shown}'. Did you mean {guess}?",
            user_zh=f"我没有找到名为“{shown}”的{what_zh}。您是指 {guess} 吗?",
        )
    listing = ", ".join(choices[:12])
    some = "Some of the" if len(choices) > 12 else "The"
    return ToolInputError(
        message,
        user=f"I couldn't find a {what} called '{shown}'. {some} {plural} are: {listing}.",
        user_zh=f"我没有找到名为“{shown}”的{what_zh}。可选的{what_zh}有:{listing}。",
    )
