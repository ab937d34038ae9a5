"""Support transcripts as JSONL: OpenAI chat format and ShareGPT style in, one normalised form out, clear errors.

One transcript per line. OpenAI chat format:

    {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": "...", "weight": 0|1 (assistant, optional),
                   "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "...", "arguments": "{...}"}}],
                   "tool_call_id": "c1"}],
     "tools": [...optional OpenAI tool schemas...], "meta": {"conversation_id": ..., "customer_id": ..., "role": ...}}

ShareGPT style (as LLaMA-Factory reads it):

    {"conversations": [{"from": "system"|"human"|"gpt"|"function_call"|"observation", "value": "..."}],
     "tools": "[...json...]", "meta": {...}}

where a `function_call` value is `{"name": ..., "arguments": {...}}` (or a list of them) and an `observation` is the
tool's output. Both read into `Transcript` (OpenAI messages with arguments as dicts); errors name file, line,
message index and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shopdesk.output import UserError

Format = Literal["openai", "sharegpt"]
ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class TranscriptError(UserError):
    """A transcript file is malformed; the message says where (file:line, message index, field) and what."""

    def __init__(self, path: str | Path, line: int, problem: str, index: int | None = None,
                 fieldname: str | None = None):
        self.path, self.line, self.index, self.field, self.problem = str(path), line, index, fieldname, problem
        where = f"{path}:{line}"
        if index is not None:
            where += f": message {index}"
        if fieldname:
            where += f": field '{fieldname}'"
        super().__init__(f"{where}: {problem}")


@dataclass
class Transcript:
    """One conversation: OpenAI-style messages (tool-call arguments as dicts), optional tool schemas, and metadata."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def customer_id(self) -> str | None:
        return self.meta.get("customer_id")

    @property
    def conversation_id(self) -> str | None:
        return self.meta.get("conversation_id")

    def to_openai(self) -> dict[str, Any]:
        messages = []
        for m in self.messages:
            out = {"role": m["role"], "content": m.get("content") or ""}
            if m.get("tool_calls"):
                out["tool_calls"] = [
                    {
                        "id": tc["id"],
                        "type": "function",
                        "function": {
                            "name": tc["function"]["name"],
                            "arguments": json.dumps(tc["function"]["arguments"], ensure_ascii=False),
                        },
                    }
                    for tc in m["tool_calls"]
                ]
            if "weight" in m:
                out["weight"] = m["weight"]
            if m["role"] == "tool":
                out["tool_call_id"] = m["tool_call_id"]
                if m.get("name"):
                    out["name"] = m["name"]
            messages.append(out)
        row: dict[str, Any] = {"messages": messages}
        if self.tools:
            row["tools"] = self.tools
        if self.meta:
            row["meta"] = self.meta
        return row

    def to_sharegpt(self) -> dict[str, Any]:
        conv: list[dict[str, str]] = []
        for m in self.messages:
            if m["role"] == "system":
                conv.append({"from": "system", "value": m["content"]})
            elif m["role"] == "user":
                conv.append({"from": "human", "value": m["content"]})
            elif m["role"] == "tool":
                conv.append({"from": "observation", "value": m["content"]})
            else:
                calls = [{"name": tc["function"]["name"], "arguments": tc["function"]["arguments"]}
                         for tc in m.get("tool_calls") or []]
                if m.get("content") or not calls:  # an empty reply (nothing to add to the rendered results) stays
                    conv.append({"from": "gpt", "value": m.get("content") or ""})
                if calls:
                    value = calls[0] if len(calls) == 1 else calls
                    conv.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
        row: dict[str, Any] = {"conversations": conv}
        if self.tools:
            row["tools"] = json.dumps(self.tools, ensure_ascii=False)
        if self.meta:
            row["meta"] = self.meta
        return row


def _arguments(raw: Any, path, line, index, fieldname) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise TranscriptError(path, line, f"tool-call arguments are not valid JSON ({exc.msg})", index,
                                  fieldname) from None
    if not isinstance(raw, dict):
        raise TranscriptError(path, line, f"tool-call arguments must be a JSON object, got {type(raw).__name__}", index,
                              fieldname)
    return raw


def _check_order(messages: list[dict[str, Any]], path, line) -> None:
    """Tool messages answer an earlier call; there is something to learn (an assistant turn) after a user turn."""
    open_calls: set[str] = set()
    seen_user = False
    for i, m in enumerate(messages):
        role = m["role"]
        if role == "system" and i != 0:
            raise TranscriptError(path, line, "a system message may only come first", i, "role")
        if role == "user":
            seen_user = True
        if role == "assistant":
            if not seen_user:
                raise TranscriptError(path, line, "an assistant message comes before any user message", i, "role")
            open_calls |= {tc["id"] for tc in m.get("tool_calls") or []}
        if role == "tool" and m["tool_call_id"] not in open_calls:
            raise TranscriptError(
                path, line, f"tool result for call id {m['tool_call_id']!r}, which no earlier assistant message made",
                i, "tool_call_id",
            )
    if not any(m["role"] == "assistant" for m in messages):
        raise TranscriptError(path, line, "no assistant message: nothing to learn from", None, "messages")


def parse_openai(row: dict[str, Any], path="<input>", line: int = 1) -> Transcript:
    """A transcript from an OpenAI-style row (`messages` with roles and tool calls)."""
    raw = row.get("messages")
    if not isinstance(raw, list) or not raw:
        raise TranscriptError(path, line, "expected a non-empty list", None, "messages")
    messages: list[dict[str, Any]] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise TranscriptError(path, line, f"a message must be an object, got {type(m).__name__}", i)
        role = m.get("role")
        if role not in ROLES:
            raise TranscriptError(path, line, f"unknown role {role!r}; expected one of {', '.join(ROLES)}", i, "role")
        content = m.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise TranscriptError(path, line, f"content must be a string, got {type(content).__name__}", i, "content")
        msg: dict[str, Any] = {"role": role, "content": content}
        calls = m.get("tool_calls")
        if calls:
            if role != "assistant":
                raise TranscriptError(path, line, "only assistant messages may carry tool_calls", i, "tool_calls")
            if not isinstance(calls, list):
                raise TranscriptError(path, line, "tool_calls must be a list", i, "tool_calls")
            msg["tool_calls"] = []
            for j, tc in enumerate(calls):
                where = f"tool_calls[{j}]"
                if not isinstance(tc, dict):
                    raise TranscriptError(path, line, "a tool call must be an object", i, where)
                fn = tc.get("function", tc)
                name = fn.get("name") if isinstance(fn, dict) else None
                if not isinstance(name, str) or not name:
                    raise TranscriptError(path, line, "missing tool name", i, f"{where}.function.name")
                args = _arguments(fn.get("arguments", {}), path, line, i, f"{where}.function.arguments")
                call_id = tc.get("id") or f"call_{i}_{j}"
                msg["tool_calls"].append({"id": str(call_id), "type": "function",
                                          "function": {"name": name, "arguments": args}})
        elif role in ("user", "system") and not content.strip():
            raise TranscriptError(path, line, f"empty {role} message", i, "content")
        elif role == "assistant" and not content.strip() and (i != len(raw) - 1 or m.get("weight", 1) == 0):
            # an empty reply is learnable only as the last message: the turn's rendered results answer, the model
            # adds nothing (agent.graph); anywhere else it is a gap in the conversation
            raise TranscriptError(path, line, "assistant message has neither content nor tool_calls (an empty reply "
                                  "may only be the last, learnable message)", i, "content")
        if role == "assistant" and "weight" in m:
            if m["weight"] not in (0, 1):
                raise TranscriptError(path, line, "weight must be 0 (context only) or 1 (learn this turn)", i, "weight")
            msg["weight"] = int(m["weight"])
        if role == "tool":
            call_id = m.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise TranscriptError(path, line, "a tool message needs the id of the call it answers", i,
                                      "tool_call_id")
            msg["tool_call_id"] = call_id
            if m.get("name"):
                msg["name"] = str(m["name"])
        messages.append(msg)
    _check_order(messages, path, line)
    tools = row.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise TranscriptError(path, line, "tools must be a list of tool schemas", None, "tools")
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise TranscriptError(path, line, "meta must be an object", None, "meta")
    return Transcript(messages=messages, tools=tools or None, meta=dict(meta))


def parse_sharegpt(row: dict[str, Any], path="<input>", line: int = 1) -> Transcript:
    """A transcript from a ShareGPT-style row (`conversations` with from/value)."""
    raw = row.get("conversations")
    if not isinstance(raw, list) or not raw:
        raise TranscriptError(path, line, "expected a non-empty list", None, "conversations")
    messages: list[dict[str, Any]] = []
    pending_ids: list[str] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise TranscriptError(path, line, f"a turn must be an object, got {type(m).__name__}", i)
        who = m.get("from")
        value = m.get("value")
        if not isinstance(value, str):
            raise TranscriptError(path, line, f"value must be a string, got {type(value).__name__}", i, "value")
        if who in SHAREGPT_ROLES:
            messages.append({"role": SHAREGPT_ROLES[who], "content": value})
        elif who == "function_call":
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise TranscriptError(path, line, f"function_call value is not valid JSON ({exc.msg})", i,
                                      "value") from None
            calls = parsed if isinstance(parsed, list) else [parsed]
            tool_calls = []
            for j, c in enumerate(calls):
                if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                    raise TranscriptError(path, line, "a function call needs a string 'name'", i, "value.name")
                args = _arguments(c.get("arguments", {}), path, line, i, "value.arguments")
                tool_calls.append({"id": f"call_{i}_{j}", "type": "function",
                                   "function": {"name": c["name"], "arguments": args}})
            # A gpt turn right before the call is the same assistant message (text, then the call).
            if messages and messages[-1]["role"] == "assistant" and not messages[-1].get("tool_calls"):
                messages[-1]["tool_calls"] = tool_calls
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": tool_calls})
            pending_ids = [tc["id"] for tc in tool_calls]
        elif who == "observation":
            if not pending_ids:
                raise TranscriptError(path, line, "an observation with no function_call before it", i, "from")
            messages.append({"role": "tool", "content": value, "tool_call_id": pending_ids.pop(0)})
        else:
            raise TranscriptError(
                path, line, f"unknown speaker {who!r}; expected human, gpt, system, function_call or observation", i,
                "from",
            )
    tools = row.get("tools")
    if isinstance(tools, str):
        try:
            tools = json.loads(tools) if tools.strip() else None
        except json.JSONDecodeError as exc:
            raise TranscriptError(path, line, f"tools is not valid JSON ({exc.msg})", None, "tools") from None
    openai_row = {"messages": messages, "tools": tools, "meta": row.get("meta")}
    return parse_openai(openai_row, path, line)


def parse_row(row: Any, path="<input>", line: int = 1) -> Transcript:
    """A transcript from a row in either format; TranscriptError says where it is wrong."""
    if not isinstance(row, dict):
        raise TranscriptError(path, line, f"a transcript must be a JSON object, got {type(row).__name__}")
    if "messages" in row:
        return parse_openai(row, path, line)
    if "conversations" in row:
        return parse_sharegpt(row, path, line)
    raise TranscriptError(path, line,
                          "neither 'messages' (OpenAI chat format) nor 'conversations' (ShareGPT) is present")


def iter_transcripts(path: str | Path) -> Iterator[Transcript]:
    """Read a JSONL file of transcripts (either format, even mixed), failing on the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such transcript file")
    with path.open(encoding="utf-8") as fh:
        for n, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TranscriptError(path, n, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
            yield parse_row(row, path, n)


def load_transcripts(path: str | Path) -> list[Transcript]:
    """Every transcript of a JSONL file."""
    return list(iter_transcripts(path))


def validate_file(path: str | Path) -> dict[str, Any]:
    """Check every line; return counts and all problems (not only the first)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such transcript file")
    ok, errors, assistant_turns, tool_calls = 0, [], 0, 0
    with path.open(encoding="utf-8") as fh:
        for n, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise TranscriptError(path, n, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
                t = parse_row(row, path, n)
            except TranscriptError as exc:
                errors.append(str(exc))
                continue
            ok += 1
            assistant_turns += sum(m["role"] == "assistant" for m in t.messages)
            tool_calls += sum(len(m.get("tool_calls") or []) for m in t.messages)
    return {"file": str(path), "valid": ok, "invalid": len(errors), "assistant_turns": assistant_turns,
            "tool_calls": tool_calls, "errors": errors}


def write_transcripts(transcripts: Iterable[Transcript], path: str | Path, fmt: Format = "openai") -> int:
    """Write transcripts as JSONL in `fmt` (atomically); how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", encoding="utf-8") as fh:
        for t in transcripts:
            row = t.to_openai() if fmt == "openai" else t.to_sharegpt()
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def export_from_store(store, since=None, channel: str | None = None) -> list[Transcript]:
    """The agent's logged conversations (Conversation/Message rows) as transcripts, oldest first."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from store.models import Conversation

    out: list[Transcript] = []
    with store.read() as session:
        q = select(Conversation).options(selectinload(Conversation.messages)).order_by(Conversation.started_at)
        if since is not None:
            q = q.where(Conversation.started_at >= since)
        if channel:
            q = q.where(Conversation.channel == channel)
        for conv in session.scalars(q):
            messages: list[dict[str, Any]] = []
            for m in conv.messages:
                msg: dict[str, Any] = {"role": m.role, "content": m.content or ""}
                if m.tool_calls:
                    msg["tool_calls"] = [
                        {
                            "id": str(tc.get("id") or f"call_{m.seq}_{j}"),
                            "type": "function",
                            "function": {"name": tc.get("name") or tc.get("function", {}).get("name"),
                                         "arguments": tc.get("arguments", tc.get("args", {})) or {}},
                        }
                        for j, tc in enumerate(m.tool_calls)
                    ]
                    for tc in msg["tool_calls"]:
                        if isinstance(tc["function"]["arguments"], str):
                            tc["function"]["arguments"] = json.loads(tc["function"]["arguments"] or "{}")
                if m.role == "tool":
                    msg["tool_call_id"] = m.tool_call_id or ""
                    if m.name:
                        msg["name"] = m.name
                messages.append(msg)
            if not any(m["role"] == "assistant" for m in messages):
                continue
            meta = {"conversation_id": conv.id, "customer_id": conv.customer_id, "role": conv.role,
                    "channel": conv.channel, "outcome": conv.outcome, "started_at": conv.started_at.isoformat()}
            out.append(Transcript(messages=messages, meta=meta))
    return out
