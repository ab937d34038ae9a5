"""Reading a person's typed yes or no to a proposed write. Buttons never come here: they call confirm()/decline()."""

from __future__ import annotations

import re

_YES = re.compile(
    r"^(yes|y|yeah|yep|sure|ok|okay|confirm|confirmed|go ahead|please do|do it|proceed|correct|that's right|"
    r"是|是的|确认|确定|好的|好|可以|对|行|没问题)\b",
    re.I,
)
_NO = re.compile(r"\b(no|not|don't|dont|cancel that|stop|wait)\b|不|别|取消吧", re.I)
_PLAIN_NO = re.compile(
    r"^(no|nope|nah|no thanks|no thank you|cancel|cancel that|don't|do not|never ?mind|stop|"
    r"不|不要|不用|不用了|算了|取消|别)[\s.!。!]*$",
    re.I,
)


def is_confirmation(message: str) -> bool:
    """Does the customer's reply confirm the pending action (yes / confirm / ok / 是 / 确认 / 好的 ...)?"""
    text = message.strip().lower()
    if not text or _NO.search(text):
        return False
    return bool(_YES.match(text)) or text in {"是", "确认", "好的", "好", "可以", "对", "行"}


def is_refusal(message: str) -> bool:
    """Is the reply a bare no (no / cancel / 不用了 ...), with no new question in it?"""
    return bool(_PLAIN_NO.match(message.strip().lower()))
