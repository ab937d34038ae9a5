"""PII redaction of transcripts before training: emails, phone numbers, card numbers, street addresses.

A value becomes a typed placeholder numbered per conversation (`<EMAIL_1>`, `<PHONE_2>`, `<CARD_1>`, `<ADDRESS_1>`),
the same value getting the same placeholder in every message and tool-call argument of the conversation, so a
redacted transcript still teaches the model to copy what the customer said into the call.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

from finetune.transcripts import Transcript
from index.text import CJK_IDEOGRAPHS

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# Card numbers: 13-19 digits, optionally in groups separated by spaces or dashes; kept only if Luhn-valid.
CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
# Phones need a phone-like shape (leading +, brackets, or separators), so bare ids (10-digit item ids, 12-digit
# tracking numbers) are left alone; Chinese mobiles are 11 digits starting 13-19.
PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r"|1[3-9]\d[ -]?\d{4}[ -]?\d{4}"
    r")(?![\w])"
)
STREET_TYPES = (
    "Street|St|Avenue|Ave|Road|Rd|Drive|Dr|Lane|Ln|Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|Circle|Cir|"
    "Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Trl"
)
# Street and number only: the suite/apartment stays, so a tool call that carries address1 and address2 separately
# gets the same placeholder for address1 as the customer's sentence.
ADDRESS = re.compile(r"\b\d{1,6}\s+(?:[A-Z][A-Za-z'.-]*\s+){1,4}(?:" + STREET_TYPES + r")\b\.?")
# Chinese street addresses: ...路/街/大道 + number 号
ADDRESS_ZH = re.compile(f"[{CJK_IDEOGRAPHS}]" + r"{2,12}(?:路|街|大道|巷)\d{1,5}号")

KINDS = ("EMAIL", "CARD", "PHONE", "ADDRESS")


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn check of payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class Redactor:
    """Redacts one conversation; remembers which value got which placeholder."""

    def __init__(self) -> None:
        self.placeholders: dict[tuple[str, str], str] = {}
        self.counts: Counter[str] = Counter()

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, value.strip())
        if key not in self.placeholders:
            n = sum(1 for k in self.placeholders if k[0] == kind) + 1
            self.placeholders[key] = f"<{kind}_{n}>"
        self.counts[kind] += 1
        return self.placeholders[key]

    def text(self, s: str) -> str:
        if not s:
            return s
        s = EMAIL.sub(lambda m: self._placeholder("EMAIL", m.group()), s)

        def card(m: re.Match) -> str:
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                return self._placeholder("CARD", digits)
            return m.group()

        s = CARD.sub(card, s)
        s = PHONE.sub(lambda m: self._placeholder("PHONE", re.sub(r"\D", "", m.group())), s)
        s = ADDRESS.sub(lambda m: self._placeholder("ADDRESS", m.group()), s)
        s = ADDRESS_ZH.sub(lambda m: self._placeholder("ADDRESS", m.group()), s)
        return s

    def value(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        return v


def redact_transcript(t: Transcript) -> tuple[Transcript, Counter[str]]:
    """A redacted copy of `t` (message texts and tool-call arguments) and the counts of what was replaced."""
    r = Redactor()
    messages = copy.deepcopy(t.messages)
    for m in messages:
        m["content"] = r.text(m.get("content") or "")
        for tc in m.get("tool_calls") or []:
            tc["function"]["arguments"] = r.value(tc["function"]["arguments"])
    return Transcript(messages=messages, tools=t.tools, meta=dict(t.meta)), r.counts


def redact_all(transcripts: list[Transcript]) -> tuple[list[Transcript], dict[str, int]]:
    """Every transcript redacted, and how many of each kind of personal data were replaced."""
    total: Counter[str] = Counter()
    out = []
    for t in transcripts:
        red, counts = redact_transcript(t)
        total.update(counts)
        out.append(red)
    return out, {k: total.get(k, 0) for k in KINDS}
