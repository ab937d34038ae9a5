"""Fixtures of the fine-tuning tests: a tiny random Llama with SmolLM2's tokenizer and chat template; transcripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SYSTEM = "You are the shop's support assistant."
TOOLS = [
    {"type": "function", "function": {"name": "get_order_details", "description": "Get one of your orders.",
                                      "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                                                     "required": ["order_id"]}}},
    {"type": "function", "function": {"name": "list_my_orders", "description": "List your orders.",
                                      "parameters": {"type": "object", "properties": {}}}},
]


def conversation(i: int, customer: str) -> dict:
    oid = f"#W{1000000 + i}"
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Where is my order {oid}?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "get_order_details", "arguments": json.dumps({"order_id": oid})}}]},
            {"role": "tool", "tool_call_id": "c1", "content": f"Order {oid} is pending (total $12.50)."},
            {"role": "assistant", "content": f"Your order {oid} is pending."},
            {"role": "user", "content": "And my other orders?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c2", "type": "function", "function": {"name": "list_my_orders", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c2", "content": f"You have 1 order(s): {oid} pending."},
            {"role": "assistant", "content": f"Only {oid}.", "weight": 0},
        ],
        "tools": TOOLS,
        "meta": {"customer_id": customer, "conversation_id": f"conv{i}"},
    }


@pytest.fixture(scope="session")
def tiny_model_dir(shared_models_dir, tmp_path_factory) -> Path:
    """A 2-layer random Llama (about 1.6 M parameters) with the real tokenizer: trains in seconds on a CPU."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(shared_models_dir))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


@pytest.fixture
def transcripts_file(tmp_path) -> Path:
    path = tmp_path / "transcripts.jsonl"
    rows = [conversation(i, f"cust{i % 6}") for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
