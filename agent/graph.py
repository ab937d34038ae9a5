"""One turn of the agent as a LangGraph graph: the place to read which step follows which.

    START ─┬─ hand_off ───────────────────────────────────────────────────┐  the UI's "talk to a human"
           ├─ execute_pending ────────────────────────────────────────────┤  "yes" to the proposed write
           ├─ discard_pending ─┐                                          │  anything else drops it
           └───────────────────┴─► model ─┬─► answer ─────────────────────┤  grounding check
                                   ▲   ▲  ├─► out_of_steps ───────────────┤  faithful fallback
                                   │   │  └─► validate ─┬─► give_up ──────┤  second invalid call
                                   │   └──── correct ◄──┤                 │  one corrective retry
                                   └──────── tools ◄────┘                 │
                                              └─► (confirm / handoff) ────┴─► record ─► END

Every node is `fn(state, runtime)`; `runtime.context` is the session (agent.session.AgentSession), which holds what
lasts between turns: memory, tools, model, facts for grounding. The state holds only this turn.
Events reach the caller through LangGraph's custom stream (`get_stream_writer()`): text chunks while the model
generates, tool_call / tool_result / confirm / handoff as they happen, and the final event last, from `record`,
after the turn is logged.
"""

from __future__ import annotations

import functools
import logging
import operator
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agent.api import AgentEvent
from agent.backends import LocalChatModel
from agent.grounding import faithful_answer, is_chinese, problems, render
from agent.parsing import OPEN
from agent.toolspec import ToolSpec, tool_spec
from shopdesk.output import to_jsonable
from tools.errors import ToolError, ToolInputError
from tools.orders import discard_pending_action, execute_pending_action, is_write_tool

if TYPE_CHECKING:
    from agent.session import AgentSession

log = logging.getLogger(__name__)

GIVE_UP = {
    "en": "Sorry, I could not process that request. Could you rephrase it, or ask for a human agent?",
    "zh": "抱歉,我没能处理这个请求。请换个说法,或要求转人工客服。",
}


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {**old, **new}


class TurnState(TypedDict, total=False):
    user_text: str
    direct_handoff: bool  # the UI's button: transfer without asking the model
    started: float  # perf_counter() at the start, for the turn's latency
    messages: Annotated[list[BaseMessage], operator.add]  # this turn's messages, the user's first
    results: Annotated[list[tuple[str, Any]], operator.add]  # this turn's tool results (the faithful fallback)
    meta: Annotated[dict[str, Any], _merge]  # the turn's log entry (steps, grounding, invalid calls, ...)
    path: Annotated[list[str], operator.add]  # the nodes run, in order (logged in meta)
    ai: AIMessage  # the model's latest reply
    checked: list[tuple[dict, ToolSpec, dict]]  # validated calls: (call, spec, arguments)
    errors: list[tuple[dict, str]]  # rejected calls and what was wrong
    retried: bool  # the one corrective retry is used
    final: AgentEvent | None  # set by the node that ends the turn


# -- routing ----------------------------------------------------------------------------------------------------


def route_start(state: TurnState, runtime: Runtime) -> str:
    if state.get("direct_handoff"):
        return "hand_off"
    if runtime.context.ctx.pending_action is None:
        return "model"
    from agent.session import is_confirmation

    return "execute_pending" if is_confirmation(state["user_text"]) else "discard_pending"


def route_model(state: TurnState, runtime: Runtime) -> str:
    ai = state["ai"]
    if not ai.tool_calls and not ai.invalid_tool_calls:
        return "answer"
    if state["meta"]["steps"] > runtime.context.max_steps:
        return "out_of_steps"
    return "validate"


def route_validate(state: TurnState, runtime: Runtime) -> str:
    if not state["errors"]:
        return "tools"
    return "give_up" if state.get("retried") else "correct"


def route_tools(state: TurnState, runtime: Runtime) -> str:
    return "record" if state.get("final") is not None else "model"


# -- nodes ------------------------------------------------------------------------------------------------------


def model(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Ask the model, streaming its text to the caller as it comes."""
    session = runtime.context
    write = get_stream_writer()
    merged: AIMessageChunk | None = None
    for chunk in session.bound.stream(session.prompt(state["messages"])):
        merged = chunk if merged is None else merged + chunk
        if isinstance(chunk.content, str) and chunk.content:
            write(AgentEvent(kind="text", text=chunk.content))
    return {"ai": _reply(merged), "meta": {"steps": state["meta"]["steps"] + 1}}


def _reply(merged: AIMessageChunk | None) -> AIMessage:
    if merged is None:
        return AIMessage(content="")
    content = merged.content if isinstance(merged.content, str) else ""
    if not merged.tool_calls and not merged.invalid_tool_calls and OPEN in content:
        # a server-side parser (vLLM hermes) leaves a malformed call as text: read it the same way as locally
        return LocalChatModel.to_message(content)
    return AIMessage(content=content.strip(), tool_calls=merged.tool_calls,
                     invalid_tool_calls=merged.invalid_tool_calls, response_metadata=merged.response_metadata)


def validate(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Check every call against its tool's schema; an invalid call never reaches a tool."""
    session = runtime.context
    ai, meta = state["ai"], state["meta"]
    checked, errors, dropped_log = [], [], []
    for tc in ai.tool_calls:
        spec = session.specs.get(tc["name"])
        if spec is None:
            errors.append((tc, f"unknown tool {tc['name']!r}; use one of: {', '.join(session.specs)}"))
            continue
        # small models (and servers that constrain only the call envelope) add keys the tool does not have;
        # they carry nothing the tool would use (identity comes from ctx), so they are dropped
        args, dropped = spec.drop_undeclared(tc["args"])
        if dropped:
            log.warning("dropped undeclared argument(s) %s of a %s call", ", ".join(dropped), spec.name)
            dropped_log.append({"tool": spec.name, "keys": dropped})
        try:
            checked.append((tc, spec, spec.validate(args)))
        except ValueError as exc:
            ignored = f" (undeclared argument(s) ignored: {', '.join(dropped)})" if dropped else ""
            errors.append((tc, str(exc) + ignored))
    for tc in ai.invalid_tool_calls:
        errors.append(({"name": tc.get("name") or "invalid", "args": {}, "id": tc.get("id") or _new_id()},
                       tc.get("error") or "malformed call"))
    update: dict[str, Any] = {}
    if dropped_log:
        update["dropped_arguments"] = meta.get("dropped_arguments", []) + dropped_log
    if errors:
        session.stats["invalid_calls"] += len(errors)
        update["invalid_calls"] = meta.get("invalid_calls", 0) + len(errors)
    return {"checked": checked, "errors": errors, "meta": update}


def correct(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """The one corrective retry: the model sees what was wrong with each call; no tool runs this step."""
    bad = [{"name": tc["name"], "args": tc["args"] if isinstance(tc["args"], dict) else {},
            "id": tc["id"] or _new_id(), "type": "tool_call"} for tc, _ in state["errors"]]
    good = [{"name": tc["name"], "args": tc["args"], "id": tc["id"], "type": "tool_call"}
            for tc, _, _ in state["checked"]]
    messages: list[BaseMessage] = [AIMessage(state["ai"].content, tool_calls=bad + good)]
    for (tc, err), call in zip(state["errors"], bad):
        messages.append(ToolMessage(f"error: {err}. Call the tool again with valid arguments.",
                                    tool_call_id=call["id"], name=tc["name"]))
    for tc, _, _ in state["checked"]:
        messages.append(ToolMessage("not run: fix the invalid call first", tool_call_id=tc["id"], name=tc["name"]))
    return {"messages": messages, "retried": True}


def give_up(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    text = GIVE_UP["zh" if is_chinese(state["user_text"]) else "en"]
    return {"messages": [AIMessage(text)], "final": AgentEvent(kind="final", text=text)}


def tools(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Run the validated calls in order; a proposed write (confirm) or a handoff ends the turn."""
    session = runtime.context
    write = get_stream_writer()
    messages: list[BaseMessage] = [AIMessage(state["ai"].content,
                                             tool_calls=[dict(tc, args=args) for tc, _, args in state["checked"]])]
    results: list[tuple[str, Any]] = []
    for tc, spec, args in state["checked"]:
        write(AgentEvent(kind="tool_call", name=spec.name, arguments=args, call_id=tc["id"]))
        final = run_tool(session, spec, args, tc["id"], messages, results, write)
        if final is not None:
            return {"messages": messages, "results": results, "final": final}
    return {"messages": messages, "results": results}


def run_tool(session: AgentSession, spec: ToolSpec, args: dict, call_id: str, messages: list[BaseMessage],
             results: list[tuple[str, Any]], write: Callable[[AgentEvent], None]) -> AgentEvent | None:
    """Run one call: its tool message goes to `messages`, its result to `results`; returns the final event
    when the call ends the turn (a write waiting for confirmation, a handoff)."""
    ctx = session.ctx
    had_pending = ctx.pending_action is not None
    try:
        result = spec(ctx, args)
    except ToolError as exc:
        text = f"error: {exc}"
        if not isinstance(exc, ToolInputError):  # a refusal or not-found is the faithful answer if the model errs
            results.append((spec.name, str(exc)))
        messages.append(ToolMessage(text, tool_call_id=call_id, name=spec.name))
        write(AgentEvent(kind="tool_result", name=spec.name, call_id=call_id, text=text,
                         data={"error": str(exc), "type": type(exc).__name__}))
        return None
    except PermissionError as exc:
        text = f"error: not allowed ({exc})"
        messages.append(ToolMessage(text, tool_call_id=call_id, name=spec.name))
        write(AgentEvent(kind="tool_result", name=spec.name, call_id=call_id, text=text, data={"error": str(exc)}))
        return None
    text = render(result)
    data = to_jsonable(result)
    messages.append(ToolMessage(text, tool_call_id=call_id, name=spec.name))
    write(AgentEvent(kind="tool_result", name=spec.name, call_id=call_id, text=text, data=data))
    if ctx.pending_action is not None and (not had_pending or is_write_tool(spec.name)):
        summary = getattr(result, "summary", None) or ctx.pending_action.get("summary") or text
        write(AgentEvent(kind="confirm", name=spec.name, text=summary, data=to_jsonable(ctx.pending_action)))
        messages.append(AIMessage(summary))
        return AgentEvent(kind="final", text=summary, data={"awaiting_confirmation": True})
    session.facts.add(result)
    results.append((spec.name, result))
    session.all_results.append((spec.name, result))
    if spec.name == "transfer_to_human":
        summary = getattr(result, "summary", None) or text
        write(AgentEvent(kind="handoff", name=spec.name, text=summary, data=data))
        answer = getattr(result, "message", None) or text
        messages.append(AIMessage(answer))
        return AgentEvent(kind="final", text=answer, data={"handoff": True})
    return None


def answer(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """The model's answer, unless it states facts no tool reported: then the tools' own rendering."""
    session = runtime.context
    text = state["ai"].content
    found = problems(text, session.facts)
    if not text.strip():
        found = found or ["empty answer"]
    meta: dict[str, Any] = {}
    if found:
        meta = {"grounding_replaced": True, "grounding_problems": found}
        session.stats["grounding_replacements"] += 1
        log.info("grounding replaced an answer: %s", "; ".join(found))
        text = faithful_answer(state["results"] or session.all_results[-1:], state["user_text"])
    return {"messages": [AIMessage(text)], "meta": meta, "final": AgentEvent(kind="final", text=text)}


def out_of_steps(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    text = faithful_answer(state["results"], state["user_text"])
    return {"messages": [AIMessage(text)], "meta": {"max_steps_reached": True},
            "final": AgentEvent(kind="final", text=text)}


def execute_pending(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """The customer confirmed: code, not the model, carries out the proposed write (the tool re-checks policy)."""
    session = runtime.context
    ctx = session.ctx
    write = get_stream_writer()
    pending = ctx.pending_action or {}
    name = pending.get("tool") or pending.get("name") or "pending_action"
    call_id = _new_id()
    write(AgentEvent(kind="tool_call", name=name, arguments=pending.get("arguments"), call_id=call_id,
                     meta={"confirmed": True}))
    ctx.confirmed = True
    try:
        result = execute_pending_action(ctx)
    except ToolError as exc:  # refused by policy on the re-check (the data changed since the proposal)
        return {"messages": [AIMessage(str(exc))], "final": AgentEvent(kind="final", text=str(exc))}
    finally:
        ctx.confirmed = False
        ctx.pending_action = None
    text = render(result)
    session.facts.add(result)
    write(AgentEvent(kind="tool_result", name=name, call_id=call_id, text=text, data=to_jsonable(result)))
    return {"messages": [AIMessage(text)], "final": AgentEvent(kind="final", text=text, data={"executed": name})}


def discard_pending(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Anything but a yes drops the proposed write; the message is then answered as usual."""
    discard_pending_action(runtime.context.ctx)
    return {}


def hand_off(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Transfer to a human with a summary built from the conversation, whatever the model would do."""
    from tools.handoff import transfer_to_human

    session = runtime.context
    write = get_stream_writer()
    spec = session.specs.get("transfer_to_human") or tool_spec(transfer_to_human)
    args = {"summary": session.handoff_summary(state["user_text"])}
    call_id = _new_id()
    messages: list[BaseMessage] = [AIMessage("", tool_calls=[{"name": spec.name, "args": args, "id": call_id,
                                                              "type": "tool_call"}])]
    write(AgentEvent(kind="tool_call", name=spec.name, arguments=args, call_id=call_id, meta={"direct": True}))
    final = run_tool(session, spec, args, call_id, messages, [], write)
    if final is None:  # the tool refused (it never does for a non-empty summary); say so rather than go quiet
        final = AgentEvent(kind="final", text="Sorry, I could not reach a human agent. Please try again.")
        messages.append(AIMessage(final.text))
    log.info("direct handoff of conversation %s", session.conversation_id)
    return {"messages": messages, "final": final}


def record(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Keep the turn in the session's memory and the store's log, then send the final event."""
    session = runtime.context
    final = state["final"]
    meta = dict(state["meta"], path=state["path"] + ["record"],
                latency_s=round(time.perf_counter() - state["started"], 3))
    final.meta.update(meta)
    final.data = dict(final.data or {}, grounding_replaced=meta["grounding_replaced"])
    session.remember(state["messages"], meta)
    get_stream_writer()(final)
    return {}


# -- the graph --------------------------------------------------------------------------------------------------


def _traced(name: str, fn: Callable[[TurnState, Runtime], dict[str, Any]]) -> Callable[[TurnState, Runtime], dict[str, Any]]:
    """`fn`, adding its name to the state's path (so a logged turn says which way it went)."""

    def node(state: TurnState, runtime: Runtime) -> dict[str, Any]:
        return dict(fn(state, runtime), path=[name])

    node.__name__ = name
    return node


NODES = {fn.__name__: fn for fn in (hand_off, execute_pending, discard_pending, model, validate, correct, give_up,
                                    tools, answer, out_of_steps)}


@functools.cache
def turn_graph():
    """The compiled turn graph (stateless: the session passed as context holds the memory), built once."""
    from agent.session import AgentSession

    graph = StateGraph(TurnState, context_schema=AgentSession)
    for name, fn in NODES.items():
        graph.add_node(name, _traced(name, fn))
    graph.add_node("record", record)
    graph.add_conditional_edges(START, route_start, ["hand_off", "execute_pending", "discard_pending", "model"])
    graph.add_edge("discard_pending", "model")
    graph.add_conditional_edges("model", route_model, ["answer", "out_of_steps", "validate"])
    graph.add_conditional_edges("validate", route_validate, ["tools", "correct", "give_up"])
    graph.add_edge("correct", "model")
    graph.add_conditional_edges("tools", route_tools, ["model", "record"])
    for name in ("hand_off", "execute_pending", "answer", "out_of_steps", "give_up"):
        graph.add_edge(name, "record")
    graph.add_edge("record", END)
    return graph.compile(name="shopdesk_turn")


def recursion_limit(max_steps: int) -> int:
    """Supersteps a turn may take: up to three per model step (model, validate, tools), the retry and the ends."""
    return 3 * (max_steps + 1) + 6


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]
