"""A scripted chat model for tests and demos: it replies with a fixed sequence of messages and tool calls.

    model = ScriptedChatModel(script=[call("get_order_details", order_id="#W1"), "Your order is processed."])
    session = open_session(settings, "customer", "cust_1", model=model, store=store)

Also reachable with SHOPDESK_LLM_BACKEND=fake; SHOPDESK_FAKE_SCRIPT may name a JSON file holding the script
(a list of strings and {"tool_calls": [{"name": ..., "arguments": {...}}], "content": ...} objects).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

ScriptStep = AIMessage | str | dict | Callable[[list[BaseMessage]], AIMessage | str]


def call(name: str, _content: str = "", **arguments: Any) -> AIMessage:
    """An assistant message that calls one tool (a convenience for scripts)."""
    return calls((name, arguments), content=_content)


def calls(*pairs: tuple[str, dict[str, Any]], content: str = "") -> AIMessage:
    """An assistant message that calls several tools in one step."""
    return AIMessage(
        content=content,
        tool_calls=[
            {"name": name, "args": dict(args), "id": f"call_{i}_{name}", "type": "tool_call"}
            for i, (name, args) in enumerate(pairs)
        ],
    )


def to_message(step: ScriptStep, messages: list[BaseMessage]) -> AIMessage:
    """One script step as the assistant message it stands for (a callable step is called with the messages)."""
    if callable(step) and not isinstance(step, (AIMessage, str, dict)):
        step = step(messages)
    if isinstance(step, AIMessage):
        return step
    if isinstance(step, str):
        return AIMessage(content=step)
    if isinstance(step, dict):
        pairs = [(tc["name"], tc.get("arguments", tc.get("args", {}))) for tc in step.get("tool_calls", [])]
        if pairs:
            return calls(*pairs, content=step.get("content", ""))
        return AIMessage(content=step.get("content", ""))
    raise TypeError(f"unsupported script step: {step!r}")


def _echo(messages: list[BaseMessage]) -> AIMessage:
    last = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    return AIMessage(content=f"(fake model) You said: {last.content if last else ''}")


class ScriptedChatModel(BaseChatModel):
    """Replies with `script` in order, one step per model call; after the script runs out, `fallback` answers.

    Every call's input messages and bound tools are recorded in `requests` for assertions.
    """

    script: list[Any] = Field(default_factory=list)
    fallback: Any = None  # a ScriptStep; default: echo the last user message
    requests: list[dict[str, Any]] = Field(default_factory=list)
    position: int = 0
    chunk_size: int = 8  # characters per streamed chunk

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def model_name(self) -> str:
        return "scripted"

    def enqueue(self, *steps: ScriptStep) -> None:
        self.script.extend(steps)

    def _next(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        self.requests.append({"messages": list(messages), "tools": kwargs.get("tools"), "kwargs": dict(kwargs)})
        if self.position < len(self.script):
            step = self.script[self.position]
            self.position += 1
        else:
            step = self.fallback or _echo
        return to_message(step, messages)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages, kwargs))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._next(messages, kwargs)
        text = message.content if isinstance(message.content, str) else ""
        for i in range(0, len(text), self.chunk_size):
            piece = text[i : i + self.chunk_size]
            if run_manager:
                run_manager.on_llm_new_token(piece)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        if message.tool_calls:
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc["id"], "index": i}
                        for i, tc in enumerate(message.tool_calls)
                    ],
                )
            )
        elif not text:
            yield ChatGenerationChunk(message=AIMessageChunk(content=""))

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any):
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)


def load_script(path: str | Path) -> list[Any]:
    """A script from a JSON file: a list of strings and {"content", "tool_calls"} objects."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: a fake-model script must be a JSON list")
    return data


def fake_model_from_env() -> ScriptedChatModel:
    """The model for SHOPDESK_LLM_BACKEND=fake: SHOPDESK_FAKE_SCRIPT's script, else an echo."""
    path = os.environ.get("SHOPDESK_FAKE_SCRIPT")
    return ScriptedChatModel(script=load_script(path) if path else [])
