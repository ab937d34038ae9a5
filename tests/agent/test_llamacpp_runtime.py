"""The llama.cpp runtime reads the same weights as the transformers one (the prepared model with the adapter merged,
written as GGUF by shopdesk.gguf_export) and decodes with the same greedy loop, grammar and prefix reuse: its output
is the transformers path's, token for token, on real prompts of the agent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from agent.backends import LocalChatModel, ModelCache
from agent.toolspec import tool_spec
from shopdesk.gguf_export import gguf_name, lora_deltas, merged_gguf, permute_rotary
from shopdesk.models import SHIPPED_ADAPTER, smollm_gguf
from tools.orders import get_order_details, list_my_orders


def test_rotary_permutation_interleaves_the_halves_of_each_head():
    """transformers keeps each head's rotary pairs as two halves; llama.cpp interleaves them (row i of the first
    half and row i of the second become rows 2i and 2i+1).
    """
    heads, rows_per_head = 2, 4
    w = np.arange(heads * rows_per_head)[:, None].repeat(3, axis=1)
    got = permute_rotary(w, heads)[:, 0].tolist()
    assert got == [0, 2, 1, 3, 4, 6, 5, 7]


def test_weight_names_map_to_llama_cpp_and_unknown_ones_are_left_out():
    assert gguf_name("model.layers.7.self_attn.k_proj.weight") == "blk.7.attn_k.weight"
    assert gguf_name("model.layers.0.mlp.down_proj.weight") == "blk.0.ffn_down.weight"
    assert gguf_name("model.embed_tokens.weight") == "token_embd.weight"
    assert gguf_name("model.rotary_emb.inv_freq") is None


def test_lora_delta_is_b_times_a_scaled_by_alpha_over_r(tmp_path):
    import torch
    from safetensors.torch import save_file

    a, b = torch.randn(2, 5), torch.randn(3, 2)
    save_file({"base_model.model.model.layers.0.mlp.up_proj.lora_A.weight": a,
               "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight": b},
              str(tmp_path / "adapter_model.safetensors"))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 8}))
    deltas = lora_deltas(tmp_path)
    assert list(deltas) == ["model.layers.0.mlp.up_proj.weight"]
    assert torch.allclose(deltas["model.layers.0.mlp.up_proj.weight"], b @ a * 4)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 8, "use_dora": True}))
    with pytest.raises(ValueError, match="DoRA"):
        lora_deltas(tmp_path)


def test_an_unknown_runtime_is_a_clear_error():
    from shopdesk.output import UserError

    model = LocalChatModel(model_path="unused", runtime="onnx")
    with pytest.raises(UserError, match="unknown in-process runtime 'onnx'"):
        model._load()


@pytest.fixture(scope="module")
def runtimes(shared_models_dir, tmp_path_factory):
    kwargs = dict(model_path=str(shared_models_dir), adapter=str(SHIPPED_ADAPTER), max_new_tokens=48, torch_threads=2)
    gguf_dir = str(tmp_path_factory.mktemp("gguf"))
    models = ModelCache()
    torch_model = LocalChatModel(**kwargs, loaded_models=models)
    llama_model = LocalChatModel(**kwargs, runtime="llamacpp", gguf_type="f32", gguf_dir=gguf_dir, loaded_models=models)
    yield torch_model, llama_model
    models.clear()


def _prompts():
    system = SystemMessage("You are the support assistant of a shop. Use the tools to look facts up.")
    first = [system, HumanMessage("Where is my order #W2611340?")]
    call = AIMessage("", tool_calls=[{"name": "get_order_details", "args": {"order_id": "#W2611340"},
                                      "id": "call_1", "type": "tool_call"}])
    result = ToolMessage("Order #W2611340: status processed, placed 2026-10-24, total $536.65.", tool_call_id="call_1")
    return [first, [*first, call, result], [system, HumanMessage("Show me all my orders please.")],
            [system, HumanMessage("我的订单 #W2611340 到哪里了?")]]


@pytest.mark.slow
def test_merged_gguf_is_made_once_and_reused(runtimes, shared_models_dir):
    _, llama_model = runtimes
    llama_model.loaded()
    path = merged_gguf(shared_models_dir, SHIPPED_ADAPTER, "f32", smollm_gguf(), Path(llama_model.gguf_dir))
    mtime = path.stat().st_mtime_ns
    assert merged_gguf(shared_models_dir, SHIPPED_ADAPTER, "f32", smollm_gguf(), path.parent) == path
    assert path.stat().st_mtime_ns == mtime  # not written again


@pytest.mark.slow
def test_llama_cpp_decodes_what_transformers_decodes(runtimes):
    torch_model, llama_model = runtimes
    tools = [tool_spec(get_order_details).openai(), tool_spec(list_my_orders).openai()]
    enums = {"order_id": ["#W2611340", "#W1000001"]}
    for tool_choice in (None, "required"):
        for messages in _prompts():
            want = torch_model.bind_tools(tools, enums=enums, tool_choice=tool_choice).invoke(messages)
            got = llama_model.bind_tools(tools, enums=enums, tool_choice=tool_choice).invoke(messages)
            assert got.response_metadata["raw_text"] == want.response_metadata["raw_text"], messages[-1].content
    plain = [HumanMessage("Say hello to a customer in one short sentence.")]
    assert llama_model.invoke(plain).content == torch_model.invoke(plain).content
    stats = llama_model.loaded().prefixes
    assert stats.reused_tokens > 0  # the calls after the first shared the system turn with the one before
