"""Encoding transcripts as token ids and labels with the agent's own chat template; loss on assistant turns only.

Each assistant message (its text and its `<tool_call>` JSON, up to and including `<|im_end|>`) is a target; the system
turn with the tool list, user turns, tool results and assistant turns marked `"weight": 0` (text the agent's code
wrote, such as confirmation summaries) are context with label -100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finetune.transcripts import Transcript

IGNORE = -100


def agent_template() -> str:
    """The chat template the agent serves with (in-process and vLLM `--chat-template`)."""
    from shopdesk.models import chat_template

    return chat_template()


def _apply_template(tokenizer, messages, tools, template: str, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        messages, tools=tools, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def template_messages(t: Transcript) -> list[dict[str, Any]]:
    """Messages as the template reads them (what the agent passes: OpenAI-style, arguments as dicts)."""
    return [{k: v for k, v in m.items() if k != "weight"} for m in t.messages]


def assistant_spans(tokenizer, t: Transcript, template: str, tools=None) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    messages = template_messages(t)
    tools = tools if tools is not None else t.tools
    text = _apply_template(tokenizer, messages, tools, template)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or t.messages[i].get("weight", 1) == 0:
            continue
        prefix = _apply_template(tokenizer, messages[:i], tools, template, add_generation_prompt=True)
        upto = _apply_template(tokenizer, messages[: i + 1], tools, template)
        if not upto.startswith(prefix) or not text.startswith(upto):
            raise ValueError(
                "the chat template does not render conversations incrementally (a prefix changed when a turn was "
                "added); loss masking needs that"
            )
        end = len(upto.rstrip("\n"))
        spans.append((len(prefix), end))
    return text, spans


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


def encode(tokenizer, t: Transcript, template: str, max_length: int, tools=None) -> Encoded | None:
    """Token ids and labels (-100 outside assistant spans); None when nothing to learn fits in max_length."""
    text, spans = assistant_spans(tokenizer, t, template, tools)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = [IGNORE] * len(ids)
    for k, (start, _end) in enumerate(enc["offset_mapping"]):
        for a, b in spans:
            if a <= start < b:
                labels[k] = ids[k]
                break
    truncated = len(ids) > max_length
    ids, labels = ids[:max_length], labels[:max_length]
    if all(x == IGNORE for x in labels):
        return None
    return Encoded(ids, labels, truncated)


def prompt_for(tokenizer, t: Transcript, upto: int, template: str, tools=None) -> str:
    """The generation prompt before message `upto` (an assistant turn), as the agent would send it."""
    tools = tools if tools is not None else t.tools
    return _apply_template(tokenizer, template_messages(t)[:upto], tools, template, add_generation_prompt=True)
