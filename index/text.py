"""Text helpers shared by build and search: tokens for BM25, content hashes, and quoting untrusted text."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

CJK_IDEOGRAPHS = "\u4e00-\u9fff"  # the CJK Unified Ideographs block, as a regex character range
_CJK = re.compile(f"[{CJK_IDEOGRAPHS}]")
# Words, model numbers ("qn65q80c", "rtx", "4070") and CJK characters.
_WORD = re.compile(rf"[0-9a-z]+(?:[.'][0-9a-z]+)*|[{CJK_IDEOGRAPHS}]")
STOPWORDS = frozenset(
    "a an and are as at be by for from has have i in is it its me my of on or our so that the this to was were "
    "will with you your want need looking something some any which what who".split()
)


def cjk_count(text: str) -> int:
    """How many CJK ideographs `text` has."""
    return len(_CJK.findall(text))


def has_cjk(text: str) -> bool:
    """Whether `text` has a CJK ideograph: the one test for Chinese text in shopdesk."""
    return _CJK.search(text) is not None


def normalize(text: str) -> str:
    """`text` in NFKC form, lower-cased: how build and search compare text."""
    return unicodedata.normalize("NFKC", text).lower()


def tokenize(text: str) -> list[str]:
    """BM25 tokens: lower-cased words and model numbers, split letter/digit runs too, CJK as unigrams + bigrams."""
    tokens: list[str] = []
    prev_cjk: str | None = None
    prev_end = -1
    for match in _WORD.finditer(normalize(text)):
        tok = match.group(0)
        if has_cjk(tok):  # a CJK match is one ideograph
            tokens.append(tok)
            if prev_cjk is not None and match.start() == prev_end:
                tokens.append(prev_cjk + tok)
            prev_cjk, prev_end = tok, match.end()
            continue
        prev_cjk = None
        tok = tok.replace("'", "")
        if tok in STOPWORDS:
            continue
        tokens.append(tok)
        # "qn65q80c" also matches "q80c"-style partial queries; "65in" matches "65"
        parts = re.findall(r"[a-z]+|[0-9]+(?:\.[0-9]+)?", tok)
        if len(parts) > 1:
            tokens.extend(p for p in parts if len(p) > 1 or p.isdigit())
        if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss") and tok.isalpha():
            tokens.append(tok[:-1])  # cheap plural folding: "headphones" ~ "headphone"
    return tokens


def content_hash(*parts: Any) -> str:
    """A short stable hash of `parts`, to tell whether a record changed since the last build."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


# Things a model might read as instructions or chat-control tokens when they appear inside quoted data.
_CONTROL_TOKENS = re.compile(r"<\|[^|>]{0,40}\|>|</?\s*(tool_call|tool_response|tool|system|assistant|user)\s*>", re.I)
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\s+(all\s+|any\s+|the\s+)?(previous|prior|above|earlier|your|system)\s+"
    r"(instructions?|prompts?|rules|messages?)"
    r"|\b(you are now|new instructions?|system prompt|act as)\b"
    r"|忽略(之前|以上|前面)?的?(所有)?(指令|说明|提示)",
    re.I,
)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def neutralize(text: str, limit: int = 600) -> str:
    """Make untrusted text (reviews, descriptions) safe to show to the agent as quoted data.

    Chat-control tokens and instruction-like phrases are replaced with a visible marker, quotes that could close
    our delimiter are swapped, and the text is cut to `limit` characters.
    """
    text = _CONTROL_CHARS.sub(" ", text)
    text = _CONTROL_TOKENS.sub("[removed]", text)
    text = _INJECTION.sub("[removed]", text)
    text = text.replace('"""', "''").replace("```", "'''")
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def quote_block(text: str) -> str:
    """Untrusted text in a delimiter the renderers and the agent treat as data only."""
    return f'"""{text}"""'
