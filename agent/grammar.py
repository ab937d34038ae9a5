"""The tool-call grammar: the role's tool schemas with this turn's enums, as one xgrammar structural tag that both
backends decode under (in-process through xgrammar's transformers logits processor, vLLM through structured outputs).

    tools = constrained_tools([s.openai() for s in specs], {"order_id": ["#W2611340", "#W1"]})
    tag = call_structural_tag(tools, tool_choice=None)   # a JSON-able dict: text without <tool_call>, or one call
    grammars = CallGrammars(tokenizer, vocab_size=model.config.vocab_size, stop_token_ids=[im_end])
    decoder = grammars.decoder(tag)   # per model call: mask(logits), advance(token) -> forced tokens, done()
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from agent.drafts import Drafts

# The call as agent/chat_template.jinja writes it and the fine-tune learned it, byte for byte.
CALL_BEGIN = '<tool_call>{"name": "'
ARGUMENTS = '", "arguments": '
CALL_END = "}</tool_call>"
# Plain text may not open a call, nor start or end a ChatML turn of its own. It never needs a "<" at all: without
# one, a "<" is the start of a call, and the rest of `<tool_call>{"name": "` is forced (no decode step each).
TEXT_EXCLUDES = ["<"]


# An enums key that is no argument's name: the tools it lists are left out this turn (the write tools whose action the
# person has not asked for, agent.enums).
NOT_ASKED = "(tools not asked for)"
# An enums key that is no argument's name: argument names of which a call must take one this turn. A tool with none
# of them is left out, and the one it has becomes required (a customer the marketer names is the one a call is about:
# "What does c000040's journey look like?" cannot become the shop's funnel).
MUST_TAKE = "(arguments a call must take)"
# An enums key that is no argument's name: arguments which, given no value this turn, a call leaves out instead of
# the tool being left out (tools.registry.ASKED_IF_MISSING: the tool asks the person for them).
MAY_OMIT = "(arguments a call may leave out)"
# An enums key that is no argument's name: when it holds a true value, the turn's first model call is a call, never
# words (a customer's message that names an order asks for it to be looked up or acted on: "Cancel order #S0000278
# please." may not be answered with a refusal the model wrote). agent.session binds it as tool_choice "required".
CALL_FIRST = "(a call before any words)"
# An enums key that is no argument's name: arguments a call must give where its tool has them, with the value their
# enum holds ("有没有 200 美元以下的显示器？" is a search with max_price 200, whatever the model puts in the query).
MUST_GIVE = "(arguments a call must give)"
# An enums key that is no argument's name: the only tools this turn may call ("电视呢？" after the reviews of headphones
# asks the same question of TVs: the reviews tool, not the funnel).
ONLY_TOOLS = "(the only tools this turn)"


class EveryOne(list):
    """Enum values of which a call takes every one: an array argument given them has exactly that many items, each
    one of them (the items a customer names by id are all of what they ask about).
    """


# The longest product title in the sample catalog is 160 characters, a query may name one and say more; a looping
# query ("laptops, laptops, ...") closes here, about 80 tokens, well inside a call's max_new_tokens.
QUERY_MAX_CHARS = 240


def constrained_tools(tools: Sequence[Mapping[str, Any]], enums: Mapping[str, Sequence[Any]] | None) -> list[dict]:
    """`tools` (OpenAI-style dicts) with `enums[name]` applied to every argument called `name` (to `items` for an
    array, to each non-null branch of an anyOf), or `enums["TOOL.name"]` to that tool's argument where given. A name
    not in `enums` is not constrained. A name given with an empty list has no possible value this turn (no such id is
    known in the conversation): a tool that requires it is left out (unless `enums[MAY_OMIT]` names it: then the call
    leaves it out), and an optional argument of that name is removed. A tool that needs one of several optional
    arguments (tools.registry.ONE_OF_ARGUMENTS) is left out when none of them is left. An argument that already has
    an enum keeps only the values in both (or its own, if none are). The tools named in `enums[NOT_ASKED]` are left
    out, and so are those that take none of the arguments named in `enums[MUST_TAKE]` (the one they take becomes
    required), and, when `enums[ONLY_TOOLS]` names any, every tool it does not name; but never a tool of
    tools.registry.ALWAYS_OFFERED (a person can always be asked for). An argument named in `enums[MUST_GIVE]` is
    required of every tool that has it.
    """
    from tools.registry import ALWAYS_OFFERED, ONE_OF_ARGUMENTS

    out = []
    left_out = set((enums or {}).get(NOT_ASKED) or ())
    must_take = list((enums or {}).get(MUST_TAKE) or ())
    must_give = list((enums or {}).get(MUST_GIVE) or ())
    only = set((enums or {}).get(ONLY_TOOLS) or ())
    may_omit = set((enums or {}).get(MAY_OMIT) or ())
    kept = [t for t in tools if (name := _function(t).get("name")) not in left_out
            and (not only or name in only or name in ALWAYS_OFFERED)]
    for tool in copy.deepcopy([dict(t) for t in kept]):
        params = _function(tool).get("parameters") or {}
        props = params.get("properties") or {}
        if props.get("query", {}).get("type") == "string":
            # a small model can loop in a free-text query ("laptops, laptops, ..."): the call is closed at this many
            # characters instead of running out of tokens mid-string (the walk of session 18: an invalid call)
            props["query"]["maxLength"] = QUERY_MAX_CHARS
        required = set(params.get("required") or [])
        possible = True
        fname = _function(tool).get("name")
        for name in [n for n in props if enums and (n in enums or f"{fname}.{n}" in enums)]:
            given = enums.get(f"{fname}.{name}", enums.get(name)) or []
            values = _unique(given)
            if isinstance(given, EveryOne):
                values = EveryOne(values)
            if values:
                _apply_enum(props[name], values)
            elif name in required and name in may_omit:  # the call leaves it out; the tool asks for it
                del props[name]
                params["required"] = [r for r in params.get("required") or [] if r != name]
            elif name in required:
                possible = False
                break
            else:
                del props[name]
        one_of = ONE_OF_ARGUMENTS.get(_function(tool).get("name", ""), ())
        if one_of and not any(name in props for name in one_of):
            possible = False
        if must_give:
            params["required"] = list(dict.fromkeys([*(params.get("required") or []),
                                                     *(name for name in must_give if name in props)]))
        if must_take and possible and _function(tool).get("name") not in ALWAYS_OFFERED:
            taken = [name for name in must_take if name in props]
            possible = bool(taken)
            params["required"] = list(dict.fromkeys([*(params.get("required") or []), *taken]))
        if possible:
            out.append(tool)
    return out


def _function(tool: Mapping[str, Any]) -> dict:
    return tool.get("function", tool)  # type: ignore[return-value]


def _unique(values: Sequence[Any]) -> list[Any]:
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def _apply_enum(schema: dict, values: list[Any]) -> None:
    if "anyOf" in schema:
        for branch in schema["anyOf"]:
            if branch.get("type") != "null":
                _apply_enum(branch, values)
    elif schema.get("type") == "array":
        _apply_enum(schema.setdefault("items", {}), list(values))
        if isinstance(values, EveryOne):
            schema["minItems"] = schema["maxItems"] = len(values)
    elif "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v in values] or schema["enum"]
    else:
        schema["enum"] = values


def forced_choice(tool_choice: Any) -> str | None:
    """None (text or a call), "none" (text only), "required" (a call to any tool) or the one tool's name."""
    if tool_choice in (None, "auto"):
        return None
    if tool_choice in ("none", "required"):
        return tool_choice
    if tool_choice == "any":
        return "required"
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        if isinstance(name, str) and name:
            return name
    if isinstance(tool_choice, str) and tool_choice:
        return tool_choice
    raise ValueError(f"unsupported tool_choice {tool_choice!r}")


def call_structural_tag(tools: Sequence[Mapping[str, Any]], tool_choice: Any = None) -> dict[str, Any]:
    """The whole reply's grammar as an xgrammar structural tag (the JSON vLLM takes as `structural_tag`): plain text
    without `<tool_call>`, or exactly one `<tool_call>{"name": N, "arguments": ARGS}</tool_call>` where N is one
    of the tools and ARGS follows N's schema. tool_choice "required"/"any" allows only the call, a tool name only
    that tool's call, "none" only text.
    """
    choice = forced_choice(tool_choice)
    calls = {(f := _function(t))["name"]: _call_tag(f["name"], f.get("parameters")) for t in tools}
    text = {"type": "any_text", "excludes": TEXT_EXCLUDES}
    if choice == "none" or not calls:
        fmt: dict[str, Any] = text
    elif choice is None:
        fmt = {"type": "or", "elements": [text, *calls.values()]}
    elif choice == "required":
        fmt = {"type": "or", "elements": list(calls.values())} if len(calls) > 1 else next(iter(calls.values()))
    elif choice in calls:
        fmt = calls[choice]
    else:
        raise ValueError(f"tool_choice names {choice!r}, which is not among the tools ({', '.join(calls)})")
    return {"type": "structural_tag", "format": fmt}


def _call_tag(name: str, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    schema = dict(parameters or {"type": "object", "properties": {}})
    schema.setdefault("additionalProperties", False)  # an undeclared key is never a valid argument
    return {
        "type": "tag",
        "begin": CALL_BEGIN + name + ARGUMENTS,
        # one space at most between tokens, as the template writes them: a small model under a grammar that
        # allows any whitespace can loop on newlines until max_new_tokens
        "content": {"type": "json_schema", "json_schema": schema, "max_whitespace_cnt": 1},
        "end": CALL_END,
    }


def call_exemplars(structural_tag: Mapping[str, Any]) -> list[str]:
    """Each call `structural_tag` allows, written as the chat template writes one, with stand-in values: what
    agent.drafts guesses a call's form from. Per tool, the required arguments only and then all of them, each
    argument with a value of its type, or with each of its first EXEMPLAR_VALUES enum values in turn (so that
    a choice among them reads as one).
    """
    out: list[str] = []

    def visit(fmt: Mapping[str, Any]) -> None:
        if fmt.get("type") == "or":
            for element in fmt.get("elements") or ():
                visit(element)
        elif fmt.get("type") == "tag" and (fmt.get("content") or {}).get("type") == "json_schema":
            schema = fmt["content"]["json_schema"]
            props = schema.get("properties") or {}
            required = [n for n in props if n in (schema.get("required") or ())]
            for names in dict.fromkeys([tuple(required), tuple(props)]):
                for k in range(EXEMPLAR_VALUES):
                    args = {n: _stand_in(props[n], k) for n in names}
                    out.append(fmt["begin"] + json.dumps(args, ensure_ascii=False) + fmt["end"])

    visit(structural_tag.get("format") or {})
    return out


EXEMPLAR_VALUES = 3


def _stand_in(schema: Mapping[str, Any], k: int = 0) -> Any:
    """A value of `schema`'s type for call_exemplars: its k-th enum value (the last one when it has fewer), else a
    plain one.
    """
    if schema.get("enum"):
        return schema["enum"][min(k, len(schema["enum"]) - 1)]
    branches = [b for b in schema.get("anyOf") or () if b.get("type") != "null"]
    if branches:
        return _stand_in(branches[0], k)
    kind = schema.get("type")
    if kind == "array":
        return [_stand_in(schema.get("items") or {}, k)]
    if kind == "object":
        return {}
    return {"integer": 1, "number": 1, "boolean": True}.get(kind, "a")


def bind_constrained(model: Any, tools: Sequence[Any], enums: Mapping[str, Sequence[Any]] | None = None, *,
                     tool_choice: Any = None, grammar: bool | None = None) -> Any:
    """`model` with `tools` bound for one turn, decoding under their grammar with `enums` (by argument name).
    Every shopdesk chat model takes these in bind_tools: LocalChatModel and VLLMChatModel (agent/backends.py) build
    the grammar from them, the scripted fakes record them. `grammar=False` decodes unconstrained (for measuring).
    """
    return model.bind_tools(tools, tool_choice=tool_choice, enums=dict(enums or {}), grammar=grammar)


class CallGrammars:
    """One xgrammar compiler for one tokenizer, and its compiled grammars by structural tag (least recently used
    dropped first: the enums change every turn).
    """

    def __init__(self, tokenizer: Any, *, vocab_size: int, stop_token_ids: Sequence[int], max_cached: int = 64):
        import xgrammar as xgr

        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                  stop_token_ids=list(stop_token_ids))
        self.compiler = xgr.GrammarCompiler(info, max_threads=1)
        self.tokenizer = tokenizer
        self.max_cached = max_cached
        self._compiled: OrderedDict[str, Any] = OrderedDict()
        self._exemplars: OrderedDict[str, Drafts] = OrderedDict()
        self._lock = threading.Lock()

    def compiled(self, structural_tag: Mapping[str, Any]):
        key = json.dumps(structural_tag)  # not sort_keys: the order of `properties` is the order the call is written in
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
        grammar = self.compiler.compile_structural_tag(key)
        with self._lock:
            self._compiled[key] = grammar
            while len(self._compiled) > self.max_cached:
                self._compiled.popitem(last=False)
        return grammar

    def exemplars(self, structural_tag: Mapping[str, Any]) -> Drafts:
        """The n-gram table of the calls `structural_tag` allows (call_exemplars, tokenized as the prompt is)."""
        key = json.dumps(structural_tag)
        with self._lock:
            if key in self._exemplars:
                self._exemplars.move_to_end(key)
                return self._exemplars[key]
        drafts = Drafts()
        for text in call_exemplars(structural_tag):
            drafts.add(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        with self._lock:
            self._exemplars[key] = drafts
            while len(self._exemplars) > self.max_cached:
                self._exemplars.popitem(last=False)
        return drafts

    def logits_processor(self, structural_tag: Mapping[str, Any]):
        """A fresh processor for one generate() call (it keeps the matcher's state and cannot be reused)."""
        from xgrammar.contrib.hf import LogitsProcessor

        return LogitsProcessor(self.compiled(structural_tag))

    def decoder(self, structural_tag: Mapping[str, Any]) -> GrammarDecoder:
        """The state of one greedy decode under this grammar (a fresh one per model call)."""
        return GrammarDecoder(self.compiled(structural_tag), structural_tag)

    def matcher(self, structural_tag: Mapping[str, Any]):
        import xgrammar as xgr

        return xgr.GrammarMatcher(self.compiled(structural_tag))


class GrammarDecoder:
    """One decode under a compiled grammar: masks the logits, accepts the chosen token and returns the tokens the
    grammar then forces (jump-forward), so that they are computed in one forward pass with the next step.
    """

    def __init__(self, compiled: Any, structural_tag: Mapping[str, Any] | None = None):
        import xgrammar as xgr

        self.structural_tag = structural_tag  # what it was compiled from (the calls agent.drafts guesses from)
        self._xgr = xgr
        self.matcher = xgr.GrammarMatcher(compiled)
        self.bitmask = xgr.allocate_token_bitmask(1, compiled.tokenizer_info.vocab_size)

    def mask(self, logits: Any) -> None:
        """Disallowed tokens of `logits` (shape [1, vocab]) to -inf, in place."""
        self.matcher.fill_next_token_bitmask(self.bitmask, 0)
        self._xgr.apply_token_bitmask_inplace(logits, self.bitmask)

    def advance(self, token: int, jump_forward: bool = True) -> list[int]:
        """Accept the model's `token`; the tokens the grammar forces after it (none when `jump_forward` is off)."""
        forced = self.accept(token, jump_forward)
        if forced is None:
            raise RuntimeError(f"the grammar rejected token {token}, which its own mask allowed")
        return forced

    def accept(self, token: int, jump_forward: bool = True) -> list[int] | None:
        """`advance` for a guessed token: None (and no change) when the grammar does not allow it."""
        if not self.matcher.accept_token(token):
            return None
        forced: list[int] = []
        if jump_forward:
            for t in self.matcher.find_jump_forward_tokens():
                if not self.matcher.accept_token(t):
                    break
                forced.append(t)
        return forced

    def rollback(self, tokens: int) -> None:
        """Undo the last `tokens` accepted (guesses the model did not make)."""
        if tokens:
            self.matcher.rollback(tokens)

    def done(self) -> bool:
        """Nothing but the end of the turn may follow (a finished tool call): no decode step is needed for it."""
        if self.matcher.is_terminated():
            return True
        if not self.matcher.is_completed():
            return False
        self.matcher.fill_next_token_bitmask(self.bitmask, 0)
        return set(self._allowed()) <= set(self.matcher.stop_token_ids)

    def _allowed(self) -> list[int]:
        """The token ids the filled bitmask allows (token i is bit i % 32 of word i // 32)."""
        import numpy as np

        bits = np.unpackbits(self.bitmask.numpy().view(np.uint8), bitorder="little")
        return np.flatnonzero(bits).tolist()
