"""Drafted tokens checked in the pass (agent.drafts, LocalChatModel._greedy): the guesses, the call forms they come
from, and on the real SmolLM2 with the shipped adapter that decoding with them writes exactly what decoding without
them writes, in fewer passes, even when every guess is wrong.
"""

from __future__ import annotations

import random

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent.backends import LocalChatModel, ModelCache
from agent.drafts import Drafts
from agent.grammar import call_exemplars, call_structural_tag, constrained_tools
from agent.parsing import parse_tool_calls
from agent.toolspec import role_tool_schemas


def test_a_guess_is_what_followed_the_longest_run_and_nothing_at_a_choice():
    d = Drafts().add([1, 2, 3, 4])
    assert d.guess([9, 2, 3]) == 4  # the run (2, 3)
    assert d.guess([7, 3]) == 4 and d.guess([1]) == 2 and d.guess([8]) is None
    d.add([5, 2, 3, 6])  # (2, 3) was followed by 4 and by 6: a choice
    assert d.guess([9, 2, 3]) is None
    assert d.guess([1, 2, 3]) == 4  # the longer run (1, 2, 3) was followed by 4 only


def test_short_runs_of_a_prompt_are_not_keys_and_the_call_forms_go_on_top():
    prompt = Drafts().add([1, 2, 3, 4], shortest=2)
    assert prompt.guess([7, 1]) is None and prompt.guess([1, 2]) == 3
    forms = Drafts().add([1, 2, 9])
    assert prompt.over(forms).guess([1, 2]) == 9


def test_the_call_forms_are_calls_the_grammar_accepts_in_the_templates_words():
    enums = {"order_id": ["#W2611340", "#W4817420"], "item_ids": ["1008292230"], "new_item_ids": [],
             "payment_method_id": ["credit_card_9513926"]}
    tools = constrained_tools(role_tool_schemas("customer"), enums)
    tag = call_structural_tag(tools)
    forms = call_exemplars(tag)
    names = {t["function"]["name"] for t in tools}
    assert {parse_tool_calls(f)[1][0].name for f in forms} == names
    for form in forms:
        assert form.startswith('<tool_call>{"name": "') and form.endswith("}}</tool_call>")
        call = parse_tool_calls(form)[1][0]
        assert call.error is None
        assert call.arguments.get("order_id", "#W2611340") in enums["order_id"]
    # both orders appear where a call takes one: the order is a choice, not a guess
    details = [f for f in forms if '"get_order_details"' in f]
    assert {parse_tool_calls(f)[1][0].arguments["order_id"] for f in details} == set(enums["order_id"])


@pytest.fixture(scope="module")
def models(shared_models_dir):
    from shopdesk.models import SHIPPED_ADAPTER

    cache = ModelCache()
    drafting = LocalChatModel(model_path=str(shared_models_dir), adapter=str(SHIPPED_ADAPTER), torch_threads=2,
                              loaded_models=cache)
    yield drafting, drafting.model_copy(update={"drafts": False})
    cache.clear()


def _turns():
    from agent.session import SYSTEM_PROMPTS

    system = SystemMessage(SYSTEM_PROMPTS["customer"])
    return [[system, HumanMessage(text)] for text in
            ("Where is my order #W2611340?", "Please cancel order #W4817420, I ordered it by mistake.",
             "Can I return the headphones from #W2611340?")]


def _invoke(model, messages):
    tools = role_tool_schemas("customer")
    enums = {"order_id": ["#W2611340", "#W4817420"], "item_ids": ["1008292230", "2648909398"], "new_item_ids": [],
             "payment_method_id": ["credit_card_9513926"]}
    loaded = model.loaded()
    loaded.clear_prefixes()
    passes = loaded.batcher.passes
    out = model.bind_tools(tools, enums=enums, tool_choice="required").invoke(messages)
    return out.response_metadata["raw_text"], loaded.batcher.passes - passes


@pytest.mark.slow
def test_drafted_tokens_change_no_token_and_save_passes(models):
    drafting, plain = models
    saved = 0
    for messages in _turns():
        want, plain_passes = _invoke(plain, messages)
        got, passes = _invoke(drafting, messages)
        assert got == want and "<tool_call>" in got
        saved += plain_passes - passes
    assert saved >= 6  # a call's form is ~6 passes of its own without guesses


@pytest.mark.slow
def test_wrong_guesses_are_dropped_from_the_cache_and_the_grammar(models, monkeypatch):
    """Every guess a random token the grammar allows (so nearly all wrong, and each followed by what it forces):
    the text is still greedy decoding's, so the cache and the grammar dropped each wrong guess and what followed.
    """
    drafting, plain = models
    rng = random.Random(33)

    def random_guesses(self, drafts, grammar, context, eos, room):
        steps = []
        for _ in range(3):
            if grammar.done():
                break
            grammar.matcher.fill_next_token_bitmask(grammar.bitmask, 0)
            allowed = [t for t in grammar._allowed() if t not in eos]
            forced = grammar.accept(token := rng.choice(allowed), True)
            steps.append([token, *forced])
        return steps

    monkeypatch.setattr(LocalChatModel, "_guesses", random_guesses)
    for messages in _turns():
        want, _ = _invoke(plain, messages)
        got, _ = _invoke(drafting, messages)
        assert got == want
