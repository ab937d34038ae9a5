"""The in-process backend on the real SmolLM2: template rendering, streaming, tool calls under the grammar (and the
prefill fallback without it), a turn with a tool.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent.backends import LocalChatModel, ModelCache
from agent.session import open_session
from agent.testing import ScriptedChatModel
from agent.toolspec import tool_spec
from shopdesk.settings import Settings
from tools.orders import get_order_details

pytestmark = pytest.mark.slow


@pytest.fixture
def local(shared_models_dir):
    models = ModelCache()  # the test's own: the process's default cache is left alone
    model = LocalChatModel(model_path=str(shared_models_dir), adapter=None, max_new_tokens=64, torch_threads=2,
                           loaded_models=models)
    yield model
    models.clear()


def test_prompt_uses_the_tool_template(local):
    spec = tool_spec(get_order_details)
    prompt = local.prompt_text([SystemMessage("Be brief."), HumanMessage("Where is #W1?")], [spec.openai()])
    assert "- get_order_details(order_id: string):" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_streaming_matches_invoke(local):
    msgs = [HumanMessage("Say hello in three words.")]
    chunks = [c.content for c in local.stream(msgs)]
    assert len([c for c in chunks if c]) > 1
    assert "".join(chunks).strip() == local.invoke(msgs).content


def test_forced_tool_call_is_parsed(local):
    spec = tool_spec(get_order_details)
    bound = local.bind_tools([spec.openai()], tool_choice="get_order_details", enums={"order_id": ["#W2611340"]})
    ai = bound.invoke([HumanMessage("Where is my order #W2611340?")])
    # the base model, forced under the grammar: exactly one valid call, with the only order id it may name
    assert [c["name"] for c in ai.tool_calls] == ["get_order_details"] and not ai.invalid_tool_calls
    assert ai.tool_calls[0]["args"] == {"order_id": "#W2611340"}
    assert ai.response_metadata["raw_text"].startswith('<tool_call>{"name": "get_order_details", "arguments": {')


def test_without_the_grammar_a_forced_call_is_prefilled(local):
    spec = tool_spec(get_order_details)
    bound = local.bind_tools([spec.openai()], tool_choice="get_order_details", grammar=False)
    prompt = local.prompt_text([HumanMessage("Where is #W1?")], [spec.openai()], "get_order_details", grammar=False)
    assert prompt.endswith('<tool_call>{"name": "get_order_details", "arguments": {"order_id": "')
    ai = bound.invoke([HumanMessage("Where is my order #W2611340?")])
    names = [c["name"] for c in ai.tool_calls] + [c["name"] for c in ai.invalid_tool_calls]
    assert names[:1] == ["get_order_details"]
    assert "<tool_call>" in ai.response_metadata["raw_text"]


def test_streaming_under_the_grammar_never_shows_call_markup(local):
    spec = tool_spec(get_order_details)
    bound = local.bind_tools([spec.openai()], enums={"order_id": ["#W2611340"]})
    msgs = [HumanMessage("Say hello in three words.")]
    chunks = list(bound.stream(msgs))
    shown = "".join(c.content for c in chunks if isinstance(c.content, str))
    assert "<tool_call>" not in shown and "<|im_start|>" not in shown
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    raw = merged.response_metadata["raw_text"]
    if merged.tool_call_chunks:  # the grammar's other way out: one valid call, shown as nothing
        assert raw.startswith("<tool_call>") and not shown.strip() and not merged.invalid_tool_calls
    else:
        assert shown.strip() == raw.strip()


def test_turn_with_a_real_model_and_a_tool(settings, tau2_store, local):
    """The first step is the real model forced to call the tool; the reply is the result's rendering."""
    spec = tool_spec(get_order_details)
    forced = local.bind_tools([spec.openai()], tool_choice="get_order_details")
    free = local.bind_tools([spec.openai()])
    model = ScriptedChatModel(script=[lambda msgs: forced.invoke(msgs)], fallback=lambda msgs: free.invoke(msgs))
    session = open_session(settings, "customer", "james_li_5688", model=model, store=tau2_store,
                           tools=[get_order_details])
    events = list(session.respond("Where is my order #W2611340?"))
    kinds = [e.kind for e in events]
    assert kinds[-1] == "final" and events[-1].text.strip()
    calls = [e for e in events if e.kind == "tool_call"]
    if calls:  # the model filled valid arguments: the tool ran, and its result answers the question (no second call)
        assert calls[0].name == "get_order_details" and "tool_result" in kinds
        assert len(model.requests) == 1 and events[-1].meta["path"][-2:] == ["answer", "record"]
    else:  # it did not: the invalid call was fed back once and never reached the tool
        assert session.stats["invalid_calls"] >= 1
    # whatever the small model said, it cannot misstate this order's status
    if "delivered" in events[-1].text.lower() or "pending" in events[-1].text.lower():
        pytest.fail(f"ungrounded status reached the customer: {events[-1].text!r}")


def test_int8_weights_decode_under_the_grammar(shared_models_dir):
    # torch's dynamic int8 Linear layers (Settings.local_weights = int8): every Linear is replaced, the cache key
    # keeps the two kinds apart, and a forced call under the grammar is still exactly one valid call
    import torch

    models = ModelCache()
    try:
        fp32 = LocalChatModel(model_path=str(shared_models_dir), adapter=None, max_new_tokens=64, torch_threads=2,
                              loaded_models=models)
        int8 = fp32.model_copy(update={"weights": "int8"})
        assert int8.cache_key != fp32.cache_key
        model = int8.loaded().model
        assert not [m for m in model.modules() if type(m) is torch.nn.Linear]
        assert any(type(m).__name__ == "Linear" and "quantized" in type(m).__module__ for m in model.modules())
        spec = tool_spec(get_order_details)
        bound = int8.bind_tools([spec.openai()], tool_choice="get_order_details", enums={"order_id": ["#W2611340"]})
        ai = bound.invoke([HumanMessage("Where is my order #W2611340?")])
        assert ai.tool_calls and ai.tool_calls[0]["args"] == {"order_id": "#W2611340"} and not ai.invalid_tool_calls
        # and plain text still decodes to words
        assert int8.invoke([HumanMessage("Say hello in three words.")]).content.strip()
    finally:
        models.clear()


def test_unknown_weights_are_a_clear_error(shared_models_dir):
    from shopdesk.output import UserError

    model = LocalChatModel(model_path=str(shared_models_dir), adapter=None, weights="int4", loaded_models=ModelCache())
    with pytest.raises(UserError, match="int4"):
        model.loaded()


def test_two_calls_compute_at_once_and_decode_what_they_decode_alone(local):
    # batched=False (the transformers forward, a pass per call): a slot per core: the weights are only read and
    # each call has its own KV cache, so two calls run their forward passes at the same time, and greedy decoding
    # gives each what it gives alone
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from agent.backends import _cores

    local = local.model_copy(update={"batched": False})
    msgs = [[HumanMessage("Say hello in three words.")], [HumanMessage("Name two colours.")]]
    alone = [local.invoke(m).content for m in msgs]
    loaded = local.loaded()
    assert loaded.batcher is None and loaded.slots == _cores()
    inner, active, most, threads_when_two = loaded.model.forward, [0], [0], set()
    guard = threading.Lock()

    def forward(*args, **kwargs):
        with guard:
            active[0] += 1
            most[0] = max(most[0], active[0])
            if loaded.computing_now == 2:  # both calls hold a slot: this pass got its share of the threads
                threads_when_two.add(torch.get_num_threads())
        try:
            time.sleep(0.01)  # long enough for the other call to be inside a pass too
            return inner(*args, **kwargs)
        finally:
            with guard:
                active[0] -= 1

    loaded.model.forward = forward
    try:
        with ThreadPoolExecutor(2) as pool:
            together = list(pool.map(lambda m: local.invoke(m).content, msgs))
    finally:
        del loaded.model.forward
    assert together == alone
    assert most[0] == min(2, loaded.slots)
    # torch's threads are shared out among the calls computing: one each for two on 2 threads (a pass that began
    # just before the other call took its slot may still have had both)
    assert 1 in threads_when_two and loaded.computing_now == 0


def test_default_weights_are_onednn_and_decode_what_mkl_weights_decode(local):
    # Settings.local_weights "fp32-onednn" (the default) multiplies the weights as loaded with oneDNN's inner product
    # instead of MKL's GEMM ("fp32"): the same values, so the logits differ by rounding only and greedy decoding
    # gives the same text
    import torch

    assert local.weights == Settings.model_fields["local_weights"].default == "fp32-onednn"
    mkl = local.model_copy(update={"weights": "fp32"})
    assert mkl.cache_key != local.cache_key
    model = local.loaded().model
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(type(m).__name__ == "OneDNNLinear" for m in linears)
    assert all(m.weight.is_contiguous() for m in linears)  # the weights as loaded: no copy
    ids = local.loaded().tokenizer("Where is my order?", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a, b = mkl.loaded().model(input_ids=ids).logits, model(input_ids=ids).logits
        one = model(input_ids=ids[:, :1]).logits  # a single row goes through the same op
    assert a.shape == b.shape and (a - b).abs().max() < 1e-3
    assert torch.isfinite(one).all()
    msgs = [HumanMessage("Name two colours.")]
    assert local.invoke(msgs).content == mkl.invoke(msgs).content


def test_fp32_weights_are_column_major_and_decode_what_row_major_weights_decode(local):
    # Settings.local_weights "fp32" (MKL) stores each Linear weight transposed in memory (column_major_linears: faster
    # decode steps on this CPU than MKL on the layout as loaded); the values are the same, so the logits differ by
    # rounding only and greedy decoding gives the same text as the layout as loaded ("fp32-row-major")
    import torch

    mkl = local.model_copy(update={"weights": "fp32"})
    model = mkl.loaded().model
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.stride() == (1, m.weight.shape[0]) for m in linears)
    assert model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    row = local.model_copy(update={"weights": "fp32-row-major"})
    assert row.cache_key != mkl.cache_key
    row_model = row.loaded().model
    assert all(m.weight.is_contiguous() for m in row_model.modules() if isinstance(m, torch.nn.Linear))
    ids = local.loaded().tokenizer("Where is my order?", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a, b = model(input_ids=ids).logits, row_model(input_ids=ids).logits
    assert torch.equal(model.lm_head.weight, row_model.lm_head.weight)
    assert (a - b).abs().max() < 1e-3
    msgs = [HumanMessage("Name two colours.")]
    assert mkl.invoke(msgs).content == row.invoke(msgs).content
