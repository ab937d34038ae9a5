"""Reading a person's typed yes or no to a proposed write. Buttons never come here: they call confirm()/decline()."""

from __future__ import annotations

import re

# A yes is the whole message ("yes", "yes please", "ok, go ahead", "确认"): "OK thanks, that's all" is no yes to a
# refund.
_YES_WORD = (r"(yes|y|yeah|yep|sure|ok|okay|confirm|confirmed|go ahead|please do|do it|proceed|correct|that's right|"
             r"please|please go ahead|yes please|go for it|"
             r"是|是的|确认|确定|好的|好|可以|对|行|没问题|办理吧|请办理|请继续|继续)")
_YES = re.compile(rf"^{_YES_WORD}(?:[\s,，.。!！]+{_YES_WORD})*[\s.。!！]*$", re.I)
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
    return bool(_YES.match(text))


def is_refusal(message: str) -> bool:
    """Is the reply a bare no (no / cancel / 不用了 ...), with no new question in it?"""
    return bool(_PLAIN_NO.match(message.strip().lower()))
