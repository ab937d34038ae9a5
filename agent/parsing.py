"""The one tool-call text format, parsed the same way by the in-process backend and the vLLM tool-parser plugin.

    Let me check.<tool_call>{"name": "get_order_details", "arguments": {"order_id": "#W1"}}</tool_call>
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_NAME = re.compile(r'"name"\s*:\s*"([A-Za-z_][\w]*)"')
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


@dataclass
class ParsedCall:
    name: str
    arguments: Any  # a dict when well formed; the raw string when the JSON was broken
    error: str | None = None
    id: str = ""

    def __post_init__(self):
        if not self.id:
            self.id = "call_" + uuid.uuid4().hex[:12]


def _loads_lenient(raw: str) -> Any:
    """JSON, tolerating the trailing garbage small models add after the object."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        obj, _ = json.JSONDecoder().raw_decode(raw)
        return obj


def parse_tool_calls(text: str) -> tuple[str, list[ParsedCall]]:
    """Split model output into the free text before the first call and the calls (malformed ones carry `error`)."""
    start = text.find(OPEN)
    if start < 0:
        return text.strip(), []
    content = text[:start].strip()
    calls: list[ParsedCall] = []
    for block in _BLOCK.findall(text[start:]):
        try:
            obj = _loads_lenient(block)
        except (json.JSONDecodeError, ValueError) as exc:
            named = _NAME.search(block)
            calls.append(ParsedCall(name=named.group(1) if named else "", arguments=block,
                                    error=f"tool call is not valid JSON ({getattr(exc, 'msg', exc)})"))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            calls.append(ParsedCall(name="", arguments=block,
                                    error='tool call needs {"name": ..., "arguments": {...}}'))
            continue
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                calls.append(ParsedCall(name=obj["name"], arguments=args, error="arguments are not a JSON object"))
                continue
        calls.append(ParsedCall(name=obj["name"], arguments=args if args is not None else {}))
    return content, calls


def safe_prefix_len(text: str) -> int:
    """How much of `text` can be streamed as plain reply: everything before a (possibly partial) `<tool_call>`."""
    idx = text.find(OPEN)
    if idx >= 0:
        return idx
    for k in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if text.endswith(OPEN[:k]):
            return len(text) - k
    return len(text)
